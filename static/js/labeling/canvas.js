// The SVG: the image, then the shapes, the shape being drawn and the selection's handles on top.
import { $, el } from "./dom.js";
import { bboxOf, handlesOf } from "./geometry.js";
import { renderObjects } from "./objects.js";
import { renderPalette, renderSelection, renderTags } from "./panels.js";
import { cfg, colorOf, H, isHidden, isLocked, labelById, state, view, W } from "./state.js";
import { regionLayer } from "./viewport.js";

export let stage = null;
export let svg = null;
export let viewG = null;
let shapesG = null;
let namesG = null;
let draftG = null;
let handlesG = null;

export function buildCanvas() {
  stage = $("lb-stage");
  svg = $("lb-svg");
  viewG = el("g", { id: "lb-view" });
  // Large images start from the server's downscaled preview, drawn at full image size.
  const href = cfg.large ? cfg.urls.preview : cfg.urls.file;
  viewG.appendChild(el("image", { id: "lb-image", href, x: 0, y: 0, width: W, height: H, preserveAspectRatio: "none" }));
  const region = regionLayer();
  if (region) viewG.appendChild(region);
  shapesG = el("g", { id: "lb-shapes" });
  namesG = el("g", { id: "lb-names" });
  draftG = el("g", { id: "lb-draft" });
  handlesG = el("g", { id: "lb-handles" });
  viewG.append(shapesG, namesG, draftG, handlesG);
  svg.appendChild(viewG);
}

function shapeNode(ann, index) {
  const g = ann.geometry;
  const color = colorOf(ann);
  const classes = ["shape", index === state.selected && "selected", isLocked(ann) && "locked"].filter(Boolean).join(" ");
  const common = { class: classes, "data-index": index, stroke: color, fill: color };
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

/** Redraw the shapes and every panel that shows them. */
export function render() {
  shapesG.replaceChildren();
  state.anns.forEach((ann, i) => {
    const node = isHidden(ann) ? null : shapeNode(ann, i);
    if (node) shapesG.appendChild(node);
  });
  renderDraft();
  renderHandles();
  renderTags();
  renderPalette();
  renderSelection();
  renderObjects();
}

/** Each shape's label name on the canvas, just above its top-left corner, at one size on screen. */
function renderNames() {
  namesG.replaceChildren();
  const size = 13 / view.s;
  state.anns.forEach((ann, i) => {
    if (ann.shape === "tag" || isHidden(ann)) return;
    const label = labelById(ann.label_id);
    const [x0, y0] = bboxOf(ann);
    // Inside the shape when there is no room above it, at the image's top edge.
    const above = y0 - 4 / view.s >= size;
    const text = el("text", {
      class: "shape-name", "data-index": i, x: x0 + 2 / view.s, y: above ? y0 - 4 / view.s : y0 + size + 2 / view.s,
      "font-size": size, stroke: colorOf(ann), "stroke-width": 3 / view.s,
    });
    text.textContent = label ? label.name : `label #${ann.label_id}`;
    namesG.appendChild(text);
  });
}

export function renderDraft() {
  const { drag, draft, cursor } = state;
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

/** Handles and point markers keep their size on screen, whatever the zoom. */
export function renderHandles() {
  if (!handlesG) return;
  handlesG.replaceChildren();
  shapesG.querySelectorAll(".pt").forEach((c) => c.setAttribute("r", 5 / view.s));
  renderNames();
  const ann = state.anns[state.selected];
  // A locked shape shows no handles: nothing to grab, so nothing to change by pointer.
  if (!ann || ann.shape === "tag" || isLocked(ann)) return;
  for (const [name, x, y] of handlesOf(ann)) {
    handlesG.appendChild(el("circle", { class: "handle", "data-handle": name, cx: x, cy: y, r: 5 / view.s }));
  }
}
