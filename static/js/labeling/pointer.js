// Mouse, pen and trackpad on the canvas: draw, select, move, drag handles, pan.
import { render, renderDraft, stage, svg } from "./canvas.js";
import { addShape, finishDraft } from "./editing.js";
import { clampX, clampY, clone, dragHandle, moveBy, round } from "./geometry.js";
import { commit } from "./history.js";
import { cfg, H, isLocked, state, view, W } from "./state.js";
import { applyView, toImage } from "./viewport.js";

function onPointerDown(event) {
  stage.focus({ preventScroll: true });
  const p = toImage(event);
  const target = event.target;
  const { anns, tool } = state;
  if (event.button === 1 || (event.button === 0 && state.spaceDown)) {
    startPan(event);
    return;
  }
  if (event.button !== 0) return;
  event.preventDefault();
  const editable = cfg.can_annotate;
  if (editable && target.dataset.handle && state.selected >= 0) {
    state.drag = { kind: "handle", handle: target.dataset.handle, index: state.selected, orig: clone(anns[state.selected].geometry), before: JSON.stringify(anns) };
    svg.setPointerCapture(event.pointerId);
    return;
  }
  const hitNode = target.closest("[data-index]");
  const hit = hitNode ? Number(hitNode.dataset.index) : -1;
  if (state.draft || (editable && ["polygon", "polyline", "points"].includes(tool))) {
    // A second press on the same spot within 400 ms is a double-click: it finishes the shape.
    // (Measured here: with pointerdown's default prevented, browsers differ on firing dblclick.)
    const now = Date.now();
    const last = state.lastPress;
    state.lastPress = { t: now, x: event.clientX, y: event.clientY };
    if (state.draft && last && now - last.t < 400 && Math.hypot(event.clientX - last.x, event.clientY - last.y) < 6) {
      state.lastPress = null;
      finishDraft();
      return;
    }
    if (!state.draft) state.draft = { shape: tool, points: [] };
    state.draft.points.push([round(clampX(p.x)), round(clampY(p.y))]);
    renderDraft();
    return;
  }
  if (hit >= 0 && (tool === "select" || hit === state.selected)) {
    state.selected = hit;
    render();
    // A locked shape is selected (to read its attributes) but never dragged.
    if (editable && !isLocked(anns[hit])) {
      state.drag = { kind: "move", index: hit, start: p, orig: clone(anns[hit].geometry), before: JSON.stringify(anns) };
      svg.setPointerCapture(event.pointerId);
    }
    return;
  }
  if (editable && (tool === "box" || tool === "circle")) {
    const start = { x: clampX(p.x), y: clampY(p.y) };
    state.drag = { kind: tool === "box" ? "draw-box" : "draw-circle", start, cur: start, hit, screen: [event.clientX, event.clientY] };
    svg.setPointerCapture(event.pointerId);
    return;
  }
  // The select tool on empty image: deselect and pan.
  state.selected = -1;
  render();
  startPan(event);
}

function startPan(event) {
  event.preventDefault();
  state.drag = { kind: "pan", x: event.clientX, y: event.clientY, tx: view.tx, ty: view.ty };
  stage.classList.add("panning");
  svg.setPointerCapture(event.pointerId);
}

function onPointerMove(event) {
  const { drag } = state;
  const p = (state.cursor = toImage(event));
  if (!drag) {
    if (state.draft) renderDraft();
    return;
  }
  if (drag.kind === "pan") {
    view.tx = drag.tx + event.clientX - drag.x;
    view.ty = drag.ty + event.clientY - drag.y;
    view.fitted = false;
    applyView();
  } else if (drag.kind === "move") {
    moveBy(state.anns[drag.index], drag.orig, p.x - drag.start.x, p.y - drag.start.y);
    render();
  } else if (drag.kind === "handle") {
    dragHandle(state.anns[drag.index], drag.orig, drag.handle, p);
    render();
  } else {
    drag.cur = { x: clampX(p.x), y: clampY(p.y) };
    renderDraft();
  }
}

function onPointerUp(event) {
  const d = state.drag;
  state.drag = null;
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
      state.selected = d.hit;
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
  if (!state.draft) return;
  event.preventDefault();
  finishDraft();
}

export function initPointer() {
  svg.addEventListener("pointerdown", onPointerDown);
  svg.addEventListener("pointermove", onPointerMove);
  svg.addEventListener("pointerup", onPointerUp);
  svg.addEventListener("pointercancel", onPointerUp);
  svg.addEventListener("dblclick", onDoubleClick);
  svg.addEventListener("auxclick", (e) => e.preventDefault());
}
