"""Annotations of one image: validated replace with revisions and conflicts, lifecycle, history, restore.

Every change goes through `_store()`: it claims the image's next revision (the conflict check and
the row lock), replaces the rows, moves the image's state, records the revision, keeps the
counters, and commits, in one transaction.
"""

from collections import Counter
from datetime import timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, Invalid, NotFound, is_finite_number, is_int
from core.extensions import db
from core.permissions import assigned_repetition, role_of
from models import (
    SHAPES_BY_TYPE,
    SINGLE_TAG_TYPES,
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentState,
    Dataset,
    Image,
    ImageState,
    Label,
    LabelingTask,
    Review,
    Role,
    User,
)
from models.base import utcnow
from services import lifecycle
from services.revisions import claim_revision, record_revision, snapshot_of
from services.shapes import SHAPES, geometry_problems

MAX_ANNOTATIONS = 2000
MAX_TEXT = 10000
MAX_ERRORS = 50
HISTORY_PAGE = 100

FIELDS = ("label_id", "shape", "geometry", "attributes", "text", "source", "score")
IGNORED = ("id", "author_id")  # what GET returns and a client may send back unchanged
OLD_FIELDS = ("id", *FIELDS, "author_id")  # what a save needs of the annotations it replaces
SOURCES = ("human", "prediction")

# Every save runs these. Built once, on the tables (no ORM unit of work or bulk machinery), with
# their values bound at execution: building a statement and its cache key costs more CPU than
# the database spends running it.
_annotations, _datasets, _labels = Annotation.__table__, Dataset.__table__, Label.__table__
# What the labeling page shows of a label, and what a save checks against.
LABEL_FIELDS = ("id", "name", "color", "shortcut", "default_shape", "with_text", "attributes", "unclassified")
_LABELS = (
    select(*(_labels.c[name] for name in LABEL_FIELDS))
    .where(_labels.c.dataset_id == bindparam("dataset_id")).order_by(_labels.c.position, _labels.c.id)
)
# The DELETE hands back the rows it removed: the authors to keep and the old counts.
_DELETE_ROWS = delete(_annotations).where(_annotations.c.image_id == bindparam("image_id")).returning(*(_annotations.c[f] for f in OLD_FIELDS))
_INSERT_ROWS = insert(_annotations).returning(_annotations.c.id, sort_by_parameter_order=True)
_COUNT_DATASET = update(_datasets).where(_datasets.c.id == bindparam("dataset_id")).values(
    annotation_count=_datasets.c.annotation_count + bindparam("annotations_moved"),
    annotated_count=_datasets.c.annotated_count + bindparam("annotated_moved"),
)
_COUNT_LABEL = update(_labels).where(_labels.c.id == bindparam("label_id")).values(
    annotation_count=_labels.c.annotation_count + bindparam("annotations_moved"),
    image_count=_labels.c.image_count + bindparam("images_moved"),
)


# ---- reading -------------------------------------------------------------------------------


def annotation_dict(annotation: Annotation) -> dict:
    return {
        "id": annotation.id, "label_id": annotation.label_id, "shape": annotation.shape, "geometry": annotation.geometry or {},
        "attributes": annotation.attributes or {}, "text": annotation.text, "source": annotation.source,
        "score": annotation.score, "author_id": annotation.author_id,
    }


def _rows(image_id: int) -> list[Annotation]:
    return list(db.session.scalars(select(Annotation).where(Annotation.image_id == image_id).order_by(Annotation.id)))


def dataset_labels(dataset_id: int) -> list:
    """The dataset's labels in palette order, as rows of their LABEL_FIELDS."""
    return db.session.execute(_LABELS, {"dataset_id": dataset_id}).all()


def get_annotations(image: Image) -> dict:
    """The image's current annotations, with the revision a save must name and the state."""
    return {"revision": image.revision, "state": image.state.value, "annotations": [annotation_dict(a) for a in _rows(image.id)]}


# ---- validation ----------------------------------------------------------------------------


class _Errors:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, index: int | None, field: str, message: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append({"index": index, "field": field, "message": message})

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        where = f"Annotation {first['index']}, {first['field']}" if first["index"] is not None else first["field"]
        more = f" (and {len(self.items) - 1} more problems)" if len(self.items) > 1 else ""
        raise Invalid(f"{where}: {first['message']}{more}", details={"field": _path(first), "errors": self.items})


def _path(error: dict) -> str:
    return error["field"] if error["index"] is None else f"annotations[{error['index']}].{error['field']}"


def _check_attributes(errors: _Errors, i: int, attributes, label: Label) -> None:
    if not isinstance(attributes, dict):
        errors.add(i, "attributes", "must be an object of attribute name to value")
        return
    definitions = {d.get("name"): d for d in (label.attributes or []) if isinstance(d, dict)}
    for name, value in attributes.items():
        field = f"attributes.{name}"
        definition = definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(map(str, definitions))) or "none"
            errors.add(i, field, f"label {label.name!r} has no attribute {name!r} (it has: {known})")
            continue
        kind = definition.get("type", "text")
        if value is None:
            continue
        if kind == "number" and not is_finite_number(value):
            errors.add(i, field, f"must be a finite number, not {value!r}"[:200])
        elif kind == "checkbox" and not isinstance(value, bool):
            errors.add(i, field, "must be true or false")
        elif kind == "select" and (not isinstance(value, str) or value not in (definition.get("values") or [])):
            errors.add(i, field, f"must be one of {', '.join(map(str, definition.get('values') or []))}"[:300])
        elif kind == "text" and (not isinstance(value, str) or len(value) > MAX_TEXT):
            errors.add(i, field, f"must be text of at most {MAX_TEXT} characters")


def validate_annotations(image: Image, annotations, labels: dict[int, Label] | None = None) -> list[dict]:
    """Check a whole annotation set for the image; the clean records, or Invalid naming every problem.

    Args:
        labels: the dataset's labels by id (loaded when not given).
    """
    dataset = db.session.get(Dataset, image.dataset_id)
    if labels is None:
        labels = {label.id: label for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset.id))}
    errors = _Errors()
    if not isinstance(annotations, list):
        errors.add(None, "annotations", "must be a list")
        errors.raise_if_any()
    if len(annotations) > MAX_ANNOTATIONS:
        errors.add(None, "annotations", f"at most {MAX_ANNOTATIONS} annotations per image, got {len(annotations)}")
        errors.raise_if_any()
    allowed = SHAPES_BY_TYPE[dataset.type]
    clean, tags = [], Counter()
    for i, item in enumerate(annotations):
        if not isinstance(item, dict):
            errors.add(i, "annotation", "must be an object")
            continue
        unknown = set(item) - set(FIELDS) - set(IGNORED)
        if unknown:
            errors.add(i, "annotation", f"unknown fields {', '.join(sorted(map(str, unknown)))}")
        label_id, shape = item.get("label_id"), item.get("shape")
        label = labels.get(label_id) if is_int(label_id) else None
        if label is None:
            errors.add(i, "label_id", "is required" if label_id is None else f"{label_id!r} is not a label of this dataset"[:200])
        if shape not in SHAPES:
            errors.add(i, "shape", f"must be one of {', '.join(SHAPES)}")
        elif shape not in allowed:
            errors.add(i, "shape", f"a {dataset.type.value} dataset allows {', '.join(allowed)}, not {shape}")
        else:
            for field, message in geometry_problems(shape, item.get("geometry", {}), image.width, image.height):
                errors.add(i, field, message)
            if shape == "tag" and label is not None:
                tags[label.id] += 1
                if tags[label.id] == 2:
                    errors.add(i, "label_id", f"the tag {label.name!r} is already set on this image")
                if dataset.type in SINGLE_TAG_TYPES and sum(tags.values()) == 2:
                    errors.add(i, "shape", f"a {dataset.type.value} image has exactly one class tag")
        if label is not None:
            _check_attributes(errors, i, item.get("attributes", {}), label)
        text = item.get("text")
        if text not in (None, ""):
            if not isinstance(text, str):
                errors.add(i, "text", "must be a string")
            elif label is not None and not label.with_text:
                errors.add(i, "text", f"label {label.name!r} does not take text")
            elif len(text) > MAX_TEXT:
                errors.add(i, "text", f"at most {MAX_TEXT} characters, got {len(text)}")
        source = item.get("source", "human")
        if source not in SOURCES:
            errors.add(i, "source", "must be human or prediction")
        score = item.get("score")
        if score is not None and not (is_finite_number(score) and 0 <= score <= 1):
            errors.add(i, "score", "must be a number from 0 to 1, or null")
        clean.append({
            "id": item.get("id"), "label_id": label_id, "shape": shape, "geometry": item.get("geometry", {}),
            "attributes": {k: v for k, v in (item.get("attributes") or {}).items() if v is not None} if isinstance(item.get("attributes"), dict) else {},
            "text": text or None, "source": source, "score": score,
        })
    errors.raise_if_any()
    return clean


# ---- changing ------------------------------------------------------------------------------


def _check_revision_number(based_on_revision) -> None:
    if not is_int(based_on_revision) or based_on_revision < 0:
        raise Invalid("revision must be the number of the revision the change is based on (0 for none)", details={"field": "revision"})


def _claim(image: Image, based_on_revision: int | None) -> None:
    """Take the image's next revision (and its row lock), if nobody saved since `based_on_revision`.

    None: whatever revision is current. Raises Conflict, carrying the other person's work.
    """
    if based_on_revision is not None:
        _check_revision_number(based_on_revision)
    if not claim_revision(image, based_on_revision):
        _conflict(image, based_on_revision)


def _conflict(image: Image, based_on_revision: int) -> None:
    """Raise the Conflict for a change based on an old revision, with the current work in it."""
    db.session.rollback()
    if db.session.scalar(select(exists().where(Image.id == image.id))) is False:
        raise NotFound(f"Image {image.id} not found")
    db.session.refresh(image)
    raise Conflict(
        f"Someone saved this image since revision {based_on_revision} (now at {image.revision}); "
        "reload their annotations, or send yours again based on the current revision to keep yours",
        details=_conflict_details(image),
    )


def _conflict_details(image: Image) -> dict:
    latest = db.session.scalar(
        select(AnnotationRevision).where(AnnotationRevision.image_id == image.id, AnnotationRevision.number == image.revision)
    )
    author = db.session.get(User, latest.author_id) if latest is not None and latest.author_id else None
    return {
        "current_revision": image.revision, "state": image.state.value,
        "annotations": [annotation_dict(a) for a in _rows(image.id)],
        "author": _person(author), "saved_at": latest.saved_at.isoformat() + "Z" if latest is not None else None,
    }


def _person(user: User | None) -> dict | None:
    return {"id": user.id, "name": user.display_name, "email": user.email} if user is not None else None


def _by_label(records) -> Counter:
    return Counter(r["label_id"] if isinstance(r, dict) else r.label_id for r in records)


def _new_rows(image: Image, user: User, old, records: list[dict], keep_authors: bool) -> list[dict]:
    """The annotations to insert, as `annotation_dict()` gives them but for their ids; `old` are
    the replaced annotations (rows or objects with OLD_FIELDS)."""
    previous = {a.id: a for a in old}
    rows = []
    for r in records:
        before = previous.get(r.get("id")) if isinstance(r.get("id"), int) else None
        unchanged = before is not None and all(getattr(before, f) == (r[f] if f != "text" else r[f] or None) for f in FIELDS)
        # Authorship follows the person who last changed an annotation, not who last pressed save.
        author = r.get("author_id") if keep_authors else before.author_id if unchanged else user.id
        rows.append({
            "label_id": r["label_id"], "shape": r["shape"], "geometry": r["geometry"], "attributes": r["attributes"],
            "text": r["text"], "source": r["source"], "score": r["score"], "author_id": author,
        })
    return rows


def _insert(image: Image, rows: list[dict]) -> list[dict]:
    """Insert the new annotations (one statement on PostgreSQL); them with their ids, as `annotation_dict()` gives them."""
    if not rows:
        return []
    ids = db.session.execute(_INSERT_ROWS, [{"image_id": image.id, **row} for row in rows]).scalars().all()
    return [{"id": annotation_id, **row} for annotation_id, row in zip(ids, rows)]


def _store(
    image: Image, user: User, action: str, next_state: Callable[[Image], ImageState], based_on_revision: int | None,
    records: list[dict] | None = None, keep_authors: bool = False, hand_in: bool = False, fold: bool = False,
    before_commit: Callable[[Image], None] | None = None,
) -> dict:
    """The one way annotations change: claim the revision, replace the rows, move the state, record
    the revision, keep the counters, commit. Returns what was saved, as `get_annotations()` would.

    Args:
        next_state: the state after the change, decided on the image as the claim left it (fresh).
        records: the new annotations (validated); None keeps the current ones (a bare submit).
        hand_in: mark the user's assignment of the image as submitted.
        fold: a save that may fold into the same person's previous one (services/revisions.py).
        before_commit: more writes of the change (a review's row), run on the image after its
            revision is recorded, in the same transaction: they commit or roll back with it.
    """
    _claim(image, based_on_revision)
    try:
        state = next_state(image)
    except Exception:
        db.session.rollback()  # give back the claimed revision
        raise
    try:
        if records is None:
            rows = records = old = [annotation_dict(a) for a in _rows(image.id)]
        else:
            old = db.session.execute(_DELETE_ROWS, {"image_id": image.id}).all()
            rows = _insert(image, _new_rows(image, user, old, records, keep_authors))
        if hand_in:
            _mark_assignment(image, user)
        was_unlabeled = image.state == ImageState.unlabeled
        image.state = state
        fold_within = timedelta(seconds=current_app.config["LOUPE_REVISION_FOLD_S"]) if fold else None
        record_revision(image, user.id, action, snapshot_of(rows), fold_within)
        if before_commit is not None:
            before_commit(image)
        saved = {"revision": image.revision, "state": state.value, "annotations": rows}
        # Counters last, with nothing but the commit after them: every save of the dataset updates
        # its row, so hold that lock the least time (the bench's saves queue on it).
        _count(image, was_unlabeled, _by_label(old), _by_label(records))
        db.session.commit()
    except IntegrityError:
        # The claim serialises changes to one image, so what lands here is the data changing under
        # the save in another way, e.g. a label deleted by a job while this save used it.
        db.session.rollback()
        db.session.refresh(image)
        raise Conflict(
            "The image or its labels changed while saving; reload the image and try again",
            details=_conflict_details(image),
        ) from None
    except Exception:
        db.session.rollback()  # a deadlock, a lost connection: give back the claim, keep no half-save
        raise
    return saved


def _count(image: Image, was_unlabeled: bool, old: Counter, new: Counter) -> None:
    delta = sum(new.values()) - sum(old.values())
    annotated = 1 if was_unlabeled and image.state != ImageState.unlabeled else 0
    # In id order, so two saves touching the same labels take their row locks in the same order.
    labels = [
        {"label_id": label_id, "annotations_moved": new[label_id] - old[label_id], "images_moved": (new[label_id] > 0) - (old[label_id] > 0)}
        for label_id in sorted(set(old) | set(new))
    ]
    labels = [label for label in labels if label["annotations_moved"] or label["images_moved"]]
    # Sent back to back (the labels in one go, pipelined on PostgreSQL): from the first UPDATE to
    # the commit these rows are locked. Nothing is synchronised in the session: the commit that
    # follows expires the loaded dataset and labels anyway.
    if delta or annotated:
        db.session.execute(_COUNT_DATASET, {"dataset_id": image.dataset_id, "annotations_moved": delta, "annotated_moved": annotated})
    if labels:
        db.session.execute(_COUNT_LABEL, labels)


def _state_after_save(image: Image) -> ImageState:
    return lifecycle.after(lifecycle.SAVE, image.state)


def replace_annotations(image: Image, user: User, annotations, based_on_revision=None, fold: bool = False) -> dict:
    """Replace all the image's annotations, if nobody saved since `based_on_revision`; the new state.

    Args:
        based_on_revision: the revision the change was made on; None replaces whatever is
            current (a script setting labels), still as a revision of its own, so the replaced
            annotations stay in the history.
        fold: the canvas's autosave: it may fold into the person's previous save (see
            services/revisions.py). Only a change based on a revision folds: a blind replace
            did not see what it replaced.
    """
    _refuse_shared_write(image, user)
    if based_on_revision is not None:
        _check_revision_number(based_on_revision)
        # A stale revision is the answer even when the change is also invalid: the person must reload
        # first (their labels may be gone), and the claim in _store() re-checks under the row lock.
        if based_on_revision != image.revision:
            _conflict(image, based_on_revision)
    records = validate_annotations(image, annotations, {label.id: label for label in dataset_labels(image.dataset_id)})
    return _store(image, user, "save", _state_after_save, based_on_revision, records, fold=fold and based_on_revision is not None)


def _state_after_predictions(image: Image) -> ImageState:
    return lifecycle.after(lifecycle.PREDICTIONS, image.state)


def import_annotations(image: Image, user: User, records: list[dict], predictions: bool) -> dict:
    """Replace the image's annotations with an import's (checked as a save is), as a revision of
    its own. Predictions alone put an image nobody has labeled in prelabeled (services/lifecycle.py)."""
    clean = validate_annotations(image, records, {label.id: label for label in dataset_labels(image.dataset_id)})
    return _store(image, user, "import", _state_after_predictions if predictions else _state_after_save, None, clean)


def needs_review(image: Image) -> bool:
    """Whether a submit goes to review: the image is in a labeling task that asks for review."""
    return bool(db.session.scalar(select(exists().where(
        Assignment.image_id == image.id, Assignment.task_id == LabelingTask.id, LabelingTask.review_required.is_(True)
    ))))


def _submitted_state(image: Image) -> ImageState:
    return lifecycle.after(lifecycle.SUBMIT, image.state, review_required=needs_review(image))


def _refuse_shared_write(image: Image, user: User) -> None:
    """A labeler of a task that repeats images labels a version of their own (services/repetition.py),
    never the image's shared annotations, which the reviewer makes of the versions."""
    if user.is_admin or role_of(user, db.session.get(Dataset, image.dataset_id)) != Role.labeler:
        return
    if (assigned_repetition(user, image) or 0) > 1:
        raise Conflict("In this task each labeler labels a version of their own: save it through the task", code="versioned")


def _mark_assignment(image: Image, user: User) -> None:
    """Mark the user's open turn at the image handed in. A labeler holds the image only through
    that turn: when a manager has just moved it to someone else, their hand-in is refused."""
    marked = db.session.execute(
        update(Assignment)
        .where(Assignment.image_id == image.id, Assignment.labeler_id == user.id, Assignment.state == AssignmentState.assigned)
        .values(state=AssignmentState.submitted, submitted_at=utcnow())
    ).rowcount
    if not marked and not user.is_admin and role_of(user, db.session.get(Dataset, image.dataset_id)) == Role.labeler:
        raise Conflict("This image is no longer assigned to you; a manager gave it to someone else", code="not_assigned")


def submit(image: Image, user: User, based_on_revision=None) -> dict:
    """Hand the image in: to review, or accepted when its task needs no review."""
    _refuse_shared_write(image, user)
    return _store(image, user, "submit", _submitted_state, based_on_revision, hand_in=True)


def skip(image: Image, user: User, based_on_revision=None) -> dict:
    """Submit the image with no annotations (nothing to label on it)."""
    _refuse_shared_write(image, user)
    return _store(image, user, "skip", _submitted_state, based_on_revision, records=[], hand_in=True)


# ---- history -------------------------------------------------------------------------------


def history(image: Image, before: int | None = None, limit: int = HISTORY_PAGE) -> list[dict]:
    """The image's revisions, newest first: who did what, when, and how many annotations it left;
    a reviewer's verdict (accept, reject) carries its comment."""
    query = select(AnnotationRevision).where(AnnotationRevision.image_id == image.id)
    if before is not None and not is_int(before):
        raise Invalid(f"before must be a revision number, not {str(before)[:24]}", details={"field": "before"})
    if before:
        query = query.where(AnnotationRevision.number < before)
    revisions = db.session.scalars(query.order_by(AnnotationRevision.number.desc()).limit(min(max(limit, 1), HISTORY_PAGE))).all()
    authors = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({r.author_id for r in revisions if r.author_id})))}
    # A verdict is recorded as a revision of its own, its Review row naming that revision's number.
    reviews = {
        number: (verdict, comment) for number, verdict, comment in db.session.execute(
            select(Review.revision, Review.verdict, Review.comment)
            .where(Review.image_id == image.id, Review.revision.in_([r.number for r in revisions]))
        )
    } if revisions else {}
    return [
        {
            "number": r.number, "author": _person(authors.get(r.author_id)), "action": r.action, "created_at": r.created_at,
            "saved_at": r.saved_at, "state": r.state, "annotation_count": len(r.annotations or []),
            "verdict": reviews[r.number][0].value if r.number in reviews else None,
            "comment": reviews[r.number][1] if r.number in reviews else None,
        }
        for r in revisions
    ]


def restore(image: Image, user: User, number: int) -> dict:
    """Make revision `number`'s annotations the current ones again, as a new revision.

    Annotations whose label was deleted since are dropped and listed under `dropped`.
    """
    _refuse_shared_write(image, user)
    revision = db.session.scalar(
        select(AnnotationRevision).where(AnnotationRevision.image_id == image.id, AnnotationRevision.number == number)
    )
    if revision is None:
        raise NotFound(f"Image {image.id} has no revision {number}")
    labels = {label.id: label for label in db.session.scalars(select(Label).where(Label.dataset_id == image.dataset_id))}
    kept, dropped = [], []
    for i, item in enumerate(revision.annotations or []):
        if item.get("label_id") in labels:
            kept.append(item)
        else:
            dropped.append({"index": i, "label_id": item.get("label_id"), "reason": "its label was deleted"})
    records = validate_annotations(image, [{k: v for k, v in a.items() if k != "author_id"} for a in kept], labels)
    for record, item in zip(records, kept):
        record["author_id"] = item.get("author_id")
    saved = _store(image, user, "restore", _state_after_save, None, records, keep_authors=True)
    return {**saved, "restored_from": number, "dropped": dropped}
