// Undo and redo keep whole snapshots of the annotations: a few hundred small shapes are cheap to
// serialise, and a snapshot cannot drift from the state it restores.
import { render } from "./canvas.js";
import { toast } from "./dom.js";
import { state } from "./state.js";
import { recordChange } from "./store.js";

const MAX_UNDO = 200;
const LOCKED = "This shape is locked: unlock it in the object list to change it.";
const LOCKED_STEP = "This step would change a locked shape: unlock it in the object list to undo or redo it.";
let undoStack = [];
let redoStack = [];

// The one place that decides whether the annotations may become `after`: every edit (drag,
// handle, key, panel, object list) and every undo and redo passes here, so none of them can move,
// reshape, relabel, delete or bring back a different copy of a locked shape.
function changesLocked(before, after) {
  if (!state.locked.size) return false;
  const now = new Map(after.map((a) => [a.key, a]));
  return before.some((a) => state.locked.has(a.key) && JSON.stringify(a) !== JSON.stringify(now.get(a.key)));
}

/** Run fn as one undoable change; saves if anything changed. False when it was refused (a locked shape). */
export function mutate(fn) {
  const before = JSON.stringify(state.anns);
  const selected = state.selected;
  fn();
  return commit(before, selected);
}

/** Finish a change that started when the annotations were `before` (a JSON snapshot) and the
 * selection `selected`; a change to a locked shape is taken back whole. False when it was refused. */
export function commit(before, selected = state.selected) {
  if (JSON.stringify(state.anns) === before) {
    render();
    return true;
  }
  if (changesLocked(JSON.parse(before), state.anns)) {
    state.anns = JSON.parse(before);
    state.selected = selected;
    toast(LOCKED);
    render();
    return false;
  }
  undoStack.push(before);
  if (undoStack.length > MAX_UNDO) undoStack.shift();
  redoStack = [];
  changed();
  return true;
}

function changed() {
  if (state.selected >= state.anns.length) state.selected = -1;
  render();
  recordChange();
}

/** Step back (undo) or forward (redo): the top of `from` becomes the annotations, the current ones go on `to`. */
function step(from, to) {
  if (!from.length) return;
  const target = JSON.parse(from[from.length - 1]);
  if (changesLocked(state.anns, target)) {
    toast(LOCKED_STEP);
    return;
  }
  from.pop();
  to.push(JSON.stringify(state.anns));
  state.anns = target;
  state.selected = -1;
  changed();
}

export const undo = () => step(undoStack, redoStack);
export const redo = () => step(redoStack, undoStack);

/** Replace the annotations with a copy from elsewhere (server, earlier visit); the replaced ones stay one undo away. */
export function replaceAnnotations(annotations, { dropRedo = false } = {}) {
  undoStack.push(JSON.stringify(state.anns));
  if (dropRedo) redoStack = [];
  state.anns = annotations;
}
