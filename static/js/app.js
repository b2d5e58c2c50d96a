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

  // Grid selection: click a checkbox, shift-click for a range, "select all shown", then "select all
  // N matching" (the whole filter, resolved by the server); keyboard below.
  let lastChecked = null;
  const boxesOf = (grid) => [...grid.querySelectorAll("input[name=image_ids]")];
  const tilesOf = (grid) => [...grid.querySelectorAll(".tile")];
  const allMatching = (grid) => grid.querySelector("#all-matching")?.value === "1";
  function setAllMatching(grid, on) {
    const field = grid.querySelector("#all-matching");
    if (field) field.value = on ? "1" : "";
  }
  function updateCount(grid) {
    const boxes = boxesOf(grid);
    const n = boxes.filter((b) => b.checked).length;
    if (allMatching(grid) && n < boxes.length) setAllMatching(grid, false); // a tile was unselected
    const all = allMatching(grid);
    const counter = grid.querySelector("#selected-count");
    const total = document.getElementById("grid-total");
    if (counter) counter.textContent = all ? `All ${total ? total.textContent.trim() : ""} selected` : `${n} selected`;
    // Offered once every loaded tile is selected and the filter matches more than are loaded.
    const offer = grid.querySelector("#select-matching");
    const more = grid.querySelector(".sentinel") !== null || Number(total?.dataset.total || 0) > boxes.length;
    if (offer) offer.hidden = all || !more || !boxes.length || n < boxes.length;
    grid.querySelectorAll("[data-bulk], [data-bulk-link]").forEach((b) => (b.disabled = n === 0 && !all));
    grid.querySelectorAll(".tile").forEach((t) => t.classList.toggle("selected", t.querySelector("input:checked") !== null));
  }
  function selectAll(grid, checked) {
    boxesOf(grid).forEach((b) => (b.checked = checked));
    if (!checked) setAllMatching(grid, false);
    updateCount(grid);
  }
  document.addEventListener("click", (event) => {
    const grid = event.target.closest("#grid");
    if (!grid) return;
    if (event.target.matches("[data-select-all]")) {
      selectAll(grid, !boxesOf(grid).every((b) => b.checked));
      return;
    }
    if (event.target.matches("[data-select-matching]")) {
      boxesOf(grid).forEach((b) => (b.checked = true));
      setAllMatching(grid, true);
      updateCount(grid);
      return;
    }
    // A form of its own for the selection ("Add to task"): the filter, or the selected ids.
    const link = event.target.closest("[data-bulk-link]");
    if (link) {
      const url = new URL(link.dataset.bulkLink, window.location.href);
      if (!allMatching(grid)) url.search = new URLSearchParams({ image_ids: boxesOf(grid).filter((b) => b.checked).map((b) => b.value).join(",") });
      window.location.href = url.toString();
      return;
    }
    const bulkButton = event.target.closest("[data-bulk]");
    if (bulkButton) {
      bulk(grid, bulkButton);
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
    if (!grid) return;
    // Tiles that infinite scroll adds while "all matching" is on are part of the selection.
    if (allMatching(grid)) boxesOf(grid).forEach((b) => (b.checked = true));
    updateCount(grid);
    bulkJobEnded(grid);
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
  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (e) {
      return {};
    }
  }
  async function send(grid, url, body, onError) {
    const response = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { ...csrfHeaders(), "HX-Request": "true", Accept: "text/html" },
    });
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    if (!response.ok) {
      const message = (doc.querySelector(".error")?.textContent || `${response.status} ${response.statusText}`).trim();
      toast(message);
      if (onError) onError(message);
      return null;
    }
    return doc;
  }
  // Swap a tile in place, keeping its selection and the focus ring.
  function replaceTile(old, fresh) {
    const wasChecked = old.querySelector("input[name=image_ids]")?.checked;
    const box = fresh.querySelector("input[name=image_ids]");
    if (box && wasChecked) box.checked = true;
    if (old.classList.contains("focused")) fresh.classList.add("focused");
    const adopted = document.importNode(fresh, true);
    if (lastChecked && old.contains(lastChecked)) lastChecked = adopted.querySelector("input[name=image_ids]");
    old.replaceWith(adopted);
  }
  function swapTiles(grid, doc) {
    doc.querySelectorAll(".tile").forEach((fresh) => {
      const old = grid.querySelector(`.tile[data-image-id="${fresh.dataset.imageId}"]`);
      if (old) replaceTile(old, fresh);
    });
  }
  // Put these elements of an answer (notice, count, job, suggestions, tag lists) in place of the
  // page's elements of the same id.
  function adoptById(elements) {
    elements.forEach((fresh) => {
      const old = fresh.id && document.getElementById(fresh.id);
      if (!old) return;
      const adopted = document.importNode(fresh, true);
      old.replaceWith(adopted);
      if (window.htmx) htmx.process(adopted);
    });
  }
  // Redraw these tiles from the server (a bulk action or its job changed them); tiles the answer
  // leaves out were deleted. The grid is never re-rendered, so the selection and the scroll stay.
  const TILES_PER_REQUEST = 1000;
  async function refreshTiles(grid, ids) {
    for (let i = 0; i < ids.length; i += TILES_PER_REQUEST) {
      const part = ids.slice(i, i + TILES_PER_REQUEST);
      const body = new FormData();
      part.forEach((id) => body.append("image_ids", id));
      const doc = await send(grid, grid.dataset.tilesUrl, body);
      if (!doc) return;
      const fresh = new Set([...doc.querySelectorAll(".tile")].map((t) => t.dataset.imageId));
      part.filter((id) => !fresh.has(id)).forEach((id) => grid.querySelector(`.tile[data-image-id="${id}"]`)?.remove());
      swapTiles(grid, doc);
      adoptById([doc.getElementById("grid-total")].filter(Boolean));
    }
    updateCount(grid);
  }
  const loadedIds = (grid) => tilesOf(grid).map((t) => t.dataset.imageId);
  // The tiles a bulk action changed: the selection, or every loaded tile when it was "all matching".
  function actionScope(grid, body) {
    if (!allMatching(grid)) return [...grid.querySelectorAll("input[name=image_ids]:checked")].map((b) => b.value);
    body.delete("image_ids"); // the server resolves the filter itself
    body.set("all_matching", "1");
    return loadedIds(grid);
  }
  // A job doing an "all matching" action: redraw the tiles once it has ended.
  function awaitJob(grid, doc, ids) {
    const job = doc.querySelector("#bulk-job .job");
    if (!job) return false;
    grid._jobTiles = { id: job.id, ids };
    return true;
  }
  function bulkJobEnded(grid) {
    const job = grid.querySelector("#bulk-job .job");
    const pending = grid._jobTiles;
    if (!job || !pending || pending.id !== job.id || ["queued", "running"].includes(job.dataset.jobStatus)) return;
    grid._jobTiles = null;
    refreshTiles(grid, pending.ids);
    document.body.dispatchEvent(new CustomEvent("imagesChanged", { bubbles: true }));
  }
  function bulk(grid, button) {
    const all = allMatching(grid);
    const question = all ? button.dataset.confirmAll || button.dataset.confirm : button.dataset.confirm;
    if (question && !confirm(question)) return;
    const body = new FormData(grid);
    body.set("action", button.dataset.bulk);
    const ids = actionScope(grid, body);
    queue(async () => {
      const doc = await send(grid, button.dataset.bulkUrl || grid.dataset.bulkUrl, body); // Auto-split has its own route
      if (!doc) return;
      adoptById([...doc.body.children]);
      // "All matching" meant the filter at the time of the action; what is shown stays selected.
      setAllMatching(grid, false);
      if (!awaitJob(grid, doc, ids)) {
        await refreshTiles(grid, ids);
        document.body.dispatchEvent(new CustomEvent("imagesChanged", { bubbles: true }));
      }
      updateCount(grid);
    });
  }
  async function post(grid, url, body, ids) {
    const doc = await send(grid, url, body, (message) => status(grid, message));
    if (!doc) return null;
    swapTiles(grid, doc);
    const result = doc.getElementById("classify-result");
    const job = doc.querySelector("#bulk-job");
    if (job) {
      adoptById([job]);
      awaitJob(grid, doc, ids);
    }
    setAllMatching(grid, false);
    updateCount(grid);
    status(grid, result ? result.textContent.replace(/\s+/g, " ").trim() : "");
    document.body.dispatchEvent(new CustomEvent("imagesChanged", { bubbles: true }));
    return result;
  }
  let busy = Promise.resolve();
  // One grid request at a time, in the order asked; a failed one (offline) must not block the rest.
  function queue(task) {
    busy = busy.then(task).catch(() => toast("Loupe is not reachable. Check your connection and try again."));
  }
  function classify(grid, labelId) {
    const palette = grid.querySelector("#label-palette");
    if (!palette) return;
    const body = new FormData();
    body.append("label_id", labelId);
    let ids = actionScope(grid, body);
    const focused = focusedTile(grid);
    if (!ids.length && focused) {
      // One tile classified by itself: the focus moves on, so the next key classifies the next tile.
      ids = [focused.dataset.imageId];
      const tiles = tilesOf(grid);
      const next = tiles[tiles.indexOf(focused) + 1];
      if (next) setFocus(grid, next);
    }
    if (!ids.length) {
      status(grid, "Select images first (click, Shift+click, arrows and Space, or Ctrl+A)");
      return;
    }
    if (!allMatching(grid)) ids.forEach((id) => body.append("image_ids", id));
    // One request at a time, in key-press order, so fast typists never race themselves.
    queue(async () => {
      const result = await post(grid, palette.dataset.classifyUrl, body, ids);
      if (result && result.dataset.undo) undoStack.push(result.dataset.undo);
    });
  }
  function undo(grid) {
    const palette = grid.querySelector("#label-palette");
    if (!palette) return;
    queue(async () => {
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
      selectAll(grid, true);
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
      selectAll(grid, false);
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
