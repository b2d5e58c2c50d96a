// Zoom, pan and fit; for large images, a downscaled preview underneath and a sharp region of the
// visible part on top.
import { renderHandles, svg, viewG } from "./canvas.js";
import { $, el } from "./dom.js";
import { cfg, H, view, W } from "./state.js";

const REGION_DELAY = 200;
let regionNode = null;
let region = null; // the region shown: {x, y, width, height, scale, url, naturalWidth, naturalHeight}
let regionWanted = ""; // the URL asked for last (shown or loading)
let regionTimer = null;

export function toImage(event) {
  const rect = svg.getBoundingClientRect();
  return { x: (event.clientX - rect.left - view.tx) / view.s, y: (event.clientY - rect.top - view.ty) / view.s };
}

export function applyView() {
  viewG.setAttribute("transform", `translate(${view.tx} ${view.ty}) scale(${view.s})`);
  $("lb-zoom-level").textContent = `${Math.round(view.s * 100)}%`;
  renderHandles();
  scheduleRegion();
}

export function fit() {
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

// A mouse wheel zooms. A trackpad sends the same events: a pinch arrives as ctrl+wheel with small
// deltas (so it zooms faster per unit, to follow the fingers), and a sideways swipe, which a
// mouse wheel never sends, pans.
function onWheel(event) {
  event.preventDefault();
  const rect = svg.getBoundingClientRect();
  const line = event.deltaMode === 1; // Firefox counts lines; deltaMode 2 counts pages
  const unit = (page) => (line ? 16 : event.deltaMode === 2 ? page : 1);
  if (!event.ctrlKey && Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
    view.tx -= event.deltaX * unit(rect.width);
    view.fitted = false;
    applyView();
    return;
  }
  const speed = event.ctrlKey ? 0.01 : 0.0015;
  zoomAt(event.clientX - rect.left, event.clientY - rect.top, Math.exp(-event.deltaY * unit(rect.height) * speed));
}

export function initViewport() {
  svg.addEventListener("wheel", onWheel, { passive: false });
  $("lb-fit").addEventListener("click", fit);
  window.addEventListener("resize", () => view.fitted && fit());
}

// ---- large images --------------------------------------------------------------------------------

const previewScale = () => Math.min(1, cfg.preview_side / Math.max(W, H));
const screenScale = () => view.s * (window.devicePixelRatio || 1); // device pixels per image pixel

/** The layer for sharp regions, or null when the preview is the whole image anyway. */
export function regionLayer() {
  if (cfg.large && previewScale() < 1) regionNode = el("image", { id: "lb-region", visibility: "hidden", preserveAspectRatio: "none" });
  return regionNode;
}

export const shownRegion = () => region && { ...region };

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
