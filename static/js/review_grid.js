// The grid review mode (templates/partials/reviews/_grid.html): select tiles by mouse or keyboard,
// accept (a) or reject with a comment (r) through POST /api/v1/datasets/{ds}/reviews, and mark each
// tile with its outcome in place: no reload, so the selection, the focus and the scroll stay.
(function () {
  "use strict";

  const root = () => document.getElementById("review-grid");
  const tiles = (grid) => [...grid.querySelectorAll(".tile")];
  const boxes = (grid) => [...grid.querySelectorAll("input[name=image_ids]:not(:disabled)")];
  const selected = (grid) => boxes(grid).filter((b) => b.checked).map((b) => b.value);
  const plural = (n) => `${n} image${n === 1 ? "" : "s"}`;
  let focusId = null; // the focused tile's image id
  let lastBox = null; // where a Shift+click range starts
  let busy = Promise.resolve();

  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (e) {
      return {};
    }
  }
  function status(grid, text) {
    grid.querySelector("#review-status").textContent = text;
  }
  function update(grid) {
    const n = selected(grid).length;
    grid.querySelector("#review-selected").textContent = `${n} selected`;
    grid.querySelectorAll("[data-verdict]").forEach((b) => (b.disabled = n === 0));
    tiles(grid).forEach((t) => t.classList.toggle("selected", t.querySelector("input:checked:not(:disabled)") !== null));
  }
  function focusedTile(grid) {
    return focusId ? grid.querySelector(`.tile[data-image-id="${focusId}"]`) : null;
  }
  function setFocus(grid, tile) {
    grid.querySelectorAll(".tile.focused").forEach((t) => t.classList.remove("focused"));
    if (!tile) return;
    tile.classList.add("focused");
    focusId = tile.dataset.imageId;
    tile.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
  function toggle(grid, tile, on) {
    const box = tile.querySelector("input[name=image_ids]");
    if (!box || box.disabled) return;
    box.checked = on === undefined ? !box.checked : on;
    lastBox = box;
  }
  function range(grid, box) {
    const all = boxes(grid);
    const from = lastBox && all.includes(lastBox) ? all.indexOf(lastBox) : all.indexOf(box);
    const [a, b] = [from, all.indexOf(box)].sort((x, y) => x - y);
    all.slice(a, b + 1).forEach((x) => (x.checked = true));
    lastBox = box;
  }
  function columns(all) {
    if (!all.length) return 1;
    const top = all[0].offsetTop;
    const n = all.findIndex((t) => t.offsetTop !== top);
    return n === -1 ? all.length : n;
  }

  // Mark a tile with its outcome; a reviewed tile leaves the selection for good.
  function mark(grid, item) {
    const tile = grid.querySelector(`.tile[data-image-id="${item.image_id}"]`);
    const name = tile ? tile.getAttribute("title") : `Image ${item.image_id}`;
    const line = document.createElement("li");
    line.dataset.imageId = item.image_id;
    line.dataset.outcome = item.outcome;
    line.textContent = item.outcome === "refused" ? `${name}: refused, ${item.reason}` : `${name}: ${item.outcome}`;
    grid.querySelector("#review-outcomes").prepend(line);
    if (!tile) return;
    tile.classList.remove("outcome-accepted", "outcome-rejected", "outcome-refused");
    tile.classList.add("reviewed", `outcome-${item.outcome}`);
    let badge = tile.querySelector(".review-outcome");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "badge review-outcome";
      tile.appendChild(badge);
    }
    badge.textContent = item.outcome;
    badge.title = item.reason || "";
    const box = tile.querySelector("input[name=image_ids]");
    if (box) {
      box.checked = false;
      box.disabled = true; // accepted, rejected, or no longer waiting (refused): nothing left to decide here
    }
  }

  async function send(grid, verdict, comment) {
    const ids = selected(grid).map(Number);
    if (!ids.length) {
      status(grid, "Select images first (click, Shift+click, arrows and Space, or Ctrl+A)");
      return;
    }
    status(grid, `${verdict === "accept" ? "Accepting" : "Rejecting"} ${plural(ids.length)}…`);
    const response = await fetch(grid.dataset.reviewUrl, {
      method: "POST", credentials: "same-origin",
      headers: { ...csrfHeaders(), "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ image_ids: ids, verdict, comment }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = body.error?.message || `${response.status} ${response.statusText}`;
      status(grid, message);
      if (window.loupeToast) window.loupeToast(message);
      return;
    }
    body.items.forEach((item) => mark(grid, item));
    // An exact count (not "1,000+") follows the verdicts.
    const waiting = grid.querySelector("#review-waiting[data-waiting]");
    if (waiting) {
      const left = Math.max(0, Number(waiting.dataset.waiting) - body.accepted - body.rejected);
      waiting.dataset.waiting = left;
      waiting.textContent = `${left.toLocaleString("en")} waiting for review`;
    }
    const parts = [];
    if (body.accepted) parts.push(`Accepted ${plural(body.accepted)}`);
    if (body.rejected) parts.push(`Rejected ${plural(body.rejected)}`);
    if (body.refused) parts.push(`${plural(body.refused)} refused (see below)`);
    status(grid, parts.join("; "));
    update(grid);
  }
  // One request at a time, in key-press order; a network failure must not block the next one.
  function queue(grid, verdict, comment) {
    busy = busy.then(() => send(grid, verdict, comment)).catch(() => status(grid, "Loupe is not reachable. Check your connection and try again."));
  }
  function askToReject(grid) {
    const n = selected(grid).length;
    if (!n) {
      status(grid, "Select images first (click, Shift+click, arrows and Space, or Ctrl+A)");
      return;
    }
    const dialog = grid.querySelector("#reject-dialog");
    dialog.querySelector("#reject-count").textContent = plural(n);
    dialog.querySelector("#reject-comment").value = "";
    dialog.showModal();
  }
  window.loupeReviewGrid = { pending: () => busy };

  document.addEventListener("close", (event) => {
    const grid = root();
    if (!grid || event.target.id !== "reject-dialog") return;
    const comment = event.target.querySelector("#reject-comment").value.trim();
    if (event.target.returnValue === "reject" && comment) queue(grid, "reject", comment);
  }, true); // "close" does not bubble

  document.addEventListener("click", (event) => {
    const grid = root();
    if (!grid || !grid.contains(event.target)) return;
    const button = event.target.closest("[data-verdict]");
    if (button) {
      if (button.dataset.verdict === "accept") queue(grid, "accept", "");
      else askToReject(grid);
      return;
    }
    const tile = event.target.closest(".tile");
    if (!tile) return;
    const box = tile.querySelector("input[name=image_ids]");
    if (event.target === box) {
      if (event.shiftKey) range(grid, box);
      else lastBox = box;
    } else if (event.target.closest("a.thumb")) {
      if (event.ctrlKey || event.metaKey) return; // open the image in another tab
      // In review mode a click selects; the tile's Label link (and Enter) opens the canvas.
      event.preventDefault();
      if (event.shiftKey && box) range(grid, box);
      else toggle(grid, tile);
    } else {
      return;
    }
    setFocus(grid, tile);
    update(grid);
  });

  const MOVES = { ArrowLeft: -1, ArrowRight: 1 };
  document.addEventListener("keydown", (event) => {
    const grid = root();
    if (!grid || event.altKey || grid.querySelector("#reject-dialog").open) return;
    const target = event.target;
    if (target.closest && target.closest("textarea, select, input:not([type=checkbox])")) return;
    const all = tiles(grid);
    if (!all.length) return;
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key.toLowerCase() === "a") {
      event.preventDefault();
      boxes(grid).forEach((b) => (b.checked = true));
      update(grid);
      return;
    }
    if (mod) return;
    let step = MOVES[event.key];
    if (event.key === "ArrowUp") step = -columns(all);
    if (event.key === "ArrowDown") step = columns(all);
    if (step !== undefined) {
      event.preventDefault();
      const current = focusedTile(grid);
      const from = current ? all.indexOf(current) : -1;
      setFocus(grid, all[from === -1 ? 0 : Math.max(0, Math.min(all.length - 1, from + step))]);
      return;
    }
    const key = event.key.toLowerCase();
    if (key === " " || key === "spacebar") {
      const tile = focusedTile(grid);
      if (!tile) return;
      event.preventDefault();
      // A focused checkbox would toggle itself again on keyup: take the focus off it first.
      if (document.activeElement && document.activeElement.matches("input[type=checkbox]")) document.activeElement.blur();
      toggle(grid, tile);
      update(grid);
    } else if (key === "escape") {
      boxes(grid).forEach((b) => (b.checked = false));
      update(grid);
    } else if (key === "enter" && focusedTile(grid) && target === document.body) {
      focusedTile(grid).querySelector("a.tile-label")?.click();
    } else if (key === "a" && !event.shiftKey) {
      event.preventDefault();
      queue(grid, "accept", "");
    } else if (key === "r" && !event.shiftKey) {
      event.preventDefault(); // keep the r out of the comment box that opens
      askToReject(grid);
    }
  });

  // Tiles appended by infinite scroll, or a grid swapped in for another task: recount.
  document.addEventListener("htmx:afterSettle", () => {
    const grid = root();
    if (grid) update(grid);
  });
  document.addEventListener("DOMContentLoaded", () => {
    const grid = root();
    if (grid) update(grid);
  });
})();
