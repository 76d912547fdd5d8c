// The console's rules editor: what the operator types is kept in this browser until it is
// saved, so a save refused because the console session ended (sign in, come back) loses
// nothing. The page after a save says so (data-rules-saved) and the kept text is dropped;
// a page that shows other text than the kept one offers to put it back. Nothing leaves
// the browser.
(function () {
  "use strict";
  var editor = document.getElementById("rules");
  var notice = document.querySelector("[data-draft-notice]");
  if (!editor || !notice) { return; }
  var KEY = "prompt-rules-draft";

  function kept() {
    try { return JSON.parse(window.localStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function keep() {
    try {
      window.localStorage.setItem(KEY, JSON.stringify({ text: editor.value, at: new Date().toISOString() }));
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
      notice.hidden = true;
      editor.focus();
    });
    notice.querySelector("[data-draft-discard]").addEventListener("click", drop);
  }
  editor.addEventListener("input", keep);
})();
