// The labeling canvas: an SVG editor over the image, the label palette and tags, the selected
// shape's attributes, undo/redo and autosave. Each module wires its own events here, once the
// configuration is read.
import { buildCanvas, render } from "./canvas.js";
import { $ } from "./dom.js";
import { buildTools } from "./editing.js";
import { initKeyboard } from "./keyboard.js";
import { initPanels } from "./panels.js";
import { initPointer } from "./pointer.js";
import { initRevisions } from "./revisions.js";
import { configure, state, view } from "./state.js";
import { initStore, load, payload, revision, saving } from "./store.js";
import { fit, initViewport, shownRegion } from "./viewport.js";
import { initWorkflow } from "./workflow.js";

function init() {
  const config = $("labeling-config");
  if (!config) return;
  configure(JSON.parse(config.textContent));
  initStore();
  buildCanvas();
  buildTools();
  initPointer();
  initViewport();
  initKeyboard();
  initPanels();
  initWorkflow();

  fit();
  render();
  load();
  initRevisions();
  // For tests and the console: the editor's state, read-only.
  window.loupeLabeling = {
    get annotations() { return payload(); },
    get revision() { return revision(); },
    get selected() { return state.selected; },
    get hidden() { return state.anns.flatMap((a, i) => (state.hidden.has(a.key) ? [i] : [])); },
    get locked() { return state.anns.flatMap((a, i) => (state.locked.has(a.key) ? [i] : [])); },
    get tool() { return state.tool; },
    get view() { return { ...view }; },
    get region() { return shownRegion(); },
    get saving() { return saving(); },
  };
}

document.addEventListener("DOMContentLoaded", init);
