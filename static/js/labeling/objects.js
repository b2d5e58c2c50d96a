// The object list: every shape of the image with its label's name and color. A click selects the
// shape; each row hides or shows it, locks or unlocks it, and deletes it.
import { $ } from "./dom.js";
import { removeAt, selectAt, toggleHidden, toggleLocked } from "./editing.js";
import { cfg, isHidden, isLocked, labelById, state, TOOL_NAMES } from "./state.js";

function button(text, title, onClick, { pressed, disabled } = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link";
  b.textContent = text;
  b.title = title;
  b.setAttribute("aria-label", title);
  if (pressed !== undefined) b.setAttribute("aria-pressed", String(pressed));
  b.disabled = !!disabled;
  b.addEventListener("click", (event) => {
    event.stopPropagation(); // a row's button is not a click on the row (select)
    onClick();
  });
  return b;
}

function row(ann, index, number) {
  const label = labelById(ann.label_id) || { name: `label #${ann.label_id}`, color: "#adb5bd" };
  const hidden = isHidden(ann);
  const locked = isLocked(ann);
  const li = document.createElement("li");
  li.dataset.index = index;
  li.className = ["lb-object", index === state.selected && "selected", hidden && "hidden", locked && "locked"].filter(Boolean).join(" ");
  li.style.setProperty("--label-color", label.color);
  if (index === state.selected) li.setAttribute("aria-current", "true");

  const described = `${label.name} ${number}`;
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  // The name is the row's button for the keyboard; a click anywhere on the row selects too.
  const name = button(label.name, `Select ${described}`, () => selectAt(index));
  name.classList.add("name");
  name.removeAttribute("aria-label");
  const what = document.createElement("span");
  what.className = "what muted";
  what.textContent = `${(TOOL_NAMES[ann.shape] || ann.shape).toLowerCase()} ${number}`;
  li.append(swatch, name, what);
  li.append(
    button(hidden ? "Show" : "Hide", `${hidden ? "Show" : "Hide"} ${described}`, () => toggleHidden(index), { pressed: hidden }),
  );
  if (cfg.can_annotate) {
    li.append(
      button(locked ? "Unlock" : "Lock", `${locked ? "Unlock" : "Lock"} ${described}`, () => toggleLocked(index), { pressed: locked }),
      button("×", `Delete ${described}`, () => removeAt(index), { disabled: locked }),
    );
  }
  li.addEventListener("click", () => selectAt(index));
  return li;
}

let shown = ""; // what the list shows, so a drag (a render per pointer move) does not rebuild it

/** Redraw the list from the annotations (render() calls this after every change). */
export function renderObjects() {
  const list = $("lb-objects");
  if (!list) return;
  const now = JSON.stringify([state.selected, state.anns.map((a) => [a.key, a.label_id, a.shape, isHidden(a), isLocked(a)])]);
  if (now === shown) return;
  shown = now;
  list.replaceChildren();
  const shapes = state.anns.map((ann, index) => [ann, index]).filter(([ann]) => ann.shape !== "tag");
  $("lb-objects-count").textContent = shapes.length ? `(${shapes.length})` : "";
  if (!shapes.length) {
    const hint = document.createElement("li");
    hint.className = "muted";
    hint.textContent = "No shapes yet: draw one on the image.";
    list.appendChild(hint);
    return;
  }
  shapes.forEach(([ann, index], n) => list.appendChild(row(ann, index, n + 1)));
  // A shape selected on the canvas shows its row, however long the list.
  const selected = list.querySelector(".lb-object.selected");
  if (selected) selected.scrollIntoView({ block: "nearest" });
}
