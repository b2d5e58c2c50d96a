// The SVG: the image, then the shapes, the shape being drawn and the selection's handles on top.
import { $, el } from "./dom.js";
import { handlesOf } from "./geometry.js";
import { renderPalette, renderSelection, renderTags } from "./panels.js";
import { cfg, colorOf, H, state, view, W } from "./state.js";
import { regionLayer } from "./viewport.js";

export let stage = null;
export let svg = null;
export let viewG = null;
let shapesG = null;
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
  draftG = el("g", { id: "lb-draft" });
  handlesG = el("g", { id: "lb-handles" });
  viewG.append(shapesG, draftG, handlesG);
  svg.appendChild(viewG);
}

function shapeNode(ann, index) {
  const g = ann.geometry;
  const color = colorOf(ann);
  const common = { class: "shape" + (index === state.selected ? " selected" : ""), "data-index": index, stroke: color, fill: color };
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
    const node = shapeNode(ann, i);
    if (node) shapesG.appendChild(node);
  });
  renderDraft();
  renderHandles();
  renderTags();
  renderPalette();
  renderSelection();
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
  const ann = state.anns[state.selected];
  if (!ann || ann.shape === "tag") return;
  for (const [name, x, y] of handlesOf(ann)) {
    handlesG.appendChild(el("circle", { class: "handle", "data-handle": name, cx: x, cy: y, r: 5 / view.s }));
  }
}
