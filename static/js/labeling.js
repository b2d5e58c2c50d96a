// The labeling canvas: an SVG editor over the image, the label palette and tags, the selected
// shape's attributes, undo/redo and autosave. Geometry is always in pixels of the original image;
// the view (zoom, pan) is one transform on a <g>, so shapes never need converting.
(function () {
  "use strict";

  const SVGNS = "http://www.w3.org/2000/svg";
  const DRAWABLE = ["box", "polygon", "polyline", "points", "circle"];
  const TOOL_NAMES = { select: "Select", box: "Box", polygon: "Polygon", polyline: "Line", points: "Points", circle: "Circle" };
  const SAVE_DELAY = 600;
  const MAX_RETRY = 30000;

  let cfg, W, H, svg, viewG, shapesG, draftG, handlesG, stage;
  let anns = []; // [{label_id, shape, geometry, attributes, text}]
  let base = 0; // the server revision the edits are based on
  let selected = -1;
  let tool = "select";
  let currentLabel = null;
  const view = { s: 1, tx: 0, ty: 0, fitted: true };
  let undoStack = [];
  let redoStack = [];
  let draft = null; // a polygon/polyline/points shape being clicked in
  let drag = null; // the pointer gesture in progress
  let spaceDown = false;
  let cursor = null; // last pointer position in image pixels
  let lastPress = null; // time and place of the last press while drawing points (double-click)
  // Autosave: every change bumps changeSeq; savedSeq is the change the server has.
  let changeSeq = 0;
  let savedSeq = 0;
  let inflight = false;
  let saveTimer = null;
  let retryDelay = 0;
  let conflict = null;
  let saveError = null;
  let csrf = "";
  let storageKey = "";
  // Large images: a downscaled preview underneath, and a sharp region of the visible part on top.
  let regionNode = null;
  let region = null; // the region shown: {x, y, width, height, scale, url, naturalWidth, naturalHeight}
  let regionWanted = ""; // the URL asked for last (shown or loading)
  let regionTimer = null;
  const REGION_DELAY = 200;

  // ---- helpers ---------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const clone = (x) => JSON.parse(JSON.stringify(x));
  const round = (v) => Math.round(v * 100) / 100;
  const clampX = (x) => Math.min(Math.max(x, 0), W);
  const clampY = (y) => Math.min(Math.max(y, 0), H);
  const labelById = (id) => cfg.labels.find((l) => l.id === id) || null;
  const colorOf = (ann) => (labelById(ann.label_id) || {}).color || "#adb5bd";
  const allowed = (shape) => cfg.shapes.includes(shape);
  const tools = () => ["select", ...DRAWABLE.filter(allowed)];
  const el = (name, attrs) => {
    const node = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  };
  function toast(message) {
    if (window.loupeToast) window.loupeToast(message);
  }

  function toImage(event) {
    const rect = svg.getBoundingClientRect();
    return { x: (event.clientX - rect.left - view.tx) / view.s, y: (event.clientY - rect.top - view.ty) / view.s };
  }

  function payload() {
    return anns.map((a) => ({
      label_id: a.label_id, shape: a.shape, geometry: a.geometry, attributes: a.attributes || {}, text: a.text ?? null,
    }));
  }

  function fromServer(list) {
    return (list || []).map((a) => ({
      label_id: a.label_id, shape: a.shape, geometry: clone(a.geometry || {}), attributes: clone(a.attributes || {}), text: a.text ?? null,
    }));
  }

  // ---- changes, undo/redo -------------------------------------------------------------------------

  /** Run fn as one undoable change; saves if anything changed. */
  function mutate(fn) {
    const before = JSON.stringify(anns);
    fn();
    commit(before);
  }

  function commit(before) {
    if (JSON.stringify(anns) === before) {
      render();
      return;
    }
    undoStack.push(before);
    if (undoStack.length > 200) undoStack.shift();
    redoStack = [];
    changed();
  }

  function changed() {
    changeSeq += 1;
    saveError = null;
    if (selected >= anns.length) selected = -1;
    render();
    keepLocally();
    scheduleSave(SAVE_DELAY);
  }

  function undo() {
    if (!undoStack.length) return;
    redoStack.push(JSON.stringify(anns));
    anns = JSON.parse(undoStack.pop());
    selected = -1;
    changed();
  }

  function redo() {
    if (!redoStack.length) return;
    undoStack.push(JSON.stringify(anns));
    anns = JSON.parse(redoStack.pop());
    selected = -1;
    changed();
  }

  // ---- autosave ------------------------------------------------------------------------------------

  function setStatus(status, text) {
    const node = $("save-status");
    node.dataset.status = status;
    node.textContent = text;
  }

  function keepLocally() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ revision: base, annotations: payload(), at: Date.now() }));
    } catch (e) {
      /* storage full or disabled: the server copy and the retry loop still hold the work */
    }
  }

  function forgetLocally() {
    try {
      localStorage.removeItem(storageKey);
    } catch (e) {
      /* nothing kept */
    }
  }

  function scheduleSave(delay) {
    clearTimeout(saveTimer);
    saveTimer = null;
    if (conflict) return;
    // While offline, the retry message stays up until a save gets through.
    if (savedSeq !== changeSeq && !inflight && !retryDelay) setStatus("pending", "Unsaved changes");
    saveTimer = setTimeout(() => {
      saveTimer = null;
      save();
    }, delay);
  }

  async function save() {
    if (inflight || conflict || savedSeq === changeSeq || !cfg.can_annotate) return;
    inflight = true;
    const seq = changeSeq;
    setStatus("saving", "Saving…");
    let response;
    try {
      response = await fetch(cfg.urls.annotations, {
        method: "PUT",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ revision: base, annotations: payload() }),
        credentials: "same-origin",
      });
    } catch (e) {
      inflight = false;
      retry();
      return;
    }
    inflight = false;
    if (response.ok) {
      const data = await response.json();
      base = data.revision;
      savedSeq = seq;
      retryDelay = 0;
      showState(data.state);
      document.body.dispatchEvent(new CustomEvent("annotationsSaved", { bubbles: true }));
      if (savedSeq === changeSeq) {
        forgetLocally();
        setStatus("saved", "Saved");
      } else {
        keepLocally(); // the newer edits are now based on the new revision
        scheduleSave(0);
      }
      return;
    }
    if (response.status === 409) {
      const body = await response.json().catch(() => ({}));
      const details = (body.error && body.error.details) || {};
      if (details.current_revision === undefined) {
        setStatus("error", "Not saved: " + ((body.error && body.error.message) || "conflict"));
        saveError = seq;
        return;
      }
      conflict = details;
      $("conflict-bar").hidden = false;
      setStatus("error", "Not saved — someone else saved this image");
      return;
    }
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      retry();
      return;
    }
    // A refusal (invalid shape, no permission, signed out): retrying would not help. The work
    // stays in this tab and in localStorage; the next change tries again.
    const body = await response.json().catch(() => null);
    saveError = seq;
    setStatus("error", "Not saved: " + ((body && body.error && body.error.message) || `${response.status} ${response.statusText}`));
  }

  function retry() {
    retryDelay = Math.min(retryDelay ? retryDelay * 2 : 1000, MAX_RETRY);
    scheduleSave(retryDelay);
    setStatus("offline", `Offline — retrying in ${Math.round(retryDelay / 1000)} s`);
  }

  /** Save now and wait for the server to have every change; false when it cannot (offline, conflict). */
  async function flush(timeout = 8000) {
    const end = Date.now() + timeout;
    while (Date.now() < end) {
      if (savedSeq === changeSeq) return true;
      if (conflict || saveError === changeSeq) return false;
      if (!inflight && retryDelay === 0) {
        clearTimeout(saveTimer);
        saveTimer = null;
        save();
      }
      if (retryDelay > 0 && !inflight) return false; // offline: the retry loop keeps going
      await new Promise((r) => setTimeout(r, 50));
    }
    return savedSeq === changeSeq;
  }

  function resolveConflict(keepMine) {
    if (!conflict) return;
    const theirs = conflict;
    conflict = null;
    $("conflict-bar").hidden = true;
    base = theirs.current_revision;
    if (keepMine) {
      keepLocally();
      scheduleSave(0);
      return;
    }
    // "Reload theirs": mine stays one undo away, so nothing is lost silently.
    undoStack.push(JSON.stringify(anns));
    redoStack = [];
    anns = fromServer(theirs.annotations);
    selected = -1;
    savedSeq = changeSeq;
    forgetLocally();
    render();
    setStatus("saved", "Saved");
  }

  function showState(state) {
    if (state) $("lb-state").textContent = String(state).replace("_", " ");
  }

  async function load() {
    setStatus("saving", "Loading…");
    let data;
    try {
      const response = await fetch(cfg.urls.annotations, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(`${response.status}`);
      data = await response.json();
    } catch (e) {
      setStatus("offline", "Offline — could not load the annotations");
      setTimeout(load, 3000);
      return;
    }
    anns = fromServer(data.annotations);
    base = data.revision;
    showState(data.state);
    let kept = null;
    try {
      kept = JSON.parse(localStorage.getItem(storageKey) || "null");
    } catch (e) {
      kept = null;
    }
    if (kept && Array.isArray(kept.annotations)) {
      // Unsaved work from an earlier visit: show it and send it again, based on the revision it
      // was made on; if the image moved on since, the server answers 409 and the bar asks.
      undoStack.push(JSON.stringify(anns));
      anns = fromServer(kept.annotations);
      base = kept.revision;
      changeSeq += 1;
      render();
      scheduleSave(0);
    } else {
      savedSeq = changeSeq;
      render();
      setStatus("saved", "Saved");
    }
  }

  async function reloadFromServer() {
    const response = await fetch(cfg.urls.annotations, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    undoStack.push(JSON.stringify(anns));
    anns = fromServer(data.annotations);
    base = data.revision;
    selected = -1;
    conflict = null;
    $("conflict-bar").hidden = true;
    savedSeq = changeSeq;
    forgetLocally();
    showState(data.state);
    render();
    setStatus("saved", "Saved");
  }

  // ---- view: zoom, pan, fit ----------------------------------------------------------------------

  function applyView() {
    viewG.setAttribute("transform", `translate(${view.tx} ${view.ty}) scale(${view.s})`);
    $("lb-zoom-level").textContent = `${Math.round(view.s * 100)}%`;
    renderHandles();
    scheduleRegion();
  }

  // ---- large images: preview + sharp region ------------------------------------------------------

  const previewScale = () => Math.min(1, cfg.preview_side / Math.max(W, H));
  const screenScale = () => view.s * (window.devicePixelRatio || 1); // device pixels per image pixel

  function scheduleRegion() {
    if (!regionNode) return;
    clearTimeout(regionTimer);
    regionTimer = null;
    if (screenScale() <= previewScale() * 1.05) return dropRegion(); // the preview is sharp enough
    regionTimer = setTimeout(fetchRegion, REGION_DELAY);
  }

  function dropRegion() {
    regionWanted = "";
    region = null;
    regionNode.removeAttribute("href");
    regionNode.setAttribute("visibility", "hidden");
  }

  function visibleRect() {
    const rect = svg.getBoundingClientRect();
    const x0 = Math.max(0, Math.floor(-view.tx / view.s));
    const y0 = Math.max(0, Math.floor(-view.ty / view.s));
    const x1 = Math.min(W, Math.ceil((rect.width - view.tx) / view.s));
    const y1 = Math.min(H, Math.ceil((rect.height - view.ty) / view.s));
    return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  }

  function fetchRegion() {
    regionTimer = null;
    const need = Math.min(1, screenScale());
    const vis = visibleRect();
    if (vis.width < 1 || vis.height < 1) return dropRegion();
    // The shown region still covers the view sharply enough: keep it.
    if (region && region.scale >= need * 0.99 && region.x <= vis.x && region.y <= vis.y &&
        region.x + region.width >= vis.x + vis.width && region.y + region.height >= vis.y + vis.height) return;
    // Power-of-two scales on a grid of 256 output pixels, so small pans and repeats hit the cache.
    let scale = 1;
    while (scale / 2 >= need) scale /= 2;
    const grid = Math.round(256 / scale);
    let box = { x: Math.floor(vis.x / grid) * grid, y: Math.floor(vis.y / grid) * grid };
    box.width = Math.min(W, Math.ceil((vis.x + vis.width) / grid) * grid) - box.x;
    box.height = Math.min(H, Math.ceil((vis.y + vis.height) / grid) * grid) - box.y;
    const max = cfg.region_max;
    if (Math.max(box.width, box.height) * scale > max) {
      box = vis;
      scale = Math.min(scale, Math.floor((max / Math.max(vis.width, vis.height)) * 1e4) / 1e4);
    }
    const url = `${cfg.urls.region}?x=${box.x}&y=${box.y}&width=${box.width}&height=${box.height}&scale=${scale}`;
    if (url === regionWanted) return;
    regionWanted = url;
    const loader = new window.Image();
    loader.src = url;
    loader.decode().then(() => {
      if (regionWanted !== url) return; // zoomed or panned on meanwhile
      region = { ...box, scale, url, naturalWidth: loader.naturalWidth, naturalHeight: loader.naturalHeight };
      for (const k of ["x", "y", "width", "height"]) regionNode.setAttribute(k, box[k]);
      regionNode.setAttribute("href", url);
      regionNode.setAttribute("visibility", "visible");
    }, () => {
      if (regionWanted === url) regionWanted = ""; // the preview stays; a later zoom or pan tries again
    });
  }

  function fit() {
    const rect = svg.getBoundingClientRect();
    if (!rect.width || !rect.height) return;
    view.s = Math.min(rect.width / W, rect.height / H) * 0.98;
    view.tx = (rect.width - W * view.s) / 2;
    view.ty = (rect.height - H * view.s) / 2;
    view.fitted = true;
    applyView();
  }

  function zoomAt(px, py, factor) {
    const rect = svg.getBoundingClientRect();
    const min = Math.min(rect.width / W, rect.height / H) / 4;
    const s = Math.min(Math.max(view.s * factor, min), 64);
    const ix = (px - view.tx) / view.s;
    const iy = (py - view.ty) / view.s;
    view.s = s;
    view.tx = px - ix * s;
    view.ty = py - iy * s;
    view.fitted = false;
    applyView();
  }

  // ---- rendering ---------------------------------------------------------------------------------

  function shapeNode(ann, index) {
    const g = ann.geometry;
    const color = colorOf(ann);
    const common = { class: "shape" + (index === selected ? " selected" : ""), "data-index": index, stroke: color, fill: color };
    if (ann.shape === "box") return el("rect", { ...common, x: g.x, y: g.y, width: g.width, height: g.height });
    if (ann.shape === "circle") return el("circle", { ...common, cx: g.cx, cy: g.cy, r: g.r });
    if (ann.shape === "polygon") return el("polygon", { ...common, points: g.points.map((p) => p.join(",")).join(" ") });
    if (ann.shape === "polyline") {
      return el("polyline", { ...common, class: common.class + " open", points: g.points.map((p) => p.join(",")).join(" ") });
    }
    if (ann.shape === "points") {
      const group = el("g", { "data-index": index, class: "shape-points" });
      for (const [x, y] of g.points) {
        group.appendChild(el("circle", { ...common, class: common.class + " pt", cx: x, cy: y, r: 5 / view.s }));
      }
      return group;
    }
    return null;
  }

  function render() {
    shapesG.replaceChildren();
    anns.forEach((ann, i) => {
      const node = shapeNode(ann, i);
      if (node) shapesG.appendChild(node);
    });
    renderDraft();
    renderHandles();
    renderTags();
    renderPalette();
    renderSelection();
  }

  function renderDraft() {
    draftG.replaceChildren();
    if (drag && (drag.kind === "draw-box" || drag.kind === "draw-circle")) {
      const { start, cur } = drag;
      if (drag.kind === "draw-box") {
        draftG.appendChild(el("rect", {
          class: "draft", x: Math.min(start.x, cur.x), y: Math.min(start.y, cur.y), width: Math.abs(cur.x - start.x), height: Math.abs(cur.y - start.y),
        }));
      } else {
        draftG.appendChild(el("circle", { class: "draft", cx: start.x, cy: start.y, r: Math.hypot(cur.x - start.x, cur.y - start.y) }));
      }
    }
    if (draft) {
      const pts = draft.points.slice();
      if (cursor && draft.shape !== "points") pts.push([cursor.x, cursor.y]);
      if (draft.shape !== "points") draftG.appendChild(el("polyline", { class: "draft", points: pts.map((p) => p.join(",")).join(" ") }));
      for (const [x, y] of draft.points) draftG.appendChild(el("circle", { class: "handle", cx: x, cy: y, r: 3.5 / view.s }));
    }
  }

  function handlesOf(ann) {
    const g = ann.geometry;
    if (ann.shape === "box") {
      return [
        ["nw", g.x, g.y], ["ne", g.x + g.width, g.y], ["sw", g.x, g.y + g.height], ["se", g.x + g.width, g.y + g.height],
      ];
    }
    if (ann.shape === "circle") return [["r", g.cx + g.r, g.cy]];
    if (g.points) return g.points.map(([x, y], i) => [String(i), x, y]);
    return [];
  }

  function renderHandles() {
    if (!handlesG) return;
    handlesG.replaceChildren();
    shapesG.querySelectorAll(".pt").forEach((c) => c.setAttribute("r", 5 / view.s));
    const ann = anns[selected];
    if (!ann || ann.shape === "tag") return;
    for (const [name, x, y] of handlesOf(ann)) {
      handlesG.appendChild(el("circle", { class: "handle", "data-handle": name, cx: x, cy: y, r: 5 / view.s }));
    }
  }

  function renderTags() {
    const box = $("lb-tags");
    if (!box) return;
    box.replaceChildren();
    const tags = anns.map((a, i) => [a, i]).filter(([a]) => a.shape === "tag");
    if (!tags.length) {
      const hint = document.createElement("span");
      hint.className = "muted";
      hint.textContent = cfg.single_tag ? "None yet: press a label's key." : "None yet: press labels' keys to toggle them.";
      box.appendChild(hint);
    }
    for (const [ann, index] of tags) {
      const label = labelById(ann.label_id) || { name: `#${ann.label_id}`, color: "#adb5bd" };
      const chip = document.createElement("span");
      chip.className = "lb-tag";
      chip.dataset.labelId = ann.label_id;
      chip.style.setProperty("--label-color", label.color);
      chip.textContent = label.name;
      if (cfg.can_annotate) {
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link";
        remove.style.color = "#fff";
        remove.setAttribute("aria-label", `Remove ${label.name}`);
        remove.textContent = "×";
        remove.addEventListener("click", () => mutate(() => anns.splice(index, 1)));
        chip.appendChild(remove);
      }
      box.appendChild(chip);
    }
  }

  function renderPalette() {
    const tagged = new Set(anns.filter((a) => a.shape === "tag").map((a) => a.label_id));
    document.querySelectorAll(".lb-label").forEach((button) => {
      const id = Number(button.dataset.labelId);
      button.classList.toggle("active", currentLabel === id);
      button.classList.toggle("on", tagged.has(id));
    });
    document.querySelectorAll("#lb-tools [data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === tool));
    stage.classList.toggle("tool-draw", tool !== "select");
  }

  function renderSelection() {
    const body = $("lb-selection-body");
    const ann = anns[selected];
    body.replaceChildren();
    if (!ann) {
      body.innerHTML = '<p class="muted">Nothing selected.</p>';
      return;
    }
    const label = labelById(ann.label_id);
    const field = (text, input) => {
      const wrap = document.createElement("div");
      wrap.className = "lb-field";
      const lab = document.createElement("label");
      lab.textContent = text;
      const id = "lb-f-" + text.toLowerCase().replace(/[^a-z0-9]+/g, "-");
      lab.htmlFor = input.id = id;
      wrap.append(lab, input);
      body.appendChild(wrap);
      input.disabled = !cfg.can_annotate;
      return input;
    };
    const info = document.createElement("p");
    info.className = "muted";
    info.id = "lb-selection-shape";
    info.textContent = `${ann.shape} · ${describe(ann)}`;
    body.appendChild(info);

    const select = document.createElement("select");
    for (const l of cfg.labels) select.add(new Option(l.name + (l.shortcut ? ` (${l.shortcut})` : ""), l.id, false, l.id === ann.label_id));
    field("Label", select).addEventListener("change", () => mutate(() => (anns[selected].label_id = Number(select.value))));

    for (const def of (label && label.attributes) || []) {
      const name = def.name;
      if (!name) continue;
      const value = (ann.attributes || {})[name];
      let input;
      if (def.type === "checkbox") {
        input = document.createElement("input");
        input.type = "checkbox";
        input.checked = !!value;
      } else if (def.type === "select") {
        input = document.createElement("select");
        input.add(new Option("—", ""));
        for (const v of def.values || def.options || []) input.add(new Option(v, v, false, v === value));
      } else {
        input = document.createElement("input");
        input.type = def.type === "number" ? "number" : "text";
        input.step = "any";
        input.value = value ?? "";
      }
      field(name, input).addEventListener("change", () => mutate(() => {
        const attrs = { ...(anns[selected].attributes || {}) };
        if (def.type === "checkbox") attrs[name] = input.checked;
        else if (def.type === "number") {
          if (input.value === "") delete attrs[name];
          else attrs[name] = Number(input.value);
        } else if (input.value === "") delete attrs[name];
        else attrs[name] = input.value;
        anns[selected].attributes = attrs;
      }));
    }
    if (label && label.with_text) {
      const text = document.createElement("textarea");
      text.rows = 2;
      text.value = ann.text || "";
      field("Text (OCR)", text).addEventListener("change", () => mutate(() => (anns[selected].text = text.value || null)));
    }
    if (cfg.can_annotate) {
      const del = document.createElement("button");
      del.type = "button";
      del.className = "danger";
      del.textContent = "Delete (Del)";
      del.addEventListener("click", removeSelected);
      body.appendChild(del);
    }
  }

  function describe(ann) {
    const g = ann.geometry;
    if (ann.shape === "box") return `${Math.round(g.width)} × ${Math.round(g.height)} at ${Math.round(g.x)}, ${Math.round(g.y)}`;
    if (ann.shape === "circle") return `r ${Math.round(g.r)} at ${Math.round(g.cx)}, ${Math.round(g.cy)}`;
    if (g.points) return `${g.points.length} points`;
    return "whole image";
  }

  // ---- editing -----------------------------------------------------------------------------------

  function labelFor(shape) {
    if (currentLabel !== null && labelById(currentLabel)) return currentLabel;
    const match = cfg.labels.find((l) => l.default_shape === shape) || cfg.labels[0];
    return match ? match.id : null;
  }

  function addShape(shape, geometry) {
    const label_id = labelFor(shape);
    if (label_id === null) {
      toast("Create a label for this dataset first (Labels page).");
      return;
    }
    mutate(() => {
      anns.push({ label_id, shape, geometry, attributes: {}, text: null });
      selected = anns.length - 1;
    });
  }

  function removeSelected() {
    if (selected < 0 || !cfg.can_annotate) return;
    mutate(() => {
      anns.splice(selected, 1);
      selected = -1;
    });
  }

  function finishDraft() {
    if (!draft) return;
    const pts = draft.points;
    const need = draft.shape === "polygon" ? 3 : draft.shape === "polyline" ? 2 : 1;
    const shape = draft.shape;
    draft = null;
    if (pts.length >= need) addShape(shape, { points: pts });
    else render();
  }

  function bboxOf(ann) {
    const g = ann.geometry;
    if (ann.shape === "box") return [g.x, g.y, g.x + g.width, g.y + g.height];
    if (ann.shape === "circle") return [g.cx - g.r, g.cy - g.r, g.cx + g.r, g.cy + g.r];
    const xs = g.points.map((p) => p[0]);
    const ys = g.points.map((p) => p[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  }

  function moveBy(ann, orig, dx, dy) {
    const [x0, y0, x1, y1] = bboxOf({ shape: ann.shape, geometry: orig });
    dx = Math.min(Math.max(dx, -x0), W - x1); // the shape stays inside the image
    dy = Math.min(Math.max(dy, -y0), H - y1);
    const g = clone(orig);
    if (ann.shape === "box") {
      g.x = round(g.x + dx);
      g.y = round(g.y + dy);
    } else if (ann.shape === "circle") {
      g.cx = round(g.cx + dx);
      g.cy = round(g.cy + dy);
    } else g.points = g.points.map(([x, y]) => [round(x + dx), round(y + dy)]);
    ann.geometry = g;
  }

  function dragHandle(ann, orig, handle, p) {
    const x = round(clampX(p.x));
    const y = round(clampY(p.y));
    if (ann.shape === "box") {
      const left = orig.x;
      const top = orig.y;
      const right = orig.x + orig.width;
      const bottom = orig.y + orig.height;
      const fx = handle.includes("w") ? right : left; // the opposite corner stays put
      const fy = handle.includes("n") ? bottom : top;
      ann.geometry = { x: Math.min(fx, x), y: Math.min(fy, y), width: round(Math.abs(x - fx)), height: round(Math.abs(y - fy)) };
    } else if (ann.shape === "circle") {
      const r = Math.hypot(p.x - orig.cx, p.y - orig.cy);
      const fits = Math.min(r, orig.cx, orig.cy, W - orig.cx, H - orig.cy);
      ann.geometry = { cx: orig.cx, cy: orig.cy, r: round(Math.max(fits, 1)) };
    } else {
      const g = clone(orig);
      g.points[Number(handle)] = [x, y];
      ann.geometry = g;
    }
  }

  function setTool(name) {
    if (!tools().includes(name)) return;
    if (draft) finishDraft();
    tool = name;
    renderPalette();
  }

  function cycleTool(back) {
    const list = tools();
    const i = list.indexOf(tool);
    setTool(list[(i + (back ? list.length - 1 : 1)) % list.length]);
  }

  /** A label's key or palette click: label the selection, set the image's class, or pick the label for new shapes. */
  function pickLabel(label) {
    if (!cfg.can_annotate) return;
    const ann = anns[selected];
    if (draft) {
      currentLabel = label.id;
      renderPalette();
      return;
    }
    if (ann && ann.shape !== "tag") {
      mutate(() => (ann.label_id = label.id));
      currentLabel = label.id;
      renderPalette();
      return;
    }
    const drawable = DRAWABLE.filter(allowed);
    if (allowed("tag") && (label.default_shape === "tag" || !drawable.length)) {
      mutate(() => {
        const i = anns.findIndex((a) => a.shape === "tag" && a.label_id === label.id);
        if (cfg.single_tag) {
          if (i >= 0) return; // already the image's class
          anns = anns.filter((a) => a.shape !== "tag");
          anns.push({ label_id: label.id, shape: "tag", geometry: {}, attributes: {}, text: null });
        } else if (i >= 0) anns.splice(i, 1);
        else anns.push({ label_id: label.id, shape: "tag", geometry: {}, attributes: {}, text: null });
        selected = -1;
      });
      return;
    }
    currentLabel = label.id;
    if (drawable.includes(label.default_shape) && tool !== "select") setTool(label.default_shape);
    else if (drawable.includes(label.default_shape) && tool === "select" && selected < 0) setTool(label.default_shape);
    renderPalette();
  }

  // ---- pointer ----------------------------------------------------------------------------------

  function onPointerDown(event) {
    stage.focus({ preventScroll: true });
    const p = toImage(event);
    const target = event.target;
    if (event.button === 1 || (event.button === 0 && spaceDown)) {
      startPan(event);
      return;
    }
    if (event.button !== 0) return;
    event.preventDefault();
    const editable = cfg.can_annotate;
    if (editable && target.dataset.handle && selected >= 0) {
      drag = { kind: "handle", handle: target.dataset.handle, index: selected, orig: clone(anns[selected].geometry), before: JSON.stringify(anns) };
      svg.setPointerCapture(event.pointerId);
      return;
    }
    const hitNode = target.closest("[data-index]");
    const hit = hitNode ? Number(hitNode.dataset.index) : -1;
    if (draft || (editable && ["polygon", "polyline", "points"].includes(tool))) {
      // A second press on the same spot within 400 ms is a double-click: it finishes the shape.
      // (Measured here: with pointerdown's default prevented, browsers differ on firing dblclick.)
      const now = Date.now();
      const last = lastPress;
      lastPress = { t: now, x: event.clientX, y: event.clientY };
      if (draft && last && now - last.t < 400 && Math.hypot(event.clientX - last.x, event.clientY - last.y) < 6) {
        lastPress = null;
        finishDraft();
        return;
      }
      if (!draft) draft = { shape: tool, points: [] };
      draft.points.push([round(clampX(p.x)), round(clampY(p.y))]);
      renderDraft();
      return;
    }
    if (hit >= 0 && (tool === "select" || hit === selected)) {
      selected = hit;
      render();
      if (editable) {
        drag = { kind: "move", index: hit, start: p, orig: clone(anns[hit].geometry), before: JSON.stringify(anns) };
        svg.setPointerCapture(event.pointerId);
      }
      return;
    }
    if (editable && (tool === "box" || tool === "circle")) {
      const start = { x: clampX(p.x), y: clampY(p.y) };
      drag = { kind: tool === "box" ? "draw-box" : "draw-circle", start, cur: start, hit, screen: [event.clientX, event.clientY] };
      svg.setPointerCapture(event.pointerId);
      return;
    }
    // The select tool on empty image: deselect and pan.
    selected = -1;
    render();
    startPan(event);
  }

  function startPan(event) {
    event.preventDefault();
    drag = { kind: "pan", x: event.clientX, y: event.clientY, tx: view.tx, ty: view.ty };
    stage.classList.add("panning");
    svg.setPointerCapture(event.pointerId);
  }

  function onPointerMove(event) {
    cursor = toImage(event);
    if (!drag) {
      if (draft) renderDraft();
      return;
    }
    const p = cursor;
    if (drag.kind === "pan") {
      view.tx = drag.tx + event.clientX - drag.x;
      view.ty = drag.ty + event.clientY - drag.y;
      view.fitted = false;
      applyView();
    } else if (drag.kind === "move") {
      moveBy(anns[drag.index], drag.orig, p.x - drag.start.x, p.y - drag.start.y);
      render();
    } else if (drag.kind === "handle") {
      dragHandle(anns[drag.index], drag.orig, drag.handle, p);
      render();
    } else {
      drag.cur = { x: clampX(p.x), y: clampY(p.y) };
      renderDraft();
    }
  }

  function onPointerUp(event) {
    const d = drag;
    drag = null;
    stage.classList.remove("panning");
    if (!d) return;
    if (d.kind === "move" || d.kind === "handle") {
      commit(d.before);
      return;
    }
    if (d.kind === "draw-box" || d.kind === "draw-circle") {
      const moved = Math.hypot(event.clientX - d.screen[0], event.clientY - d.screen[1]);
      if (moved < 4) {
        // A click, not a drag: select what is under it (or nothing).
        selected = d.hit;
        render();
        return;
      }
      const { start, cur } = d;
      if (d.kind === "draw-box") {
        addShape("box", {
          x: round(Math.min(start.x, cur.x)), y: round(Math.min(start.y, cur.y)),
          width: round(Math.abs(cur.x - start.x)), height: round(Math.abs(cur.y - start.y)),
        });
      } else {
        const r = Math.min(Math.hypot(cur.x - start.x, cur.y - start.y), start.x, start.y, W - start.x, H - start.y);
        if (r >= 1) addShape("circle", { cx: round(start.x), cy: round(start.y), r: round(r) });
        else render();
      }
    }
  }

  function onDoubleClick(event) {
    if (!draft) return;
    event.preventDefault();
    finishDraft();
  }

  function onWheel(event) {
    event.preventDefault();
    const rect = svg.getBoundingClientRect();
    const delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    zoomAt(event.clientX - rect.left, event.clientY - rect.top, Math.exp(-delta * 0.0015));
  }

  // ---- keyboard ---------------------------------------------------------------------------------

  function inField(target) {
    return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function labelForKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return null;
    return cfg.labels.find((l) => l.shortcut && l.shortcut === event.key)
      || cfg.labels.find((l) => l.shortcut && l.shortcut.toLowerCase() === event.key.toLowerCase() && !event.shiftKey) || null;
  }

  function onKeyDown(event) {
    if (event.key === "Escape") {
      if ($("lb-help").hidden === false) return toggleHelp(false);
      if (inField(event.target)) return event.target.blur();
      if (draft) {
        draft = null;
        renderDraft();
      } else {
        selected = -1;
        render();
      }
      return;
    }
    if (inField(event.target)) return;
    const key = event.key;
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && (key === "z" || key === "Z")) {
      event.preventDefault();
      return event.shiftKey ? redo() : undo();
    }
    if (ctrl && (key === "y" || key === "Y")) {
      event.preventDefault();
      return redo();
    }
    if (ctrl) return;
    if (key === "?") return toggleHelp();
    if (event.shiftKey && (key === "S" || key === "s")) {
      event.preventDefault();
      return finish("skip");
    }
    const label = labelForKey(event);
    if (label) {
      event.preventDefault();
      return pickLabel(label);
    }
    if (key === " ") {
      spaceDown = true;
      stage.classList.add("space");
      event.preventDefault();
      return;
    }
    if (key === "f" || key === "F") return fit();
    if (key === "Tab") {
      event.preventDefault();
      return cycleTool(event.shiftKey);
    }
    if (key === "Delete" || key === "Backspace") {
      event.preventDefault();
      if (draft && key === "Backspace") {
        draft.points.pop();
        return renderDraft();
      }
      return removeSelected();
    }
    if (key === "Enter") {
      event.preventDefault();
      if (draft) return finishDraft();
      return finish("submit");
    }
    if (key === "ArrowRight") return go(cfg.urls.next, event);
    if (key === "ArrowLeft") return go(cfg.urls.previous, event);
  }

  function onKeyUp(event) {
    if (event.key === " ") {
      spaceDown = false;
      stage.classList.remove("space");
    }
  }

  async function go(url, event) {
    if (event) event.preventDefault();
    if (!url) return toast("This is the last image of this filter.");
    if (await flush()) {
      window.location.href = url;
      return;
    }
    toast(conflict ? "Resolve the conflict first: reload theirs or keep yours." : "Not saved yet; Loupe keeps retrying. Try again in a moment.");
  }

  async function finish(action) {
    if (!cfg.can_annotate) return;
    if (action === "submit" && !(await flush())) {
      toast(conflict ? "Resolve the conflict first: reload theirs or keep yours." : "Not saved yet; Loupe keeps retrying. Try again in a moment.");
      return;
    }
    if (action === "skip") {
      // Skip submits no annotations: drop any pending save so it cannot land afterwards.
      clearTimeout(saveTimer);
      saveTimer = null;
      while (inflight) await new Promise((r) => setTimeout(r, 50));
    }
    setStatus("saving", action === "submit" ? "Submitting…" : "Skipping…");
    let response;
    try {
      response = await fetch(cfg.urls[action], {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ revision: base }),
        credentials: "same-origin",
      });
    } catch (e) {
      setStatus("offline", "Offline — not submitted; try again");
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      setStatus("error", `Not ${action === "submit" ? "submitted" : "skipped"}: ${(body.error && body.error.message) || response.status}`);
      return;
    }
    if (action === "skip") {
      savedSeq = changeSeq;
      forgetLocally();
    }
    showState(body.state);
    setStatus("saved", action === "submit" ? "Submitted" : "Skipped");
    document.body.dispatchEvent(new CustomEvent("annotationsSaved", { bubbles: true }));
    if (cfg.urls.next) window.location.href = cfg.urls.next;
    else await reloadFromServer().then(() => setStatus("saved", action === "submit" ? "Submitted" : "Skipped"));
  }

  function toggleHelp(show) {
    const help = $("lb-help");
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  function buildHelp() {
    const rows = [
      ["?", "Show or hide this list"],
      ["Tab / Shift+Tab", "Next / previous tool (" + tools().map((t) => TOOL_NAMES[t]).join(", ") + ")"],
      ["Drag", "Box and circle (from the centre): draw; select tool: move a shape or pan"],
      ["Click … Enter or double-click", "Polygon, line and points: add points, then finish"],
      ["Backspace", "While drawing: remove the last point"],
      ["Escape", "Cancel drawing, or clear the selection"],
      ["Delete", "Delete the selected shape"],
      ["Ctrl+Z", "Undo"],
      ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
      ["Wheel", "Zoom around the pointer"],
      ["Space+drag / middle button", "Pan"],
      ["F", "Fit the image"],
      ["→ / ←", "Next / previous image (after saving)"],
      ["Enter", "Submit"],
      ["Shift+S", "Skip (submit with no annotations)"],
    ];
    for (const l of cfg.labels) if (l.shortcut) rows.push([l.shortcut, `Label: ${l.name}`]);
    const tbody = $("lb-help-table").tBodies[0];
    for (const [keys, what] of rows) {
      const tr = tbody.insertRow();
      const kbd = document.createElement("kbd");
      kbd.textContent = keys;
      tr.insertCell().appendChild(kbd);
      tr.insertCell().textContent = what;
    }
  }

  function buildTools() {
    const bar = $("lb-tools");
    for (const name of tools()) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.tool = name;
      b.textContent = TOOL_NAMES[name];
      b.title = `${TOOL_NAMES[name]} (Tab cycles)`;
      b.addEventListener("click", () => setTool(name));
      bar.appendChild(b);
    }
    for (const [text, title, fn] of [["Undo", "Undo (Ctrl+Z)", undo], ["Redo", "Redo (Ctrl+Shift+Z)", redo]]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.title = title;
      b.addEventListener("click", fn);
      bar.appendChild(b);
    }
  }

  // ---- start ------------------------------------------------------------------------------------

  function init() {
    const config = $("labeling-config");
    if (!config) return;
    cfg = JSON.parse(config.textContent);
    W = cfg.width;
    H = cfg.height;
    storageKey = `loupe:annotations:${cfg.dataset_id}:${cfg.image_id}`;
    try {
      csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      csrf = "";
    }
    stage = $("lb-stage");
    svg = $("lb-svg");
    viewG = el("g", { id: "lb-view" });
    // Large images start from the server's downscaled preview, drawn at full image size.
    const href = cfg.large ? cfg.urls.preview : cfg.urls.file;
    viewG.appendChild(el("image", { id: "lb-image", href, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none" }));
    if (cfg.large && previewScale() < 1) {
      regionNode = el("image", { id: "lb-region", visibility: "hidden", preserveAspectRatio: "none" });
      viewG.appendChild(regionNode);
    }
    shapesG = el("g", { id: "lb-shapes" });
    draftG = el("g", { id: "lb-draft" });
    handlesG = el("g", { id: "lb-handles" });
    viewG.append(shapesG, draftG, handlesG);
    svg.appendChild(viewG);

    const drawable = DRAWABLE.filter(allowed);
    tool = drawable[0] || "select";
    buildTools();
    buildHelp();

    svg.addEventListener("pointerdown", onPointerDown);
    svg.addEventListener("pointermove", onPointerMove);
    svg.addEventListener("pointerup", onPointerUp);
    svg.addEventListener("pointercancel", onPointerUp);
    svg.addEventListener("dblclick", onDoubleClick);
    svg.addEventListener("wheel", onWheel, { passive: false });
    svg.addEventListener("auxclick", (e) => e.preventDefault());
    document.addEventListener("keydown", onKeyDown);
    document.addEventListener("keyup", onKeyUp);
    document.querySelectorAll(".lb-label").forEach((b) => {
      b.addEventListener("click", () => pickLabel(labelById(Number(b.dataset.labelId))));
    });
    $("lb-fit").addEventListener("click", fit);
    $("lb-help-close").addEventListener("click", () => toggleHelp(false));
    $("conflict-reload").addEventListener("click", () => resolveConflict(false));
    $("conflict-keep").addEventListener("click", () => resolveConflict(true));
    const submit = $("lb-submit");
    if (submit) submit.addEventListener("click", () => finish("submit"));
    const skip = $("lb-skip");
    if (skip) skip.addEventListener("click", () => finish("skip"));
    for (const [id, dir] of [["lb-next", "next"], ["lb-previous", "previous"]]) {
      const link = $(id);
      if (link) link.addEventListener("click", (e) => go(cfg.urls[dir], e));
    }
    document.body.addEventListener("annotationsRestored", reloadFromServer);
    window.addEventListener("resize", () => view.fitted && fit());
    window.addEventListener("online", () => retryDelay && scheduleSave(0));

    fit();
    render();
    load();
    // For tests and the console: the editor's state, read-only.
    window.loupeLabeling = {
      get annotations() { return payload(); },
      get revision() { return base; },
      get selected() { return selected; },
      get tool() { return tool; },
      get view() { return { ...view }; },
      get region() { return region && { ...region }; },
      get saving() { return { changeSeq, savedSeq, inflight, retryDelay, conflict: !!conflict, timer: saveTimer !== null }; },
    };
  }

  document.addEventListener("DOMContentLoaded", init);
})();
