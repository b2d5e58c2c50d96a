// The side panels: the label palette, the image's classes (tags) and the selected shape's label,
// attributes and OCR text. The history panel is HTMX (it reloads on "annotationsSaved").
import { stage } from "./canvas.js";
import { $ } from "./dom.js";
import { pickLabel, removeSelected } from "./editing.js";
import { describe } from "./geometry.js";
import { mutate } from "./history.js";
import { cfg, isLocked, labelById, regionLabels, relabel, state } from "./state.js";

export function renderTags() {
  const box = $("lb-tags");
  if (!box) return;
  box.replaceChildren();
  const tags = state.anns.map((a, i) => [a, i]).filter(([a]) => a.shape === "tag");
  if (!tags.length) {
    const hint = document.createElement("span");
    hint.className = "muted";
    hint.textContent = cfg.single_tag ? "None yet: press a label's key." : "None yet: press labels' keys to toggle them.";
    box.appendChild(hint);
  }
  for (const [ann, index] of tags) {
    const label = labelById(ann.label_id) || { name: `#${ann.label_id}`, color: "#adb5bd" };
    const chip = document.createElement("span");
    chip.className = "lb-tag";
    chip.dataset.labelId = ann.label_id;
    chip.style.setProperty("--label-color", label.color);
    chip.textContent = label.name;
    if (cfg.can_annotate) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.style.color = "#fff";
      remove.setAttribute("aria-label", `Remove ${label.name}`);
      remove.textContent = "×";
      remove.addEventListener("click", () => mutate(() => state.anns.splice(index, 1)));
      chip.appendChild(remove);
    }
    box.appendChild(chip);
  }
}

export function renderPalette() {
  const tagged = new Set(state.anns.filter((a) => a.shape === "tag").map((a) => a.label_id));
  document.querySelectorAll(".lb-label").forEach((button) => {
    const id = Number(button.dataset.labelId);
    button.classList.toggle("active", state.currentLabel === id);
    button.classList.toggle("on", tagged.has(id));
  });
  document.querySelectorAll("#lb-tools [data-tool]").forEach((b) => b.classList.toggle("active", b.dataset.tool === state.tool));
  stage.classList.toggle("tool-draw", state.tool !== "select");
}

/** An input for one of the label's attributes, showing `value`. */
function attributeInput(def, value) {
  let input;
  if (def.type === "checkbox") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = !!value;
  } else if (def.type === "select") {
    input = document.createElement("select");
    input.add(new Option("—", ""));
    for (const v of def.values || []) input.add(new Option(v, v, false, v === value));
  } else {
    input = document.createElement("input");
    input.type = def.type === "number" ? "number" : "text";
    input.step = "any";
    input.value = value ?? "";
  }
  return input;
}

/** The attributes with the input's value set; an emptied field drops the attribute. */
function withAttribute(attributes, def, input) {
  const attrs = { ...(attributes || {}) };
  if (def.type === "checkbox") attrs[def.name] = input.checked;
  else if (input.value === "") delete attrs[def.name];
  else attrs[def.name] = def.type === "number" ? Number(input.value) : input.value;
  return attrs;
}

export function renderSelection() {
  const body = $("lb-selection-body");
  const ann = state.anns[state.selected];
  body.replaceChildren();
  if (!ann) {
    body.innerHTML = '<p class="muted">Nothing selected.</p>';
    return;
  }
  const label = labelById(ann.label_id);
  const editable = cfg.can_annotate && !isLocked(ann);
  const field = (text, input) => {
    const wrap = document.createElement("div");
    wrap.className = "lb-field";
    const lab = document.createElement("label");
    lab.textContent = text;
    const id = "lb-f-" + text.toLowerCase().replace(/[^a-z0-9]+/g, "-");
    lab.htmlFor = input.id = id;
    wrap.append(lab, input);
    body.appendChild(wrap);
    input.disabled = !editable;
    return input;
  };
  const info = document.createElement("p");
  info.className = "muted";
  info.id = "lb-selection-shape";
  info.textContent = `${ann.shape} · ${describe(ann)}` + (isLocked(ann) ? " · locked" : "");
  body.appendChild(info);

  const select = document.createElement("select");
  const choices = regionLabels().includes(label) || !label ? regionLabels() : [label, ...regionLabels()];
  for (const l of choices) select.add(new Option(l.name + (l.shortcut ? ` (${l.shortcut})` : ""), l.id, false, l.id === ann.label_id));
  field("Label", select).addEventListener("change", () => mutate(() => relabel(state.anns[state.selected], Number(select.value))));

  for (const def of (label && label.attributes) || []) {
    if (!def.name) continue;
    const input = attributeInput(def, (ann.attributes || {})[def.name]);
    field(def.name, input).addEventListener("change", () => mutate(() => {
      const selected = state.anns[state.selected];
      selected.attributes = withAttribute(selected.attributes, def, input);
    }));
  }
  if (label && label.with_text) {
    const text = document.createElement("textarea");
    text.rows = 2;
    text.value = ann.text || "";
    field("Text (OCR)", text).addEventListener("change", () => mutate(() => (state.anns[state.selected].text = text.value || null)));
  }
  if (editable) {
    const del = document.createElement("button");
    del.type = "button";
    del.className = "danger";
    del.textContent = "Delete (Del)";
    del.addEventListener("click", removeSelected);
    body.appendChild(del);
  }
}

export function initPanels() {
  document.querySelectorAll(".lb-label").forEach((b) => {
    b.addEventListener("click", () => pickLabel(labelById(Number(b.dataset.labelId))));
  });
}
