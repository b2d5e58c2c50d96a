// The sampling page's keys: "a" gives the current image the verdict "right", "r" "wrong" (the
// buttons of partials/sampling/_sample.html, found afresh after every swap).
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const button = document.querySelector(`#sample-work button[data-key="${event.key.toLowerCase()}"]`);
  if (!button || button.disabled) return;
  event.preventDefault();
  button.click();
});
