"""Annotation revisions: every change to an image's annotations is kept as a numbered snapshot.

A change first claims the image's next revision number (`claim_revision`), then records the
snapshot under it (`record_revision`), in one transaction. Claiming is one conditional UPDATE: it
takes the image's row lock, so concurrent changes to one image queue up instead of interleaving,
and it is where a save based on an old revision finds out that someone else saved first.

The canvas autosaves every few seconds; a person's saves within a couple of minutes of their
revision's first one fold into it (`fold_within`), so the history shows edits, not keystrokes.
Folding never skips the claim: the counter still moves on every save, so a concurrent save based
on the old number still conflicts; only the snapshot row is merged.
"""

from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm.attributes import set_committed_value

from core.extensions import db
from models import Annotation, AnnotationRevision, Image
from models.base import utcnow

SNAPSHOT_FIELDS = ("label_id", "shape", "geometry", "attributes", "text", "source", "score", "author_id")

# Every save runs these two. Built once, on the tables (no ORM bulk-update machinery), with their
# values bound at execution: building a statement and its cache key costs more than running it.
_images, _revisions = Image.__table__, AnnotationRevision.__table__
_CLAIM = (
    update(_images).where(_images.c.id == bindparam("image_id"))
    .values(revision=_images.c.revision + 1).returning(_images.c.revision, _images.c.state)
)
_CLAIM_IF_AT = _CLAIM.where(_images.c.revision == bindparam("expected"))
_FOLD = (
    update(_revisions).where(
        _revisions.c.image_id == bindparam("image"), _revisions.c.number == bindparam("previous"),
        _revisions.c.action == "save", _revisions.c.author_id == bindparam("author"),
        _revisions.c.created_at >= bindparam("since"),
    )
    # The row takes the new number: the number a client holds is always a revision's.
    .values(number=bindparam("current"), annotations=bindparam("snapshot"), state=bindparam("new_state"), saved_at=bindparam("now"))
)


def snapshot_of(annotations) -> list[dict]:
    """Annotations (mappings holding SNAPSHOT_FIELDS, in a stable order) as the plain data a revision keeps."""
    return [{field: a[field] for field in SNAPSHOT_FIELDS} for a in annotations]


def claim_revision(image: Image, expected: int | None = None) -> bool:
    """Lock the image's row and move it to its next revision number (not committed).

    With `expected`, only if the image is still at that revision; False (and nothing changed)
    otherwise. On success `image.revision` and `image.state` are the latest committed ones, so
    the caller decides the next state on fresh data.
    """
    statement = _CLAIM if expected is None else _CLAIM_IF_AT
    row = db.session.execute(statement, {"image_id": image.id, "expected": expected}).one_or_none()
    if row is None:
        return False
    set_committed_value(image, "revision", row.revision)
    set_committed_value(image, "state", row.state)
    return True


def record_revision(
    image: Image, author_id: int | None, action: str, annotations: list[dict] | None = None,
    fold_within: timedelta | None = None,
) -> None:
    """Add the revision `claim_revision` numbered, with the annotations as they are now (not committed).

    Args:
        annotations: the snapshot (`snapshot_of`) when the caller has the rows at hand; read from
            the database otherwise, after flushing, so a revision always matches what was saved.
        fold_within: for a save, merge into the image's previous revision instead when that one
            is the same person's save, begun at most this long ago (see `_fold`).
    """
    if annotations is None:
        db.session.flush()
        annotations = snapshot_of(db.session.execute(
            select(*(getattr(Annotation, field) for field in SNAPSHOT_FIELDS))
            .where(Annotation.image_id == image.id).order_by(Annotation.id)
        ).mappings())
    now = utcnow()
    if _fold(image, author_id, action, fold_within, annotations, now):
        return
    db.session.add(AnnotationRevision(
        image_id=image.id, number=image.revision, author_id=author_id, action=action,
        annotations=annotations, state=image.state.value, created_at=now, saved_at=now,
    ))


def _fold(image: Image, author_id: int | None, action: str, fold_within: timedelta | None, annotations: list[dict], now) -> bool:
    """Merge this save into the image's previous revision, if it may fold into it; whether it did.

    Only the one numbered just below the claimed number: the claim holds the image's row lock, so
    that is the latest change, and nothing (another person's save, a submit, a restore, a label
    job) came between. It must be a save by the same person, begun within `fold_within`. The
    check and the merge are one conditional UPDATE: every autosave passes here. (No revision of
    the image is loaded in a save's session, and the commit right after expires all.)
    """
    if not fold_within or action != "save" or author_id is None:
        return False
    folded = db.session.execute(_FOLD, {
        "image": image.id, "previous": image.revision - 1, "author": author_id, "since": now - fold_within,
        "current": image.revision, "snapshot": annotations, "new_state": image.state.value, "now": now,
    })
    return folded.rowcount == 1
