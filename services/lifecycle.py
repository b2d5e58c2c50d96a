"""The image lifecycle of SPEC section 5 as one table: what each kind of change does to an image's
state. Every write path asks it (services/annotations.py: a save, a restore, an import, submit and
"nothing to label", a reviewer's verdict; services/sampling.py: a failed acceptance sample); a change
the table has no row for is a clear 409, never a silent state.

    unlabeled -> (first save) in_progress -> (submit, or "nothing to label") to_review
    to_review -> (accept) accepted, or (reject, with a comment) rejected -> (fixed, submitted) to_review
    imported predictions put an image nobody has labeled in prelabeled until a person saves it
    a submit in a task that asks for no review goes straight to accepted
    a failed acceptance sample sends accepted images back to to_review
"""

from core.errors import Conflict
from models import ImageState

SAVE, PREDICTIONS, SUBMIT, ACCEPT, REJECT, SEND_BACK = "save", "predictions", "submit", "accept", "reject", "send_back"
_U, _P, _I, _T, _R, _A = (ImageState.unlabeled, ImageState.prelabeled, ImageState.in_progress,
                          ImageState.to_review, ImageState.rejected, ImageState.accepted)

# change -> {state before: state after}. A state missing from a change's row cannot take that change.
TRANSITIONS: dict[str, dict[ImageState, ImageState]] = {
    # A person's annotations (a save, a restore, an import of a person's work). A save keeps a state
    # past in_progress: a reviewer corrects a shape before accepting, a labeler fixes a rejected image
    # before submitting it again, a manager corrects accepted work.
    SAVE: {_U: _I, _P: _I, _I: _I, _T: _T, _R: _R, _A: _A},
    # A model's annotations: only where no person has labeled.
    PREDICTIONS: {_U: _P, _P: _P},
    # Handing the image in; to accepted instead when no review is asked for.
    SUBMIT: {_U: _T, _P: _T, _I: _T, _R: _T},
    # A reviewer's verdict: only on an image handed in for review.
    ACCEPT: {_T: _A},
    REJECT: {_T: _R},
    # An acceptance sample that failed: the lot it stood for is reviewed again.
    SEND_BACK: {_A: _T},
}

_REFUSALS = {
    PREDICTIONS: "A person has labeled this image ({state}); predictions are not put over their work",
    SUBMIT: "This image is already {state}",
    ACCEPT: "Only an image waiting for review takes a verdict; this one is {state}",
    REJECT: "Only an image waiting for review takes a verdict; this one is {state}",
    SEND_BACK: "Only an accepted image is sent back for review; this one is {state}",
}


def after(change: str, state: ImageState, review_required: bool = True) -> ImageState:
    """The state an image in `state` takes on `change`; Conflict (409) if it cannot take it."""
    target = TRANSITIONS[change].get(state)
    if target is None:
        raise Conflict(_REFUSALS[change].format(state=state.value.replace("_", " ")), code="wrong_state")
    if change == SUBMIT and not review_required:
        return ImageState.accepted
    return target
