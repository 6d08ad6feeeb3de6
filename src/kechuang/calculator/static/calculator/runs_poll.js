// Poll a fragment until it says it is finished (htmx-style hx-get + "every 1s" +
// outerHTML swap, in twenty lines: the platform ships no JS library).
(function () {
  function poll(el) {
    var url = el.getAttribute("data-poll-url");
    var every = parseInt(el.getAttribute("data-poll-ms") || "1000", 10);
    setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var box = document.createElement("div");
          box.innerHTML = html.trim();
          var fresh = box.firstElementChild;
          el.replaceWith(fresh);
          if (fresh.getAttribute("data-finished") === "1") {
            if (fresh.getAttribute("data-reload") === "1") window.location.reload();
          } else {
            poll(fresh);
          }
        })
        .catch(function () { poll(el); });
    }, every);
  }
  document.querySelectorAll("[data-poll-url]").forEach(function (el) {
    if (el.getAttribute("data-finished") !== "1") poll(el);
  });
})();
