// The Labels page: add and remove attribute rows in a label form (the rows are plain form fields).
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
})();
