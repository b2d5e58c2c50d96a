// Shape geometry in image pixels: every result stays inside the image and is rounded to 1/100 px.
import { H, W } from "./state.js";

export const clone = (x) => JSON.parse(JSON.stringify(x));
export const round = (v) => Math.round(v * 100) / 100;
export const clampX = (x) => Math.min(Math.max(x, 0), W);
export const clampY = (y) => Math.min(Math.max(y, 0), H);

export function bboxOf(ann) {
  const g = ann.geometry;
  if (ann.shape === "box") return [g.x, g.y, g.x + g.width, g.y + g.height];
  if (ann.shape === "circle") return [g.cx - g.r, g.cy - g.r, g.cx + g.r, g.cy + g.r];
  const xs = g.points.map((p) => p[0]);
  const ys = g.points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

export function moveBy(ann, orig, dx, dy) {
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

export function dragHandle(ann, orig, handle, p) {
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

export function handlesOf(ann) {
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

export function describe(ann) {
  const g = ann.geometry;
  if (ann.shape === "box") return `${Math.round(g.width)} × ${Math.round(g.height)} at ${Math.round(g.x)}, ${Math.round(g.y)}`;
  if (ann.shape === "circle") return `r ${Math.round(g.r)} at ${Math.round(g.cx)}, ${Math.round(g.cy)}`;
  if (g.points) return `${g.points.length} points`;
  return "whole image";
}
