"""Annotation revisions: every change to an image's annotations is kept as a numbered snapshot."""

from sqlalchemy import select

from core.extensions import db
from models import Annotation, AnnotationRevision, Image

SNAPSHOT_FIELDS = ("label_id", "shape", "geometry", "attributes", "text", "source", "score", "author_id")


def snapshot(image_id: int) -> list[dict]:
    """The image's current annotations as plain data, in a stable order."""
    annotations = db.session.scalars(select(Annotation).where(Annotation.image_id == image_id).order_by(Annotation.id))
    return [{field: getattr(a, field) for field in SNAPSHOT_FIELDS} for a in annotations]


def record_revision(image: Image, author_id: int | None, action: str) -> AnnotationRevision:
    """Add the next revision of the image with its annotations as they are now (flushed, not committed).

    Call it after changing the annotations, in the same transaction, so a revision always matches
    what was saved.
    """
    db.session.flush()
    image.revision = (image.revision or 0) + 1
    revision = AnnotationRevision(
        image_id=image.id, number=image.revision, author_id=author_id, action=action,
        annotations=snapshot(image.id), state=image.state.value,
    )
    db.session.add(revision)
    return revision
