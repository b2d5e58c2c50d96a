"""Annotations, their revisions and review verdicts."""

import enum
from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.base import BigId, utcnow


class Annotation(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id", ondelete="CASCADE"), index=True)
    shape: Mapped[str] = mapped_column(String(10))
    geometry: Mapped[dict] = mapped_column(JSON, default=dict)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    text: Mapped[str | None] = mapped_column(Text)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(12), default="human")
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnnotationRevision(db.Model):
    """The whole annotation set of an image as one save left it: history and restore read these."""

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    number: Mapped[int]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(20), default="save")
    annotations: Mapped[list] = mapped_column(JSON, default=list)
    state: Mapped[str | None] = mapped_column(String(12))
    # created_at is the first save of the revision, saved_at its last: a person's autosaves within
    # a couple of minutes of the first fold into one revision (services/revisions.py).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_annotation_revision_image", "image_id", "number", unique=True),)


class Verdict(str, enum.Enum):
    accept = "accept"
    reject = "reject"


class Review(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignment.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    verdict: Mapped[Verdict] = mapped_column(db.Enum(Verdict, native_enum=False, length=10))
    comment: Mapped[str] = mapped_column(Text, default="")
    # The annotation revision the verdict was given on (its history entry).
    revision: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_review_reviewer", "reviewer_id", "created_at"),)
