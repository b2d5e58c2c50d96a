"""Repetition: in a task with repetition r > 1 each image goes to r labelers, and each labels a
version of their own (kept on their Assignment) without seeing the others'. Once all r are handed
in, the image waits for review; the reviewer sees the versions side by side with their agreement
(services/agreement.py) and keeps one or merges them into the image's annotations, then accepts
or rejects as for any image.
"""

from itertools import combinations

from sqlalchemy import select, update

from core.errors import Conflict, NotFound
from core.extensions import db
from models import Assignment, AssignmentState, Image, ImageState, LabelingTask, User
from models.base import utcnow
from services import agreement, annotations, lifecycle


def versioned_turn(image: Image, user: User) -> Assignment | None:
    """The user's turn at the image in a task that repeats images, if they have one."""
    return db.session.scalar(
        select(Assignment).join(LabelingTask, LabelingTask.id == Assignment.task_id)
        .where(Assignment.image_id == image.id, Assignment.labeler_id == user.id, LabelingTask.repetition > 1)
    )


def _turn(task: LabelingTask, user: User, image_id: int) -> Assignment:
    turn = db.session.scalar(select(Assignment).where(
        Assignment.task_id == task.id, Assignment.image_id == image_id, Assignment.labeler_id == user.id
    ))
    if turn is None or task.repetition < 2:
        raise NotFound(f"You have no version of image {image_id} in this task")
    return turn


def _shown(turn: Assignment, image: Image) -> dict:
    """The version as the canvas reads annotations: rows with ids (their places), the revision, a state."""
    rows = [{**row, "id": i + 1} for i, row in enumerate(turn.annotations or [])]
    state = "submitted" if turn.state == AssignmentState.submitted else image.state.value
    return {"revision": turn.revision, "state": state, "annotations": rows}


def get_version(task: LabelingTask, user: User, image_id: int) -> dict:
    turn = _turn(task, user, image_id)
    return _shown(turn, db.session.get(Image, image_id))


def save_version(task: LabelingTask, user: User, image_id: int, records, based_on_revision) -> dict:
    """Replace the user's version, if it is still open and nobody (another tab) saved it since `based_on_revision`."""
    turn = _turn(task, user, image_id)
    image = db.session.get(Image, image_id)
    if turn.state != AssignmentState.assigned:
        raise Conflict("You handed this version in; it is the reviewer's now", code="wrong_state")
    annotations._check_revision_number(based_on_revision)
    clean = annotations.validate_annotations(image, records)
    rows = [{k: v for k, v in row.items() if k != "id"} | {"author_id": user.id} for row in clean]
    changed = db.session.execute(
        update(Assignment).where(Assignment.id == turn.id, Assignment.revision == based_on_revision, Assignment.state == AssignmentState.assigned)
        .values(annotations=rows, revision=Assignment.revision + 1)
    ).rowcount
    db.session.commit()
    db.session.refresh(turn)
    if not changed:
        raise Conflict(
            f"Your version was saved elsewhere since revision {based_on_revision} (now at {turn.revision}); reload it",
            details={"current_revision": turn.revision, "annotations": _shown(turn, image)["annotations"]},
        )
    return _shown(turn, image)


def submit_version(task: LabelingTask, user: User, image_id: int, based_on_revision=None, empty: bool = False) -> dict:
    """Hand the user's version in ("nothing to label": an empty one). The last of the image's r
    versions sends the image to review; each hand-in is recorded on the image's history."""
    turn = _turn(task, user, image_id)
    image = db.session.get(Image, image_id)
    if turn.state != AssignmentState.assigned:
        raise Conflict("You handed this version in already", code="wrong_state")
    if based_on_revision is not None and based_on_revision != turn.revision:
        raise Conflict(f"Your version moved on to revision {turn.revision}; reload it", details={"current_revision": turn.revision})

    def next_state(locked: Image) -> ImageState:
        # Under the image's row lock (the claim): of two last hand-ins at once, the later sees the other.
        others_open = db.session.scalar(select(db.func.count()).select_from(Assignment).where(
            Assignment.task_id == task.id, Assignment.image_id == image_id, Assignment.id != turn.id,
            Assignment.state == AssignmentState.assigned,
        ))
        return locked.state if others_open else lifecycle.after(lifecycle.SUBMIT, locked.state)

    def hand_in(_image: Image) -> None:
        values = {"state": AssignmentState.submitted, "submitted_at": utcnow()}
        if empty:
            values["annotations"] = []
        db.session.execute(update(Assignment).where(Assignment.id == turn.id).values(**values))

    annotations._store(image, user, "skip" if empty else "submit", next_state, None, before_commit=hand_in)
    db.session.refresh(turn)
    return _shown(turn, image)


def versions_of(image: Image) -> dict:
    """Every labeler's version of the image (in its task that repeats images), and how much they agree."""
    rows = db.session.execute(
        select(Assignment, User).join(LabelingTask, LabelingTask.id == Assignment.task_id)
        .outerjoin(User, User.id == Assignment.labeler_id)
        .where(Assignment.image_id == image.id, LabelingTask.repetition > 1).order_by(Assignment.id)
    ).all()
    versions = [
        {"labeler": annotations._person(user), "labeler_id": turn.labeler_id, "submitted": turn.state == AssignmentState.submitted,
         "annotations": turn.annotations or []}
        for turn, user in rows
    ]
    handed_in = [v["annotations"] for v in versions if v["submitted"]]
    return {"versions": versions, "agreement": agreement.image_score(handed_in)}


def keep(image: Image, user: User, labeler_id=None, merge: bool = False, based_on_revision=None) -> dict:
    """Make one labeler's version (or the merge of all handed in) the image's annotations, as a
    revision of the reviewer's that keeps each annotation's author. The verdict comes after."""
    handed_in = [v for v in versions_of(image)["versions"] if v["submitted"]]
    if not handed_in:
        raise Conflict("No labeler has handed in a version of this image yet", code="wrong_state")
    if merge:
        records = agreement.merged([v["annotations"] for v in handed_in])
    else:
        chosen = next((v for v in handed_in if v["labeler_id"] == labeler_id), None)
        if chosen is None:
            raise NotFound(f"No version of this image handed in by user {labeler_id}")
        records = chosen["annotations"]
    clean = annotations.validate_annotations(image, [{k: v for k, v in r.items() if k != "author_id"} for r in records])
    for record, original in zip(clean, records):
        record["author_id"] = original.get("author_id")
    return annotations._store(image, user, "merge" if merge else "keep", annotations._state_after_save, based_on_revision, clean, keep_authors=True)


AGREEMENT_SAMPLE = 500  # the images a task's agreement is measured on: the latest handed in


def task_agreement(task: LabelingTask, labeler_id: int | None = None) -> float | None:
    """The labelers' agreement on the task: the mean score over the pairs of handed-in versions of
    its latest AGREEMENT_SAMPLE images handed in (one labeler's: over the pairs that include theirs);
    None when the task does not repeat images or no image has two versions handed in yet."""
    if task.repetition < 2:
        return None
    images = select(Assignment.image_id).where(Assignment.task_id == task.id, Assignment.state == AssignmentState.submitted)
    if labeler_id is not None:
        images = images.where(Assignment.labeler_id == labeler_id)
    images = images.order_by(Assignment.submitted_at.desc()).limit(AGREEMENT_SAMPLE).scalar_subquery()
    rows = db.session.execute(
        select(Assignment.image_id, Assignment.labeler_id, Assignment.annotations)
        .where(Assignment.task_id == task.id, Assignment.state == AssignmentState.submitted, Assignment.image_id.in_(images))
    ).all()
    by_image: dict[int, list[tuple[int, list]]] = {}
    for image_id, labeler, rows_of_version in rows:
        by_image.setdefault(image_id, []).append((labeler, rows_of_version or []))
    scores = []
    for versions in by_image.values():
        for (a_id, a), (b_id, b) in combinations(versions, 2):
            if labeler_id is None or labeler_id in (a_id, b_id):
                scores.append(agreement.pair_score(a, b))
    return round(sum(scores) / len(scores), 4) if scores else None
