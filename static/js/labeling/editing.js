// Tools, and the edits that labels' keys and finished drawings make.
import { render, renderDraft } from "./canvas.js";
import { $, toast } from "./dom.js";
import { mutate, redo, undo } from "./history.js";
import { renderPalette } from "./panels.js";
import {
  allowed, cfg, drawable, isClassLabel, labelById, newAnnotation, regionLabels, relabel, state, TOOL_NAMES, toolKeyName, tools,
} from "./state.js";

/** The label a new shape takes: the one picked last, else the first whose default shape it is. */
function labelFor(shape) {
  const candidates = regionLabels();
  const current = labelById(state.currentLabel);
  if (current && candidates.includes(current)) return current.id;
  const match = candidates.find((l) => l.default_shape === shape) || candidates[0];
  return match ? match.id : null;
}

export function addShape(shape, geometry) {
  const label_id = labelFor(shape);
  if (label_id === null) {
    toast(cfg.type === "anomaly"
      ? "Create a defect label (default shape box, polygon or circle) first, on the Labels page: a region marks a defect."
      : "Create a label for this dataset first (Labels page).");
    render();
    return;
  }
  mutate(() => {
    state.anns.push(newAnnotation(label_id, shape, geometry));
    state.selected = state.anns.length - 1;
  });
}

export function removeSelected() {
  removeAt(state.selected);
}

/** Delete the shape at `index` (the Delete key, the selection panel, the object list); never a locked one (history.js). */
export function removeAt(index) {
  const ann = state.anns[index];
  if (!ann || !cfg.can_annotate) return;
  mutate(() => {
    state.anns.splice(index, 1);
    state.selected = -1;
  });
}

/** Select the shape at `index`; one hidden comes back into view, since it is what the person wants to see. */
export function selectAt(index) {
  const ann = state.anns[index];
  if (!ann) return;
  state.hidden.delete(ann.key);
  state.selected = index;
  render();
}

/** Hide or show a shape: a hidden one is neither drawn nor hit by the pointer. */
export function toggleHidden(index) {
  const ann = state.anns[index];
  if (!ann) return;
  if (state.hidden.has(ann.key)) state.hidden.delete(ann.key);
  else {
    state.hidden.add(ann.key);
    if (state.selected === index) state.selected = -1;
  }
  render();
}

/** Lock or unlock a shape: a locked one cannot be moved, reshaped, relabelled or deleted. */
export function toggleLocked(index) {
  const ann = state.anns[index];
  if (!ann) return;
  if (state.locked.has(ann.key)) state.locked.delete(ann.key);
  else state.locked.add(ann.key);
  render();
}

export function finishDraft() {
  const { draft } = state;
  if (!draft) return;
  const pts = draft.points;
  const need = draft.shape === "polygon" ? 3 : draft.shape === "polyline" ? 2 : 1;
  state.draft = null;
  if (pts.length >= need) addShape(draft.shape, { points: pts });
  else render();
}

/** Backspace while drawing: take back the last point. */
export function dropLastPoint() {
  state.draft.points.pop();
  renderDraft();
}

export function cancelDraft() {
  state.draft = null;
  renderDraft();
}

export function setTool(name) {
  if (!tools().includes(name)) return;
  if (state.draft) finishDraft();
  state.tool = name;
  renderPalette();
}

export function cycleTool(back) {
  const list = tools();
  const i = list.indexOf(state.tool);
  setTool(list[(i + (back ? list.length - 1 : 1)) % list.length]);
}

/** A label's key or palette click: label the selection, set the image's class, or pick the label for new shapes. */
export function pickLabel(label) {
  if (!cfg.can_annotate) return;
  const ann = state.anns[state.selected];
  // In an anomaly dataset a class key (normal, anomalous) is always about the whole image.
  const classKey = isClassLabel(label);
  if (state.draft && !classKey) {
    state.currentLabel = label.id;
    renderPalette();
    return;
  }
  if (ann && ann.shape !== "tag" && !classKey) {
    if (!mutate(() => relabel(ann, label.id))) return; // a locked shape
    state.currentLabel = label.id;
    renderPalette();
    return;
  }
  const shapes = drawable();
  if (allowed("tag") && (label.default_shape === "tag" || !shapes.length)) {
    mutate(() => {
      const i = state.anns.findIndex((a) => a.shape === "tag" && a.label_id === label.id);
      if (cfg.single_tag) {
        if (i >= 0) return; // already the image's class
        state.anns = state.anns.filter((a) => a.shape !== "tag");
        state.anns.push(newAnnotation(label.id, "tag", {}));
      } else if (i >= 0) state.anns.splice(i, 1);
      else state.anns.push(newAnnotation(label.id, "tag", {}));
      state.selected = -1;
    });
    return;
  }
  state.currentLabel = label.id;
  // Picking a label means drawing one next, so its default shape's tool comes with it.
  if (shapes.includes(label.default_shape)) setTool(label.default_shape);
  renderPalette();
}

export function buildTools() {
  state.tool = drawable()[0] || "select";
  const bar = $("lb-tools");
  for (const name of tools()) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.tool = name;
    b.textContent = TOOL_NAMES[name];
    b.title = `${TOOL_NAMES[name]} (${toolKeyName(name)}; Tab cycles)`;
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
