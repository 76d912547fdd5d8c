// Pages every reader shares (the front page, stories) may be cached, so their forms carry
// no CSRF token: it belongs to the reader's session. When such a form is sent, this fetches
// the reader's own token from GET /api/v1/csrf, puts it in, and sends the form. If the
// fetch fails the form goes anyway, and the server answers it with the form again, with a
// token and the reader's input kept.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var field = form.querySelector("input[data-csrf]");
    if (!field || field.value || event.defaultPrevented) { return; }
    event.preventDefault();
    fetch("/api/v1/csrf", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (answer) { field.value = answer.csrf_token; })
      .catch(function () { /* sent without: the server gives the form back */ })
      .then(function () { HTMLFormElement.prototype.submit.call(form); });
  });
}());
