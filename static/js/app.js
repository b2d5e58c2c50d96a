// Small page behaviours around HTMX: error toasts, the image grid's multi-select, keyboard and grid labeling.
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

  // Grid selection: click a checkbox, shift-click for a range, "select all shown"; keyboard below.
  let lastChecked = null;
  const boxesOf = (grid) => [...grid.querySelectorAll("input[name=image_ids]")];
  const tilesOf = (grid) => [...grid.querySelectorAll(".tile")];
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
      const boxes = boxesOf(grid);
      const all = boxes.every((b) => b.checked);
      boxes.forEach((b) => (b.checked = !all));
      updateCount(grid);
      return;
    }
    const paletteButton = event.target.closest(".palette-label");
    if (paletteButton) {
      classify(grid, paletteButton.dataset.labelId);
      return;
    }
    if (event.target.matches("input[name=image_ids]")) {
      const boxes = boxesOf(grid);
      if (event.shiftKey && lastChecked && boxes.includes(lastChecked)) {
        const [a, b] = [boxes.indexOf(lastChecked), boxes.indexOf(event.target)].sort((x, y) => x - y);
        boxes.slice(a, b + 1).forEach((box) => (box.checked = event.target.checked));
      }
      lastChecked = event.target;
      setFocus(grid, event.target.closest(".tile"), false);
      anchorId = focusId;
      updateCount(grid);
      return;
    }
    // Shift-click on a thumbnail selects the range instead of opening the image.
    const tile = event.target.closest(".tile");
    if (tile && event.shiftKey && tile.querySelector("input[name=image_ids]")) {
      event.preventDefault();
      const box = tile.querySelector("input[name=image_ids]");
      const boxes = boxesOf(grid);
      const from = lastChecked && boxes.includes(lastChecked) ? boxes.indexOf(lastChecked) : boxes.indexOf(box);
      const [a, b] = [from, boxes.indexOf(box)].sort((x, y) => x - y);
      boxes.slice(a, b + 1).forEach((x) => (x.checked = true));
      lastChecked = box;
      setFocus(grid, tile, false);
      updateCount(grid);
    }
  });
  // Enter in the grid bar's text fields must not submit the grid form as a page load.
  document.addEventListener("submit", (event) => {
    if (event.target.id === "grid") event.preventDefault();
  });
  document.addEventListener("htmx:afterSettle", () => {
    const grid = document.getElementById("grid");
    if (grid) updateCount(grid);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const grid = document.getElementById("grid");
    if (grid) updateCount(grid);
  });

  // ---- grid keyboard and grid labeling ----------------------------------------------------
  let focusId = null; // the focused tile's image id (survives tile swaps)
  let anchorId = null; // where a shift+arrow range started
  const undoStack = []; // undo tokens of this page's grid classifications, newest last

  function focusedTile(grid) {
    return focusId ? grid.querySelector(`.tile[data-image-id="${focusId}"]`) : null;
  }
  function setFocus(grid, tile, scroll = true) {
    grid.querySelectorAll(".tile.focused").forEach((t) => t.classList.remove("focused"));
    if (!tile) return;
    tile.classList.add("focused");
    focusId = tile.dataset.imageId;
    if (scroll) tile.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  function columns(tiles) {
    if (!tiles.length) return 1;
    const top = tiles[0].offsetTop;
    const n = tiles.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? tiles.length : n;
  }
  function isTyping(target) {
    if (!target || !target.closest) return false;
    if (target.isContentEditable || target.closest("textarea, select, [contenteditable]")) return true;
    const input = target.closest("input");
    return Boolean(input) && !["checkbox", "radio", "button", "submit", "reset"].includes(input.type);
  }
  function status(grid, text) {
    const el = grid.querySelector("#classify-status");
    if (el) el.textContent = text;
  }
  function selectedIds(grid) {
    const ids = [...grid.querySelectorAll("input[name=image_ids]:checked")].map((b) => b.value);
    if (ids.length) return ids;
    const tile = focusedTile(grid);
    return tile ? [tile.dataset.imageId] : [];
  }
  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (e) {
      return {};
    }
  }
  async function post(grid, url, body) {
    const response = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { ...csrfHeaders(), "HX-Request": "true", Accept: "text/html" },
    });
    const text = await response.text();
    const doc = new DOMParser().parseFromString(text, "text/html");
    if (!response.ok) {
      const message = (doc.querySelector(".error")?.textContent || `${response.status} ${response.statusText}`).trim();
      toast(message);
      status(grid, message);
      return null;
    }
    // Swap each changed tile in place, keeping its selection and the focus ring.
    doc.querySelectorAll(".tile").forEach((fresh) => {
      const old = grid.querySelector(`.tile[data-image-id="${fresh.dataset.imageId}"]`);
      if (!old) return;
      const wasChecked = old.querySelector("input[name=image_ids]")?.checked;
      const box = fresh.querySelector("input[name=image_ids]");
      if (box && wasChecked) box.checked = true;
      if (old.classList.contains("focused")) fresh.classList.add("focused");
      const adopted = document.importNode(fresh, true);
      if (lastChecked && old.contains(lastChecked)) lastChecked = adopted.querySelector("input[name=image_ids]");
      old.replaceWith(adopted);
    });
    updateCount(grid);
    const result = doc.getElementById("classify-result");
    status(grid, result ? result.textContent.replace(/\s+/g, " ").trim() : "");
    document.body.dispatchEvent(new CustomEvent("imagesChanged", { bubbles: true }));
    return result;
  }
  let busy = Promise.resolve();
  function classify(grid, labelId) {
    const palette = grid.querySelector("#label-palette");
    if (!palette) return;
    const ids = selectedIds(grid);
    if (!ids.length) {
      status(grid, "Select images first (click, Shift+click, arrows and Space, or Ctrl+A)");
      return;
    }
    const body = new FormData();
    body.append("label_id", labelId);
    ids.forEach((id) => body.append("image_ids", id));
    // One request at a time, in key-press order, so fast typists never race themselves.
    busy = busy.then(async () => {
      const result = await post(grid, palette.dataset.classifyUrl, body);
      if (result && result.dataset.undo) undoStack.push(result.dataset.undo);
    });
  }
  function undo(grid) {
    const palette = grid.querySelector("#label-palette");
    if (!palette) return;
    busy = busy.then(async () => {
      const token = undoStack.pop();
      if (!token) {
        status(grid, "Nothing to undo");
        return;
      }
      const body = new FormData();
      body.append("undo", token);
      await post(grid, palette.dataset.undoUrl, body);
    });
  }
  window.loupeGrid = { pending: () => busy };

  const MOVES = { ArrowLeft: -1, ArrowRight: 1 };
  document.addEventListener("keydown", (event) => {
    const grid = document.getElementById("grid");
    if (!grid || isTyping(event.target) || event.altKey) return;
    const tiles = tilesOf(grid);
    if (!tiles.length) return;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key.toLowerCase() === "a") {
      event.preventDefault();
      boxesOf(grid).forEach((b) => (b.checked = true));
      updateCount(grid);
      return;
    }
    if (mod && event.key.toLowerCase() === "z" && !event.shiftKey) {
      if (!grid.querySelector("#label-palette")) return;
      event.preventDefault();
      undo(grid);
      return;
    }
    if (mod) return;
    let step = MOVES[event.key];
    if (event.key === "ArrowUp") step = -columns(tiles);
    if (event.key === "ArrowDown") step = columns(tiles);
    if (step !== undefined) {
      event.preventDefault();
      const current = focusedTile(grid);
      const from = current ? tiles.indexOf(current) : -1;
      const to = from === -1 ? 0 : Math.max(0, Math.min(tiles.length - 1, from + step));
      if (event.shiftKey) {
        if (!anchorId || !current) anchorId = (current || tiles[to]).dataset.imageId;
        const anchor = tiles.findIndex((t) => t.dataset.imageId === anchorId);
        const [a, b] = [anchor === -1 ? to : anchor, to].sort((x, y) => x - y);
        tiles.slice(a, b + 1).forEach((t) => {
          const box = t.querySelector("input[name=image_ids]");
          if (box) box.checked = true;
        });
        updateCount(grid);
      } else {
        anchorId = null;
      }
      setFocus(grid, tiles[to]);
      return;
    }
    if (event.key === " " || event.key === "Spacebar") {
      const tile = focusedTile(grid);
      const box = tile?.querySelector("input[name=image_ids]");
      if (!box) return;
      event.preventDefault();
      // A focused checkbox would toggle itself again on keyup: take the focus off it first.
      if (document.activeElement && document.activeElement.matches("input[type=checkbox]")) document.activeElement.blur();
      box.checked = !box.checked;
      lastChecked = box;
      anchorId = tile.dataset.imageId;
      updateCount(grid);
      return;
    }
    if (event.key === "Escape") {
      boxesOf(grid).forEach((b) => (b.checked = false));
      updateCount(grid);
      return;
    }
    if (event.key === "Enter" && focusedTile(grid) && event.target === document.body) {
      const link = focusedTile(grid).querySelector("a.thumb");
      if (link) link.click();
      return;
    }
    if (event.shiftKey || event.key.length !== 1) return;
    const key = event.key.toLowerCase();
    const button = [...grid.querySelectorAll("#label-palette .palette-label")].find((b) => b.dataset.shortcut && b.dataset.shortcut.toLowerCase() === key);
    if (button) {
      event.preventDefault();
      classify(grid, button.dataset.labelId);
    }
  });
})();
