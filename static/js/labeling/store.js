// The server's copy of the annotations: load, autosave with retry, the conflict bar, submit and
// skip. Work not yet saved is also kept in localStorage, so a closed tab or a crash loses nothing.
// Everything but the autosave goes through the JSON API (/api/v1) with the session cookie; the
// autosave has a route of its own that folds a person's saves into one revision.
import { render } from "./canvas.js";
import { $, csrfToken, toast } from "./dom.js";
import { clone } from "./geometry.js";
import { replaceAnnotations } from "./history.js";
import { cfg, fitToLabel, nextKey, state } from "./state.js";

const SAVE_DELAY = 600;
const MAX_RETRY = 30000;
const TRY_AGAIN = "Not saved yet; Loupe keeps retrying. Try again in a moment.";
const RESOLVE_FIRST = "Resolve the conflict first: reload theirs or keep yours.";

let base = 0; // the server revision the edits are based on
// Every change bumps changeSeq; savedSeq is the change the server has.
let changeSeq = 0;
let savedSeq = 0;
let inflight = false;
let saveTimer = null;
let retryDelay = 0;
let conflict = null;
let saveError = null;
let finishing = false; // a skip is on its way: no save may overtake or follow it
let storageKey = "";

const serverIds = new Map(); // annotation key -> the id of its row in the server's latest copy

// What a person can change; a prediction sent back unchanged stays a prediction (with its score).
const fingerprint = (a) => JSON.stringify([a.label_id, a.shape, a.geometry, a.attributes || {}, a.text ?? null]);

export function payload() {
  return state.anns.map((a) => {
    const out = { label_id: a.label_id, shape: a.shape, geometry: a.geometry, attributes: a.attributes || {}, text: a.text ?? null };
    // The row's id lets the server keep the author of what this save does not change.
    if (serverIds.has(a.key)) out.id = serverIds.get(a.key);
    if (a.predicted && a.predicted === fingerprint(a)) Object.assign(out, { source: "prediction", score: a.score ?? null });
    return out;
  });
}

function fromServer(list) {
  // A row the editor already shows keeps its key, and with it its hidden and locked state (a
  // reload after a submit); the rows of anyone else's save are new shapes to this editor.
  const keyOfRow = new Map([...serverIds].map(([key, id]) => [id, key]));
  return (list || []).map((a) => {
    const ann = fitToLabel({
      key: keyOfRow.get(a.id) ?? nextKey(), label_id: a.label_id, shape: a.shape, geometry: clone(a.geometry || {}),
      attributes: clone(a.attributes || {}), text: a.text ?? null,
    });
    if (typeof a.id === "number") serverIds.set(ann.key, a.id);
    if (a.source === "prediction") Object.assign(ann, { predicted: fingerprint(ann), score: a.score ?? null });
    return ann;
  });
}

/** After a save: the rows the server wrote for the annotations sent, in the order sent. */
function adoptIds(sent, saved) {
  sent.forEach((key, i) => saved[i] && serverIds.set(key, saved[i].id));
}

export const revision = () => base;
export const saving = () => ({ changeSeq, savedSeq, inflight, retryDelay, conflict: !!conflict, timer: saveTimer !== null });

function setStatus(status, text) {
  const node = $("save-status");
  node.dataset.status = status;
  node.textContent = text;
}

function showState(value) {
  if (value) $("lb-state").textContent = String(value).replace("_", " ");
}

function keepLocally() {
  try {
    localStorage.setItem(storageKey, JSON.stringify({ revision: base, annotations: payload(), at: Date.now() }));
  } catch (e) {
    /* storage full or disabled: the server copy and the retry loop still hold the work */
  }
}

function forgetLocally() {
  try {
    localStorage.removeItem(storageKey);
  } catch (e) {
    /* nothing kept */
  }
}

/** The annotations changed in the editor: keep them and save them soon. */
export function recordChange() {
  changeSeq += 1;
  saveError = null;
  keepLocally();
  scheduleSave(SAVE_DELAY);
}

function scheduleSave(delay) {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (conflict || finishing) return;
  // While offline, the retry message stays up until a save gets through.
  if (savedSeq !== changeSeq && !inflight && !retryDelay) setStatus("pending", "Unsaved changes");
  saveTimer = setTimeout(() => {
    saveTimer = null;
    save();
  }, delay);
}

async function save() {
  if (inflight || conflict || finishing || savedSeq === changeSeq || !cfg.can_annotate) return;
  inflight = true;
  const seq = changeSeq;
  const sent = state.anns.map((a) => a.key);
  setStatus("saving", "Saving…");
  let response;
  try {
    response = await fetch(cfg.urls.save, {
      method: "PUT",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ revision: base, annotations: payload() }),
      credentials: "same-origin",
    });
  } catch (e) {
    inflight = false;
    retry();
    return;
  }
  inflight = false;
  if (response.ok) {
    const data = await response.json();
    base = data.revision;
    savedSeq = seq;
    adoptIds(sent, data.annotations || []);
    retryDelay = 0;
    showState(data.state);
    document.body.dispatchEvent(new CustomEvent("annotationsSaved", { bubbles: true }));
    if (savedSeq === changeSeq) {
      forgetLocally();
      setStatus("saved", "Saved");
    } else {
      keepLocally(); // the newer edits are now based on the new revision
      scheduleSave(0);
    }
    return;
  }
  if (response.status === 409) {
    const body = await response.json().catch(() => ({}));
    const details = (body.error && body.error.details) || {};
    if (details.current_revision === undefined) {
      setStatus("error", "Not saved: " + ((body.error && body.error.message) || "conflict"));
      saveError = seq;
      return;
    }
    conflict = details;
    $("conflict-bar").hidden = false;
    setStatus("error", "Not saved — someone else saved this image");
    return;
  }
  if (response.status >= 500 || response.status === 429 || response.status === 408) {
    retry();
    return;
  }
  // A refusal (invalid shape, no permission, signed out): retrying would not help. The work
  // stays in this tab and in localStorage; the next change tries again.
  const body = await response.json().catch(() => null);
  saveError = seq;
  setStatus("error", "Not saved: " + ((body && body.error && body.error.message) || `${response.status} ${response.statusText}`));
}

function retry() {
  retryDelay = Math.min(retryDelay ? retryDelay * 2 : 1000, MAX_RETRY);
  scheduleSave(retryDelay);
  setStatus("offline", `Offline — retrying in ${Math.round(retryDelay / 1000)} s`);
}

/** Save now and wait for the server to have every change; false when it cannot (offline, conflict). */
export async function flush(timeout = 8000) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (savedSeq === changeSeq) return true;
    if (conflict || saveError === changeSeq) return false;
    if (!inflight && retryDelay === 0) {
      clearTimeout(saveTimer);
      saveTimer = null;
      save();
    }
    if (retryDelay > 0 && !inflight) return false; // offline: the retry loop keeps going
    await new Promise((r) => setTimeout(r, 50));
  }
  return savedSeq === changeSeq;
}

function resolveConflict(keepMine) {
  if (!conflict) return;
  const theirs = conflict;
  conflict = null;
  $("conflict-bar").hidden = true;
  base = theirs.current_revision;
  if (keepMine) {
    keepLocally();
    scheduleSave(0);
    return;
  }
  // "Reload theirs": mine stays one undo away, so nothing is lost silently.
  replaceAnnotations(fromServer(theirs.annotations), { dropRedo: true });
  state.selected = -1;
  savedSeq = changeSeq;
  forgetLocally();
  render();
  setStatus("saved", "Saved");
}

/** The server's current copy: {revision, state, annotations}; throws when it cannot be had. */
async function serverCopy() {
  const response = await fetch(cfg.urls.annotations, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.json();
}

export async function load() {
  setStatus("saving", "Loading…");
  let data;
  try {
    data = await serverCopy();
  } catch (e) {
    setStatus("offline", "Offline — could not load the annotations");
    setTimeout(load, 3000);
    return;
  }
  state.anns = fromServer(data.annotations);
  base = data.revision;
  showState(data.state);
  let kept = null;
  try {
    kept = JSON.parse(localStorage.getItem(storageKey) || "null");
  } catch (e) {
    kept = null;
  }
  if (kept && Array.isArray(kept.annotations) && cfg.can_annotate) {
    // Unsaved work from an earlier visit: show it and send it again, based on the revision it
    // was made on; if the image moved on since, the server answers 409 and the bar asks.
    replaceAnnotations(fromServer(kept.annotations));
    base = kept.revision;
    changeSeq += 1;
    render();
    scheduleSave(0);
  } else {
    savedSeq = changeSeq;
    render();
    setStatus("saved", "Saved");
  }
}

async function reloadFromServer() {
  let data;
  try {
    data = await serverCopy();
  } catch (e) {
    toast("Could not reload the annotations; reload the page.");
    return;
  }
  adopt(data);
}

/** Show the server's copy ({revision, state, annotations}) in place of the editor's, which stays one undo away. */
export function adopt(data) {
  replaceAnnotations(fromServer(data.annotations));
  base = data.revision;
  state.selected = -1;
  conflict = null;
  $("conflict-bar").hidden = true;
  savedSeq = changeSeq;
  forgetLocally();
  showState(data.state);
  render();
  setStatus("saved", "Saved");
}

/** Next or previous image, once everything is saved; `missing` says why there is none. */
export async function go(url, event, missing = "This is the last image of this filter.") {
  if (event) event.preventDefault();
  if (!url) return toast(missing);
  if (await flush()) {
    window.location.href = url;
    return;
  }
  toast(conflict ? RESOLVE_FIRST : TRY_AGAIN);
}

/** Submit or skip the image, then go on to the next one. */
export async function finish(action) {
  if (!cfg.can_annotate) return;
  if (action === "submit" && !(await flush())) {
    toast(conflict ? RESOLVE_FIRST : TRY_AGAIN);
    return;
  }
  if (action === "skip") {
    // Skip submits no annotations: no pending save may land afterwards, nor a new one start.
    finishing = true;
    clearTimeout(saveTimer);
    saveTimer = null;
    while (inflight) await new Promise((r) => setTimeout(r, 50));
    clearTimeout(saveTimer); // an answer that arrived meanwhile may have scheduled the next save
    saveTimer = null;
  }
  setStatus("saving", action === "submit" ? "Submitting…" : "Skipping…");
  let response;
  try {
    response = await fetch(cfg.urls[action], {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ revision: base }),
      credentials: "same-origin",
    });
  } catch (e) {
    resumeSaving();
    setStatus("offline", "Offline — not submitted; try again");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    resumeSaving();
    setStatus("error", `Not ${action === "submit" ? "submitted" : "skipped"}: ${(body.error && body.error.message) || response.status}`);
    return;
  }
  if (action === "skip") {
    savedSeq = changeSeq;
    forgetLocally();
  }
  showState(body.state);
  setStatus("saved", action === "submit" ? "Submitted" : "Skipped");
  document.body.dispatchEvent(new CustomEvent("annotationsSaved", { bubbles: true }));
  if (cfg.urls.next) window.location.href = cfg.urls.next;
  else {
    await reloadFromServer();
    finishing = false;
    setStatus("saved", action === "submit" ? "Submitted" : "Skipped");
  }
}

/** A skip that did not go through: the edits made meanwhile are saved as usual. */
function resumeSaving() {
  finishing = false;
  if (savedSeq !== changeSeq) scheduleSave(0);
}

export function initStore() {
  // Per person: on a shared browser, one person's unsaved work must not be saved under another's name.
  storageKey = `loupe:annotations:${cfg.user_id}:${cfg.dataset_id}:${cfg.image_id}`;
  $("conflict-reload").addEventListener("click", () => resolveConflict(false));
  $("conflict-keep").addEventListener("click", () => resolveConflict(true));
  const submit = $("lb-submit");
  if (submit) submit.addEventListener("click", () => finish("submit"));
  const skip = $("lb-skip");
  if (skip) skip.addEventListener("click", () => finish("skip"));
  for (const [id, dir] of [["lb-next", "next"], ["lb-previous", "previous"], ["lb-next-unlabeled", "next_unlabeled"]]) {
    const link = $(id);
    if (link) link.addEventListener("click", (e) => go(cfg.urls[dir], e));
  }
  window.addEventListener("online", () => retryDelay && scheduleSave(0));
}
