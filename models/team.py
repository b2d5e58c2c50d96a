"""Workforces, labeling tasks, the assignments that give labelers their images, and acceptance samples."""

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.base import BigId, utcnow


class WorkforceRole(str, enum.Enum):
    labeler = "labeler"
    reviewer = "reviewer"
    team_admin = "team_admin"


class AssignmentState(str, enum.Enum):
    assigned = "assigned"  # open: in the labeler's queue
    submitted = "submitted"  # handed in; back to assigned when a reviewer rejects it


class TaskStrategy(str, enum.Enum):
    round_robin = "round_robin"
    batch = "batch"


class Workforce(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkforceMember(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workforce_id: Mapped[int] = mapped_column(ForeignKey("workforce.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[WorkforceRole] = mapped_column(db.Enum(WorkforceRole, native_enum=False, length=12))

    __table_args__ = (UniqueConstraint("workforce_id", "user_id"),)


class DatasetWorkforce(db.Model):
    """A workforce attached to a dataset: its members hold their team roles there (core.permissions.role_of)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    workforce_id: Mapped[int] = mapped_column(ForeignKey("workforce.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("dataset_id", "workforce_id"),)


class WorkforceInvite(db.Model):
    """A one-time, expiring sign-up link into a workforce; only the token's hash is kept."""

    id: Mapped[int] = mapped_column(primary_key=True)
    workforce_id: Mapped[int] = mapped_column(ForeignKey("workforce.id", ondelete="CASCADE"), index=True)
    role: Mapped[WorkforceRole] = mapped_column(db.Enum(WorkforceRole, native_enum=False, length=12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))


class LabelingTask(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    workforce_id: Mapped[int | None] = mapped_column(ForeignKey("workforce.id", ondelete="SET NULL"))
    strategy: Mapped[TaskStrategy] = mapped_column(db.Enum(TaskStrategy, native_enum=False, length=20), default=TaskStrategy.round_robin)
    batch_size: Mapped[int | None]
    repetition: Mapped[int] = mapped_column(default=1)
    review_required: Mapped[bool] = mapped_column(default=True)
    sampling_rate: Mapped[float] = mapped_column(Float, default=0.0)
    # The images the task was made of, as the creating job counted them; complete once it has
    # assigned them all (until then the task is being built and nobody is handed work from it).
    image_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Tasks made before tasks were built by a job are complete.
    complete: Mapped[bool] = mapped_column(default=False, server_default=true())
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskMember(db.Model):
    """A labeler a task hands images to, in the order the strategy deals them out."""

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("labeling_task.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)

    user = relationship("User")

    __table_args__ = (UniqueConstraint("task_id", "user_id"),)


class Assignment(db.Model):
    """One labeler's turn at one image of a task; with repetition r an image has r of them.

    `position` orders the labeler's queue: a rejected image moves before the first open one,
    "Later" after the last. A labeler who leaves hands their open turns back (labeler_id None)
    for a manager to reassign.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("labeling_task.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"))
    labeler_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    state: Mapped[AssignmentState] = mapped_column(db.Enum(AssignmentState, native_enum=False, length=12), default=AssignmentState.assigned)
    position: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    opened_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    # With repetition > 1 each labeler labels their own version of the image, here (the image's
    # own annotations are what the reviewer keeps or merges of them); `revision` guards its saves.
    annotations: Mapped[list | None] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("task_id", "image_id", "labeler_id"),
        Index("ix_assignment_labeler_image", "labeler_id", "image_id"),
        Index("ix_assignment_image", "image_id"),
        Index("ix_assignment_queue", "task_id", "labeler_id", "state", "position"),
    )


class SampleOutcome(str, enum.Enum):
    pending = "pending"
    passed = "passed"
    failed = "failed"


class AcceptanceSample(db.Model):
    """A random draw of a task's accepted images that the owner gives verdicts on."""

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("labeling_task.id", ondelete="CASCADE"), index=True)
    rate: Mapped[float] = mapped_column(Float)
    required_accuracy: Mapped[float] = mapped_column(Float, default=0.95)
    lot_size: Mapped[int] = mapped_column(default=0)  # the accepted images the sample stands for
    outcome: Mapped[SampleOutcome] = mapped_column(db.Enum(SampleOutcome, native_enum=False, length=10), default=SampleOutcome.pending)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class SampleItem(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("acceptance_sample.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), index=True)
    verdict: Mapped[str | None] = mapped_column(String(10))  # a models.Verdict value once given
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("sample_id", "image_id"),)
