// The canvas inside a team's workflow: a labeler's task queue ("n of N", Later, on to the next
// open image after a submit) and a reviewer's verdicts (accept, reject with a comment, on to the
// next image waiting). Both go through the JSON API with the session cookie, after the editor's
// last change is saved.
import { $, csrfToken, toast } from "./dom.js";
import { cfg } from "./state.js";
import { adopt, flush, revision } from "./store.js";

const NOT_SAVED = "Your last change is not saved yet; try again in a moment.";

async function post(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    toast("Offline — nothing was sent; try again.");
    return null;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    toast((answer.error && answer.error.message) || `Not done (${response.status})`);
    return null;
  }
  return answer;
}

/** "Later": the image stays open and goes to the end of the labeler's queue; on to the next one. */
export async function later() {
  if (!cfg.task || !cfg.task.open) return;
  if (!(await flush())) return toast(NOT_SAVED);
  if (await post(cfg.task.later, { image_id: cfg.image_id })) window.location.href = cfg.task.start;
}

/** Accept the image as it is now (corrections included), or reject it with a comment; then the next image to review. */
export async function verdict(kind) {
  if (!cfg.review || !cfg.review.waiting) return;
  const comment = kind === "reject" ? $("lb-reject-comment").value.trim() : "";
  if (kind === "reject" && !comment) {
    openReject();
    return toast("Say what to fix: a rejection needs a comment.");
  }
  if (!(await flush())) return toast(NOT_SAVED);
  const body = { verdict: kind, revision: revision() };
  if (comment) body.comment = comment;
  if (await post(cfg.review.verdict, body)) window.location.href = cfg.review.next;
}

export function openReject() {
  if (!cfg.review || !cfg.review.waiting) return;
  $("lb-reject-form").hidden = false;
  $("lb-reject-comment").focus();
}

/** Make one labeler's version, or the merge of all, the image's annotations (the reviewer may still correct them). */
async function keep(body) {
  if (!(await flush())) return toast(NOT_SAVED);
  const answer = await post($("lb-versions").dataset.keepUrl, { ...body, revision: revision() });
  if (!answer) return;
  adopt(answer);
  document.body.dispatchEvent(new CustomEvent("annotationsSaved", { bubbles: true }));
  toast(body.merge ? "The versions are merged into the image's annotations." : "That version is now the image's annotations.");
}

export function initWorkflow() {
  const versions = $("lb-versions");
  if (versions) {
    versions.addEventListener("click", (event) => {
      const one = event.target.closest("[data-keep]");
      if (one) keep({ labeler_id: Number(one.dataset.keep) });
      else if (event.target.closest("[data-keep-merge]")) keep({ merge: true });
    });
  }
  const laterButton = $("lb-later");
  if (laterButton) laterButton.addEventListener("click", later);
  const accept = $("lb-accept");
  if (accept) accept.addEventListener("click", () => verdict("accept"));
  const reject = $("lb-reject");
  if (reject) reject.addEventListener("click", openReject);
  const form = $("lb-reject-form");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      verdict("reject");
    });
    $("lb-reject-cancel").addEventListener("click", () => { form.hidden = true; });
  }
}
