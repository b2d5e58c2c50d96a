"""Workforces, labeling tasks and the assignments that give labelers their images."""

import enum
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db
from models.base import utcnow


class WorkforceRole(str, enum.Enum):
    labeler = "labeler"
    reviewer = "reviewer"
    team_admin = "team_admin"


class AssignmentState(str, enum.Enum):
    assigned = "assigned"
    submitted = "submitted"


class Workforce(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkforceMember(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workforce_id: Mapped[int] = mapped_column(ForeignKey("workforce.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[WorkforceRole] = mapped_column(db.Enum(WorkforceRole, native_enum=False, length=12))

    __table_args__ = (UniqueConstraint("workforce_id", "user_id"),)


class LabelingTask(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    workforce_id: Mapped[int | None] = mapped_column(ForeignKey("workforce.id", ondelete="SET NULL"))
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")
    repetition: Mapped[int] = mapped_column(default=1)
    review_required: Mapped[bool] = mapped_column(default=True)
    sampling_rate: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Assignment(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("labeling_task.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    labeler_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    state: Mapped[AssignmentState] = mapped_column(db.Enum(AssignmentState, native_enum=False, length=12), default=AssignmentState.assigned)
    opened_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("task_id", "image_id", "labeler_id"),
        Index("ix_assignment_labeler_image", "labeler_id", "image_id"),
        Index("ix_assignment_image", "image_id"),
    )
