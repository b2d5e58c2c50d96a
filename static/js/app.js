// Small page behaviours around HTMX: error toasts and the image grid's multi-select.
(function () {
  "use strict";

  function toast(message) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.classList.add("show");
    clearTimeout(el._timer);
    el._timer = setTimeout(() => el.classList.remove("show"), 6000);
  }
  window.loupeToast = toast;

  document.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    const text = doc.querySelector(".error")?.textContent || `${xhr.status} ${xhr.statusText}`;
    toast(text.trim());
  });
  document.addEventListener("htmx:sendError", () => toast("Loupe is not reachable. Check your connection and try again."));

  // Grid selection: click a checkbox, shift-click for a range, "select all shown".
  let lastChecked = null;
  function updateCount(grid) {
    const n = grid.querySelectorAll("input[name=image_ids]:checked").length;
    const counter = grid.querySelector("#selected-count");
    if (counter) counter.textContent = `${n} selected`;
    grid.querySelectorAll("[data-bulk]").forEach((b) => (b.disabled = n === 0));
    grid.querySelectorAll(".tile").forEach((t) => t.classList.toggle("selected", t.querySelector("input:checked") !== null));
  }
  document.addEventListener("click", (event) => {
    const grid = event.target.closest("#grid");
    if (!grid) return;
    if (event.target.matches("[data-select-all]")) {
      const boxes = [...grid.querySelectorAll("input[name=image_ids]")];
      const all = boxes.every((b) => b.checked);
      boxes.forEach((b) => (b.checked = !all));
      updateCount(grid);
      return;
    }
    if (event.target.matches("input[name=image_ids]")) {
      const boxes = [...grid.querySelectorAll("input[name=image_ids]")];
      if (event.shiftKey && lastChecked) {
        const [a, b] = [boxes.indexOf(lastChecked), boxes.indexOf(event.target)].sort((x, y) => x - y);
        boxes.slice(a, b + 1).forEach((box) => (box.checked = event.target.checked));
      }
      lastChecked = event.target;
      updateCount(grid);
    }
  });
  document.addEventListener("htmx:afterSettle", () => {
    const grid = document.getElementById("grid");
    if (grid) updateCount(grid);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const grid = document.getElementById("grid");
    if (grid) updateCount(grid);
  });
})();
