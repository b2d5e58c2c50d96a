// Shortcuts, and the "?" overlay that lists them (labels' own keys included).
import { render, stage } from "./canvas.js";
import { $ } from "./dom.js";
import { cancelDraft, cycleTool, dropLastPoint, finishDraft, pickLabel, removeSelected, setTool } from "./editing.js";
import { redo, undo } from "./history.js";
import { cfg, state, TOOL_KEYS, TOOL_NAMES, toolKeyName, tools } from "./state.js";
import { finish, go } from "./store.js";
import { fit } from "./viewport.js";
import { later, openReject, verdict } from "./workflow.js";

function inField(target) {
  return target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

/** The label whose shortcut is this key (shortcuts are stored lower-case; Shift+key stays free for the editor's own). */
function labelForKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.shiftKey) return null;
  return cfg.labels.find((l) => l.shortcut && l.shortcut === event.key.toLowerCase()) || null;
}

/** The tool this key picks: its own key, or Shift+key (for when a label has taken the plain key). */
function toolForKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1) return null;
  const tool = TOOL_KEYS[event.key.toLowerCase()];
  return tool && tools().includes(tool) ? tool : null;
}

function onKeyDown(event) {
  if (event.key === "Escape") {
    if ($("lb-help").hidden === false) return toggleHelp(false);
    if (inField(event.target)) return event.target.blur();
    // One step back each press: the shape being drawn, then the selection, then the drawing tool.
    if (state.draft) cancelDraft();
    else if (state.selected >= 0) {
      state.selected = -1;
      render();
    } else setTool("select");
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
  // Shift+letters no tool takes (a tool moves to Shift+key only when a label takes its key).
  if (event.shiftKey && (key === "N" || key === "n") && cfg.task) {
    event.preventDefault();
    return later();
  }
  if (event.shiftKey && (key === "A" || key === "a") && cfg.review) {
    event.preventDefault();
    return verdict("accept");
  }
  if (event.shiftKey && (key === "R" || key === "r") && cfg.review) {
    event.preventDefault();
    return openReject();
  }
  const label = labelForKey(event);
  if (label) {
    event.preventDefault();
    return pickLabel(label);
  }
  const tool = toolForKey(event);
  if (tool) {
    event.preventDefault();
    return setTool(tool);
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
    if (event.target.closest && event.target.closest("#lb-objects button")) return; // the focused row button acts
    event.preventDefault();
    if (state.draft) return finishDraft();
    return finish("submit");
  }
  if (key === "ArrowRight" && event.shiftKey) return go(cfg.urls.next_unlabeled, event, "There is no other unlabeled image in this filter.");
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
    ...tools().map((t) => [toolKeyName(t), `${TOOL_NAMES[t]} tool` + (t === "select" ? " (also Escape, with nothing selected or drawn)" : "")]),
    ["Tab / Shift+Tab", "Next / previous tool (" + tools().map((t) => TOOL_NAMES[t]).join(", ") + ")"],
    ["Drag", "Box and circle (from the centre): draw; select tool: move a shape or pan"],
    ["Click … Enter or double-click", "Polygon, line and points: add points, then finish"],
    ["Backspace", "While drawing: remove the last point"],
    ["Escape", "Cancel drawing, else clear the selection, else the select tool"],
    ["Delete", "Delete the selected shape (not a locked one)"],
    ["Ctrl+Z", "Undo"],
    ["Ctrl+Shift+Z / Ctrl+Y", "Redo"],
    ["Wheel", "Zoom around the pointer"],
    ["Space+drag / middle button", "Pan"],
    ["F", "Fit the image"],
    ["→ / ←", "Next / previous image (after saving)"],
    ["Shift+→", "Next unlabeled image of this filter"],
    ["Enter", "Submit"],
    ["Shift+S", "Nothing to label (submit with no annotations)"],
    ...(cfg.task ? [["Shift+N", "Later: keep the image open, at the end of your queue"]] : []),
    ...(cfg.review ? [["Shift+A", "Accept (with your corrections)"], ["Shift+R", "Reject, with a comment"]] : []),
  ];
  for (const l of cfg.labels) {
    if (!l.shortcut) continue;
    const tool = TOOL_KEYS[l.shortcut];
    // A label keeps its key; the tool it shadows moves to Shift+key, and the list says so.
    const shadows = tool && tools().includes(tool) ? ` (the ${TOOL_NAMES[tool]} tool is on Shift+${l.shortcut.toUpperCase()})` : "";
    rows.push([l.shortcut, `Label: ${l.name}${shadows}`]);
  }
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
