// The end-of-story prompt slot. Fills the slot from GET /api/v1/prompt when the page came
// from a cache (data-prompt-src), then reports what the reader does with the prompt:
// "seen" once it is on screen, "click" on its button, "dismiss" on "Not now" (which also
// hides it). Events go to POST /api/v1/prompt/events; nothing else, no third parties.
(function () {
  "use strict";
  var slot = document.querySelector("[data-prompt-slot]");
  if (!slot) { return; }

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
        send(box, "dismiss");
      });
    }
  }

  function wireAll() {
    slot.querySelectorAll("[data-prompt]").forEach(wire);
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
