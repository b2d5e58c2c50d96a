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

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from core.extensions import db
from models import Annotation, AnnotationRevision, Image
from models.base import utcnow

SNAPSHOT_FIELDS = ("label_id", "shape", "geometry", "attributes", "text", "source", "score", "author_id")


def snapshot_of(annotations) -> list[dict]:
    """Annotations (rows, in a stable order) as the plain data a revision keeps."""
    return [{field: getattr(a, field) for field in SNAPSHOT_FIELDS} for a in annotations]


def claim_revision(image: Image, expected: int | None = None) -> bool:
    """Lock the image's row and move it to its next revision number (not committed).

    With `expected`, only if the image is still at that revision; False (and nothing changed)
    otherwise. On success `image.revision` and `image.state` are the latest committed ones, so
    the caller decides the next state on fresh data.
    """
    statement = update(Image).where(Image.id == image.id)
    if expected is not None:
        statement = statement.where(Image.revision == expected)
    row = db.session.execute(
        statement.values(revision=Image.revision + 1).returning(Image.revision, Image.state)
        .execution_options(synchronize_session=False)
    ).one_or_none()
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
        annotations = snapshot_of(db.session.scalars(
            select(Annotation).where(Annotation.image_id == image.id).order_by(Annotation.id)
        ))
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
    check and the merge are one conditional UPDATE: every autosave passes here.
    """
    if not fold_within or action != "save" or author_id is None:
        return False
    folded = db.session.execute(
        update(AnnotationRevision).where(
            AnnotationRevision.image_id == image.id, AnnotationRevision.number == image.revision - 1,
            AnnotationRevision.action == "save", AnnotationRevision.author_id == author_id,
            AnnotationRevision.created_at >= now - fold_within,
        )
        # The row takes the new number: the number a client holds is always a revision's.
        .values(number=image.revision, annotations=annotations, state=image.state.value, saved_at=now)
        # No revision of the image is loaded in a save's session, and the commit right after expires all.
        .execution_options(synchronize_session=False)
    )
    return folded.rowcount == 1
