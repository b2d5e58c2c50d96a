// The workforce page: copy a just-made invite link (shown once) to the clipboard.
(function () {
  "use strict";
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const text = document.querySelector(button.dataset.copy)?.textContent.trim() || "";
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      // No clipboard (plain HTTP, or denied): select the link so Ctrl+C copies it.
      const range = document.createRange();
      range.selectNodeContents(document.querySelector(button.dataset.copy));
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      button.textContent = "Press Ctrl+C";
    }
  });
})();
