// Tools, and the edits that labels' keys and finished drawings make.
import { render, renderDraft } from "./canvas.js";
import { $, toast } from "./dom.js";
import { mutate, redo, undo } from "./history.js";
import { renderPalette } from "./panels.js";
import { allowed, cfg, drawable, labelById, newAnnotation, relabel, state, TOOL_NAMES, tools } from "./state.js";

function labelFor(shape) {
  if (state.currentLabel !== null && labelById(state.currentLabel)) return state.currentLabel;
  const match = cfg.labels.find((l) => l.default_shape === shape) || cfg.labels[0];
  return match ? match.id : null;
}

export function addShape(shape, geometry) {
  const label_id = labelFor(shape);
  if (label_id === null) {
    toast("Create a label for this dataset first (Labels page).");
    return;
  }
  mutate(() => {
    state.anns.push(newAnnotation(label_id, shape, geometry));
    state.selected = state.anns.length - 1;
  });
}

export function removeSelected() {
  if (state.selected < 0 || !cfg.can_annotate) return;
  mutate(() => {
    state.anns.splice(state.selected, 1);
    state.selected = -1;
  });
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

function setTool(name) {
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
  if (state.draft) {
    state.currentLabel = label.id;
    renderPalette();
    return;
  }
  if (ann && ann.shape !== "tag") {
    mutate(() => relabel(ann, label.id));
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
