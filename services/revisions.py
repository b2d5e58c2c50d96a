"""Annotation revisions: every change to an image's annotations is kept as a numbered snapshot.

A change first claims the image's next revision number (`claim_revision`), then records the
snapshot under it (`record_revision`), in one transaction. Claiming is one conditional UPDATE: it
takes the image's row lock, so concurrent changes to one image queue up instead of interleaving,
and it is where a save based on an old revision finds out that someone else saved first.
"""

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from core.extensions import db
from models import Annotation, AnnotationRevision, Image

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


def record_revision(image: Image, author_id: int | None, action: str, annotations: list[dict] | None = None) -> AnnotationRevision:
    """Add the revision `claim_revision` numbered, with the annotations as they are now (not committed).

    Args:
        annotations: the snapshot (`snapshot_of`) when the caller has the rows at hand; read from
            the database otherwise, after flushing, so a revision always matches what was saved.
    """
    if annotations is None:
        db.session.flush()
        annotations = snapshot_of(db.session.scalars(
            select(Annotation).where(Annotation.image_id == image.id).order_by(Annotation.id)
        ))
    revision = AnnotationRevision(
        image_id=image.id, number=image.revision, author_id=author_id, action=action,
        annotations=annotations, state=image.state.value,
    )
    db.session.add(revision)
    return revision
