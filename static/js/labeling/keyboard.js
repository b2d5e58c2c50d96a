// Shortcuts, and the "?" overlay that lists them (labels' own keys included).
import { render, stage } from "./canvas.js";
import { $ } from "./dom.js";
import { cancelDraft, cycleTool, dropLastPoint, finishDraft, pickLabel, removeSelected } from "./editing.js";
import { redo, undo } from "./history.js";
import { cfg, state, TOOL_NAMES, tools } from "./state.js";
import { finish, go } from "./store.js";
import { fit } from "./viewport.js";

function inField(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/** The label whose shortcut is this key (shortcuts are stored lower-case; Shift+key stays free for the editor's own). */
function labelForKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return null;
  return cfg.labels.find((l) => l.shortcut && l.shortcut === event.key.toLowerCase()) || null;
}

function onKeyDown(event) {
  if (event.key === "Escape") {
    if ($("lb-help").hidden === false) return toggleHelp(false);
    if (inField(event.target)) return event.target.blur();
    if (state.draft) cancelDraft();
    else {
      state.selected = -1;
      render();
    }
    return;
  }
  if (inField(event.target)) return;
  const key = event.key;
  const ctrl = event.ctrlKey || event.metaKey;
  if (ctrl && (key === "z" || key === "Z")) {
    event.preventDefault();
    return event.shiftKey ? redo() : undo();
  }
  if (ctrl && (key === "y" || key === "Y")) {
    event.preventDefault();
    return redo();
  }
  if (ctrl) return;
  if (key === "?") return toggleHelp();
  if (event.shiftKey && (key === "S" || key === "s")) {
    event.preventDefault();
    return finish("skip");
  }
  const label = labelForKey(event);
  if (label) {
    event.preventDefault();
    return pickLabel(label);
  }
  if (key === " ") {
    state.spaceDown = true;
    stage.classList.add("space");
    event.preventDefault();
    return;
  }
  if (key === "f" || key === "F") return fit();
  if (key === "Tab") {
    event.preventDefault();
    return cycleTool(event.shiftKey);
  }
  if (key === "Delete" || key === "Backspace") {
    event.preventDefault();
    if (state.draft && key === "Backspace") return dropLastPoint();
    return removeSelected();
  }
  if (key === "Enter") {
    event.preventDefault();
    if (state.draft) return finishDraft();
    return finish("submit");
  }
  if (key === "ArrowRight") return go(cfg.urls.next, event);
  if (key === "ArrowLeft") return go(cfg.urls.previous, event);
}

function onKeyUp(event) {
  if (event.key === " ") {
    state.spaceDown = false;
    stage.classList.remove("space");
  }
}

function toggleHelp(show) {
  const help = $("lb-help");
  help.hidden = show === undefined ? !help.hidden : !show;
}

function buildHelp() {
  const rows = [
    ["?", "Show or hide this list"],
    ["Tab / Shift+Tab", "Next / previous tool (" + tools().map((t) => TOOL_NAMES[t]).join(", ") + ")"],
    ["Drag", "Box and circle (from the centre): draw; select tool: move a shape or pan"],
    ["Click … Enter or double-click", "Polygon, line and points: add points, then finish"],
    ["Backspace", "While drawing: remove the last point"],
    ["Escape", "Cancel drawing, or clear the selection"],
    ["Delete", "Delete the selected shape"],
    ["Ctrl+Z", "Undo"],
    ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
    ["Wheel", "Zoom around the pointer"],
    ["Space+drag / middle button", "Pan"],
    ["F", "Fit the image"],
    ["→ / ←", "Next / previous image (after saving)"],
    ["Enter", "Submit"],
    ["Shift+S", "Skip (submit with no annotations)"],
  ];
  for (const l of cfg.labels) if (l.shortcut) rows.push([l.shortcut, `Label: ${l.name}`]);
  const tbody = $("lb-help-table").tBodies[0];
  for (const [keys, what] of rows) {
    const tr = tbody.insertRow();
    const kbd = document.createElement("kbd");
    kbd.textContent = keys;
    tr.insertCell().appendChild(kbd);
    tr.insertCell().textContent = what;
  }
}

export function initKeyboard() {
  buildHelp();
  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("keyup", onKeyUp);
  $("lb-help-close").addEventListener("click", () => toggleHelp(false));
}
