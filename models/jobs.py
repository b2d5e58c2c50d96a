"""Job rows (the record of truth behind RQ jobs) and the upload ledger imports resume from."""

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.base import BigId, utcnow


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def active(self) -> bool:
        return self in (JobStatus.queued, JobStatus.running)


class Job(db.Model):
    MAX_ERRORS = 1000

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the RQ job id
    kind: Mapped[str] = mapped_column(String(40))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("dataset.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    status: Mapped[JobStatus] = mapped_column(db.Enum(JobStatus, native_enum=False, length=12), default=JobStatus.queued)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    errors: Mapped[list] = mapped_column(JSON, default=list)
    error_count: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict] = mapped_column(JSON, default=dict)
    # What to enqueue again when a person re-runs the job after a crash (ids and primitives only).
    func: Mapped[str] = mapped_column(String(120), default="")
    queue: Mapped[str] = mapped_column(String(40), default="")
    args: Mapped[list] = mapped_column(JSON, default=list)
    # Cancelling a running job is cooperative: the job reads this flag between items.
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    # "<host> <pid> <start time>" of the process running the job body (the RQ work-horse, not the
    # worker that forked it): whether the job is still alive is asked of this process.
    runner: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    dataset = relationship("Dataset")
    user = relationship("User")

    __table_args__ = (Index("ix_job_dataset_status", "dataset_id", "status"), Index("ix_job_created", "created_at"))

    @property
    def percent(self) -> int:
        if self.status == JobStatus.finished:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


class Upload(db.Model):
    """One batch of files sent by a person or script; its import job processes the ledger."""

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    split: Mapped[str] = mapped_column(String(12), default="unassigned")
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job | None] = relationship()


class ImportItemStatus(str, enum.Enum):
    pending = "pending"
    imported = "imported"
    duplicate = "duplicate"
    failed = "failed"


class ImportItem(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("upload.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    folder_path: Mapped[str] = mapped_column(String(1024), default="")
    storage_key: Mapped[str | None] = mapped_column(String(64))
    byte_size: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[ImportItemStatus] = mapped_column(
        db.Enum(ImportItemStatus, native_enum=False, length=12), default=ImportItemStatus.pending
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    image_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (
        Index("ix_import_item_upload", "upload_id", "status", "id"),
        # Deleting an image asks whether a pending upload still needs its file.
        Index("ix_import_item_storage_key", "storage_key"),
    )
