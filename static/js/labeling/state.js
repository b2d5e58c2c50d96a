// What every part of the editor shares: the page's configuration and the editing state. Geometry
// is always in pixels of the original image; the view (zoom, pan) is one transform on a <g>, so
// shapes never need converting.

const DRAWABLE = ["box", "polygon", "polyline", "points", "circle"];
export const TOOL_NAMES = { select: "Select", box: "Box", polygon: "Polygon", polyline: "Line", points: "Points", circle: "Circle" };
// Each tool's own key (keyboard.js). A label whose shortcut is the same key keeps it; the tool is
// then on Shift+key, which always works.
export const TOOL_KEYS = { v: "select", b: "box", p: "polygon", l: "polyline", o: "points", c: "circle" };

/** The key that picks the tool, as the "?" list and the buttons' titles name it. */
export function toolKeyName(tool) {
  const key = Object.keys(TOOL_KEYS).find((k) => TOOL_KEYS[k] === tool);
  if (!key) return "";
  return cfg.labels.some((l) => l.shortcut === key) ? `Shift+${key.toUpperCase()}` : key.toUpperCase();
}

export let cfg = null;
export let W = 0; // the image's size in pixels
export let H = 0;

export function configure(config) {
  cfg = config;
  W = config.width;
  H = config.height;
}

// Plain properties rather than exported variables, so that every module may assign them.
export const state = {
  anns: [], // [{label_id, shape, geometry, attributes, text}]
  selected: -1,
  tool: "select",
  currentLabel: null,
  draft: null, // a polygon/polyline/points shape being clicked in
  drag: null, // the pointer gesture in progress
  spaceDown: false,
  cursor: null, // last pointer position in image pixels
  lastPress: null, // time and place of the last press while drawing points (double-click)
  // Annotation keys hidden or locked in the object list: the editor's view only, never saved, and
  // kept apart from `anns` so that toggling them is no edit (no undo step, no save).
  hidden: new Set(),
  locked: new Set(),
};

export const view = { s: 1, tx: 0, ty: 0, fitted: true };

export const labelById = (id) => cfg.labels.find((l) => l.id === id) || null;
export const isHidden = (ann) => !!ann && state.hidden.has(ann.key);
export const isLocked = (ann) => !!ann && state.locked.has(ann.key);
// The labels a drawn region may take. In an anomaly dataset the image's classes (normal,
// anomalous) are whole-image tags and a region marks a defect, so it takes a defect label: one
// whose default shape is a region, never the "normal" class.
export const regionLabels = () => (cfg.type === "anomaly" ? cfg.labels.filter((l) => l.default_shape !== "tag") : cfg.labels);
export const isClassLabel = (label) => cfg.type === "anomaly" && !!label && label.default_shape === "tag";
export const colorOf = (ann) => (labelById(ann.label_id) || {}).color || "#adb5bd";
export const allowed = (shape) => cfg.shapes.includes(shape);
export const drawable = () => DRAWABLE.filter(allowed);
export const tools = () => ["select", ...drawable()];

// Whether a value fits an attribute definition (the server refuses one that does not).
function fits(def, value) {
  if (value === undefined || value === null) return false;
  if (def.type === "number") return typeof value === "number" && Number.isFinite(value);
  if (def.type === "checkbox") return typeof value === "boolean";
  if (def.type === "select") return (def.values || []).includes(value);
  return typeof value === "string";
}

// The attributes a shape of this label carries: the values it had that the label also defines,
// else the label's defaults (so a new shape starts as the Labels page promised).
function attributesFor(label, previous = {}) {
  const out = {};
  for (const def of (label && label.attributes) || []) {
    if (!def.name) continue;
    if (fits(def, previous[def.name])) out[def.name] = previous[def.name];
    else if (fits(def, def.default)) out[def.name] = def.default;
  }
  return out;
}

// Each annotation carries a key of its own for the editor's life: the server gives its rows new
// ids on every save, and undo brings back older copies, so ids are looked up by key (store.js).
let lastKey = 0;
export const nextKey = () => ++lastKey;

export function newAnnotation(labelId, shape, geometry) {
  return { key: nextKey(), label_id: labelId, shape, geometry, attributes: attributesFor(labelById(labelId)), text: null };
}

// Moving a shape to another label keeps only what that label takes: its attributes, and the
// OCR text if it has one.
export function relabel(ann, labelId) {
  if (ann.label_id === labelId) return;
  const label = labelById(labelId);
  ann.label_id = labelId;
  ann.attributes = attributesFor(label, ann.attributes || {});
  if (!label || !label.with_text) ann.text = null;
}

// An annotation as its label takes it now. Labels change after annotations are made (an attribute
// removed, OCR text turned off, labels merged), and the server refuses values the label does not
// define, which would leave the image unsaveable by a value nobody can see. No defaults are added.
export function fitToLabel(ann) {
  const label = labelById(ann.label_id);
  if (!label) return ann; // a deleted label: the server says so, in words
  const defs = new Map((label.attributes || []).filter((d) => d.name).map((d) => [d.name, d]));
  ann.attributes = Object.fromEntries(
    Object.entries(ann.attributes || {}).filter(([name, value]) => defs.has(name) && fits(defs.get(name), value)),
  );
  if (!label.with_text) ann.text = null;
  return ann;
}
