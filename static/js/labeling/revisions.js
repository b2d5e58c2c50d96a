// The history panel: the image's revisions from the API, newest first, with a Restore button on
// each earlier one the person may bring back. It follows every save, submit, skip and restore.
import { $, csrfToken, toast } from "./dom.js";
import { cfg } from "./state.js";
import { adopt } from "./store.js";

let asked = 0; // the latest request: an older answer arriving late must not overwrite a newer one

function item(revision, current) {
  const li = document.createElement("li");
  if (revision.number === current) li.className = "current";
  li.dataset.revision = revision.number;
  const count = revision.annotation_count;
  const parts = [
    ["rev", `#${revision.number}`],
    ["what", `${revision.action} · ${count} annotation${count === 1 ? "" : "s"}${revision.state ? " · " + revision.state.replace("_", " ") : ""}`],
    ["who muted", revision.author ? revision.author.name : "—"],
  ];
  for (const [className, text] of parts) {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    li.append(span);
  }
  const time = document.createElement("time");
  time.className = "muted";
  time.dateTime = revision.saved_at;
  time.textContent = `${revision.saved_at.slice(0, 10)} ${revision.saved_at.slice(11, 16)}`; // UTC, as the server keeps it
  li.append(time);
  // A submit's annotations are those of the save before it: restoring that save says the same.
  if (cfg.can_annotate && revision.number !== current && revision.action !== "submit") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = "Restore";
    button.addEventListener("click", () => restore(revision.number));
    li.append(button);
  }
  return li;
}

function show(items) {
  const list = document.createElement("ol");
  list.className = "lb-history";
  list.id = "history-list";
  // The newest revision is the image's current one.
  const current = items.length ? items[0].number : 0;
  list.dataset.revision = current;
  if (items.length) list.append(...items.map((r) => item(r, current)));
  else {
    const none = document.createElement("li");
    none.className = "muted";
    none.textContent = "No saves yet.";
    list.append(none);
  }
  $("lb-history").replaceChildren(list);
}

async function refresh() {
  const mine = ++asked;
  let body;
  try {
    const response = await fetch(cfg.urls.history, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status}`);
    body = await response.json();
  } catch (e) {
    if (mine === asked) $("lb-history").replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "Could not load the history." }));
    return;
  }
  if (mine === asked) show(body.items || []);
}

async function restore(number) {
  if (!window.confirm(`Restore revision #${number}? The current annotations stay in the history.`)) return;
  let response;
  try {
    response = await fetch(`${cfg.urls.history}/${number}/restore`, {
      method: "POST",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
  } catch (e) {
    toast("Offline — not restored; try again.");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    toast(`Not restored: ${(body.error && body.error.message) || response.status}`);
    return;
  }
  adopt(body);
  const dropped = (body.dropped || []).length;
  if (dropped) toast(`${dropped} annotation${dropped === 1 ? "" : "s"} of revision #${number} left out: their label was deleted.`);
  refresh();
}

export function initRevisions() {
  if (!cfg.urls.history) return; // a labeler's own version of an image has no shared history
  document.body.addEventListener("annotationsSaved", refresh);
  refresh();
}
