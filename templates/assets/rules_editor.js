// The console's rules editor: what the operator types is kept in this browser until it is
// saved, so a save refused because the console session ended (sign in, come back) loses
// nothing. The page after a save says so (data-rules-saved) and the kept text is dropped;
// a page that shows other text than the kept one offers to put it back, with the version
// it was typed on, so a save of it is refused if the rules changed meanwhile (never
// undoing someone else's save). Nothing leaves the browser.
(function () {
  "use strict";
  var editor = document.getElementById("rules");
  var notice = document.querySelector("[data-draft-notice]");
  var basedOn = document.getElementById("based-on");
  if (!editor || !notice || !basedOn) { return; }
  var KEY = "prompt-rules-draft";

  function kept() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function keep() {
    try {
      window.localStorage.setItem(KEY, JSON.stringify({ text: editor.value, basedOn: basedOn.value,
                                                        at: new Date().toISOString() }));
    } catch (e) { /* storage full or refused: the editor still works */ }
  }
  function drop() {
    try { window.localStorage.removeItem(KEY); } catch (e) { /* nothing kept */ }
    notice.hidden = true;
  }

  if (document.querySelector("[data-rules-saved]")) { drop(); }
  var draft = kept();
  if (draft && typeof draft.text === "string" && draft.text !== editor.value) {
    notice.querySelector("[data-draft-time]").textContent = new Date(draft.at).toLocaleString();
    notice.hidden = false;
    notice.querySelector("[data-draft-restore]").addEventListener("click", function () {
      editor.value = draft.text;
      if (typeof draft.basedOn === "string") { basedOn.value = draft.basedOn; }
      notice.hidden = true;
      editor.focus();
    });
    notice.querySelector("[data-draft-discard]").addEventListener("click", drop);
  }
  editor.addEventListener("input", keep);
})();
