// The Labels page: add and remove attribute rows in a label form (the rows are plain form fields),
// and reorder labels by dragging their rows. The ↑/↓ buttons stay for keyboard users.
(() => {
  document.addEventListener("click", (event) => {
    const add = event.target.closest("[data-add-attribute]");
    if (add) {
      const fieldset = add.closest("fieldset");
      fieldset.querySelector("tbody").append(fieldset.querySelector("template").content.cloneNode(true));
      fieldset.querySelector("tbody tr:last-child input")?.focus();
      return;
    }
    const remove = event.target.closest("[data-remove-attribute]");
    if (remove) remove.closest("tr").remove();
  });

  // ---- drag and drop reorder ----------------------------------------------------------------------
  // The dragged row moves live among its siblings; on drop the full order goes to the reorder
  // endpoint through #reorder-form (hx-post, CSRF token inside, swaps #labels). A cancelled drag
  // (Esc, or dropped outside the table) puts the rows back where they were.
  let drag = null; // { row, body, before: [ids], dropped }

  const rowsOf = (body) => [...body.querySelectorAll(":scope > tr[data-label-id]")];
  const idsOf = (body) => rowsOf(body).map((row) => row.dataset.labelId);

  document.addEventListener("dragstart", (event) => {
    const row = event.target.closest?.("tr[data-label-id][draggable='true']");
    const body = row?.closest("tbody[data-reorder]");
    // Only whole rows; a drag that starts on a link or a field stays that element's own.
    if (!row || !body || event.target !== row) return;
    drag = { row, body, before: idsOf(body), dropped: false };
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.labelName || row.dataset.labelId);
    // Mark it after the browser has taken its drag image, so the image is the normal row.
    requestAnimationFrame(() => row.classList.add("dragging"));
    body.classList.add("reordering");
  });

  document.addEventListener("dragover", (event) => {
    if (!drag) return;
    const over = event.target.closest?.("tr[data-label-id]");
    if (!over || over.parentElement !== drag.body) {
      if (event.target.closest?.("tbody[data-reorder]") === drag.body) event.preventDefault();
      return;
    }
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (over === drag.row) return;
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    drag.body.insertBefore(drag.row, after ? over.nextElementSibling : over);
  });

  document.addEventListener("drop", (event) => {
    if (!drag || event.target.closest?.("tbody[data-reorder]") !== drag.body) return;
    event.preventDefault();
    drag.dropped = true;
  });

  document.addEventListener("dragend", () => {
    if (!drag) return;
    const { row, body, before, dropped } = drag;
    drag = null;
    row.classList.remove("dragging");
    body.classList.remove("reordering");
    // The list was swapped meanwhile (a finished job reloads it): that order is the news, keep it.
    if (!body.isConnected) return;
    const after = idsOf(body);
    if (!dropped) {
      // Put the rows back in the order they had before the drag.
      const byId = new Map(rowsOf(body).map((r) => [r.dataset.labelId, r]));
      before.forEach((id) => body.append(byId.get(id)));
      return;
    }
    if (after.join(",") === before.join(",")) return;
    save(after);
  });

  function save(order) {
    const form = document.getElementById("reorder-form");
    if (!form) return;
    form.querySelectorAll("input[name='label_ids']").forEach((input) => input.remove());
    for (const id of order) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = "label_ids";
      input.value = id;
      form.append(input);
    }
    form.requestSubmit();
  }
})();
