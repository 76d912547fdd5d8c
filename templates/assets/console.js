// The console's edition page: keep the delivery counts current while a send runs.
// Polls the page's own JSON (data-progress-url) every two seconds; reloads the page when
// the state changes, so that the buttons match it. Nothing else; no third parties.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-progress-url");
  var shownState = box.getAttribute("data-state");
  var running = { sending: true, paused: true };
  if (!running[shownState]) { return; }
  var bar = box.querySelector("progress");

  function show(progress) {
    if (progress.state !== shownState) {
      window.location.reload();
      return false;
    }
    box.querySelectorAll("[data-field]").forEach(function (cell) {
      var value = progress[cell.getAttribute("data-field")];
      cell.textContent = value === null || value === undefined ? "–" : String(value);
    });
    if (bar) {
      bar.max = progress.total || 1;
      bar.value = progress.total ? progress.total - progress.pending : 0;
    }
    return true;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (progress) { if (show(progress)) { window.setTimeout(poll, 2000); } })
      .catch(function () { window.setTimeout(poll, 10000); });
  }

  window.setTimeout(poll, 2000);
})();
