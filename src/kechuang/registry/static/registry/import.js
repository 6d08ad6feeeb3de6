// Upload with a progress bar. Without JavaScript the form posts normally and the
// page comes back with the same result block.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var box = document.getElementById("import-progress");
  var bar = document.getElementById("import-bar");
  var status = document.getElementById("import-status");
  var result = document.getElementById("import-result");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
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
      // The server now checks every row; an indeterminate bar says "still working".
      bar.removeAttribute("value");
      status.textContent = status.dataset.processing;
    });
    xhr.addEventListener("load", function () {
      box.hidden = true;
      if (xhr.status === 200) { result.innerHTML = xhr.responseText; }
      else { status.textContent = status.dataset.failed + " (" + xhr.status + ")"; box.hidden = false; }
    });
    xhr.addEventListener("error", function () { status.textContent = status.dataset.failed; });
    xhr.send(new FormData(form));
  });
})();
