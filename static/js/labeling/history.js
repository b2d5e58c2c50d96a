// Undo and redo keep whole snapshots of the annotations: a few hundred small shapes are cheap to
// serialise, and a snapshot cannot drift from the state it restores.
import { render } from "./canvas.js";
import { state } from "./state.js";
import { recordChange } from "./store.js";

const MAX_UNDO = 200;
let undoStack = [];
let redoStack = [];

/** Run fn as one undoable change; saves if anything changed. */
export function mutate(fn) {
  const before = JSON.stringify(state.anns);
  fn();
  commit(before);
}

/** Finish a change that started when the annotations were `before` (a JSON snapshot). */
export function commit(before) {
  if (JSON.stringify(state.anns) === before) {
    render();
    return;
  }
  undoStack.push(before);
  if (undoStack.length > MAX_UNDO) undoStack.shift();
  redoStack = [];
  changed();
}

function changed() {
  if (state.selected >= state.anns.length) state.selected = -1;
  render();
  recordChange();
}

export function undo() {
  if (!undoStack.length) return;
  redoStack.push(JSON.stringify(state.anns));
  state.anns = JSON.parse(undoStack.pop());
  state.selected = -1;
  changed();
}

export function redo() {
  if (!redoStack.length) return;
  undoStack.push(JSON.stringify(state.anns));
  state.anns = JSON.parse(redoStack.pop());
  state.selected = -1;
  changed();
}

/** Replace the annotations with a copy from elsewhere (server, earlier visit); the replaced ones stay one undo away. */
export function replaceAnnotations(annotations, { dropRedo = false } = {}) {
  undoStack.push(JSON.stringify(state.anns));
  if (dropRedo) redoStack = [];
  state.anns = annotations;
}
