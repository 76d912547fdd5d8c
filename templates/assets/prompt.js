// The end-of-story prompt slot. Fills the slot from GET /api/v1/prompt when the page came
// from a cache (data-prompt-src), then reports what the reader does with the prompt:
// "seen" once it is on screen, "click" on its button, "dismiss" on "Not now" (which also
// hides it). Events go to POST /api/v1/prompt/events; nothing else, no third parties.
// "Not now" is also kept in localStorage (the prompt's id and when its snooze ends): the
// server snoozes only readers whose reading it counts, and a reader it does not count
// should not be asked again on the next story either.
(function () {
  "use strict";
  var slot = document.querySelector("[data-prompt-slot]");
  if (!slot) { return; }
  var SNOOZE = "prompt-snooze:";

  function snoozedHere(box) {
    var dismiss = box.querySelector("[data-prompt-id]");
    if (!dismiss) { return false; }
    try {
      return Number(window.localStorage.getItem(SNOOZE + dismiss.getAttribute("data-prompt-id"))) > Date.now();
    } catch (e) { return false; }  // storage refused: the server's snooze is all there is
  }

  function snoozeHere(dismiss) {
    var id = dismiss.getAttribute("data-prompt-id");
    var days = Number(dismiss.getAttribute("data-snooze-days"));
    if (!id || !(days > 0)) { return; }
    try {
      window.localStorage.setItem(SNOOZE + id, String(Date.now() + days * 86400000));
    } catch (e) { /* storage refused */ }
  }

  function send(box, event) {
    var body = JSON.stringify({
      event: event,
      prompt: box.getAttribute("data-prompt"),
      variant: box.getAttribute("data-variant"),
      article: box.getAttribute("data-article")
    });
    return fetch("/api/v1/prompt/events", {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json" }, body: body
    }).catch(function () { /* a lost event is only a lost count */ });
  }

  function watchSeen(box) {
    if (!("IntersectionObserver" in window)) { send(box, "seen"); return; }
    var observer = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) {
        observer.disconnect();
        send(box, "seen");
      }
    }, { threshold: 0.5 });
    observer.observe(box);
  }

  function wire(box) {
    if (!box.getAttribute("data-variant")) { return; }
    watchSeen(box);
    var form = box.querySelector("form");
    if (form) { form.addEventListener("submit", function () { send(box, "click"); }); }
    box.querySelectorAll("[data-prompt-click]").forEach(function (link) {
      link.addEventListener("click", function () { send(box, "click"); });
    });
    var dismiss = box.querySelector("[data-prompt-dismiss]");
    if (dismiss) {
      dismiss.hidden = false;
      dismiss.addEventListener("click", function () {
        box.remove();
        snoozeHere(dismiss);
        send(box, "dismiss");
      });
    }
  }

  function wireAll() {
    slot.querySelectorAll("[data-prompt]").forEach(function (box) {
      if (snoozedHere(box)) { box.remove(); } else { wire(box); }
    });
    slot.setAttribute("data-prompt-ready", "");
  }

  var src = slot.getAttribute("data-prompt-src");
  if (!src) { wireAll(); return; }
  fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    })
    .then(function (answer) {
      if (answer.show) { slot.innerHTML = answer.html; }
      wireAll();
    })
    .catch(function () { slot.setAttribute("data-prompt-ready", ""); });
}());
