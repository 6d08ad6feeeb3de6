// Upload with a progress bar, then the rows checked so far while the server
// works. Without JavaScript the form posts normally and the page comes back
// with the same result block.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var box = document.getElementById("import-progress");
  var bar = document.getElementById("import-bar");
  var status = document.getElementById("import-status");
  var result = document.getElementById("import-result");
  var progressUrl = form.dataset.progressUrl;  // ends with "/ID/"

  function randomId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = randomId();
    var data = new FormData(form);
    data.append("progress_id", id);
    var timer = null;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("X-Requested-With", "fetch");
    box.hidden = false;
    bar.value = 0;
    status.textContent = status.dataset.uploading;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
    });
    xhr.upload.addEventListener("load", function () {
      // The server now checks every row: an indeterminate bar and a row count.
      bar.removeAttribute("value");
      status.textContent = status.dataset.processing;
      timer = window.setInterval(function () {
        var poll = new XMLHttpRequest();
        poll.open("GET", progressUrl.replace("/ID/", "/" + id + "/"));
        poll.addEventListener("load", function () {
          if (poll.status === 200 && timer !== null) {
            var rows = JSON.parse(poll.responseText).rows;
            status.textContent = status.dataset.processing + " " + status.dataset.rows.replace("N", rows);
          }
        });
        poll.send();
      }, 700);
    });
    function stop() { if (timer !== null) { window.clearInterval(timer); timer = null; } }
    xhr.addEventListener("load", function () {
      stop();
      box.hidden = true;
      if (xhr.status === 200) { result.innerHTML = xhr.responseText; }
      else { status.textContent = status.dataset.failed + " (" + xhr.status + ")"; box.hidden = false; }
    });
    xhr.addEventListener("error", function () { stop(); status.textContent = status.dataset.failed; });
    xhr.send(data);
  });
})();
