"""Released versions: immutable snapshots of a dataset that exports can be made from."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.base import BigId, utcnow


class Version(db.Model):
    """A dataset as it was at release: V001, V002, ... The images are VersionImage rows."""

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    number: Mapped[int]
    note: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("version.id", ondelete="SET NULL"))
    # The label list as of release (each label's dict, live ids kept) and the label statistics.
    labels: Mapped[list] = mapped_column(JSON, default=list)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    image_count: Mapped[int] = mapped_column(default=0)
    annotation_count: Mapped[int] = mapped_column(default=0)
    # The release job fills the snapshot; a version is listed only once it is complete.
    complete: Mapped[bool] = mapped_column(default=False)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by = relationship("User")

    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    @property
    def name(self) -> str:
        return f"V{self.number:03d}"


class VersionImage(db.Model):
    """One image of a version, with everything an export reads, copied at release."""

    __tablename__ = "version_image"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(BigInteger)  # the live image's id; the image may be gone since
    file_name: Mapped[str] = mapped_column(String(255))
    folder_path: Mapped[str] = mapped_column(String(1024), default="")
    storage_key: Mapped[str] = mapped_column(String(64))
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(10))
    split: Mapped[str] = mapped_column(String(12))
    state: Mapped[str] = mapped_column(String(12))
    external_id: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    annotations: Mapped[list] = mapped_column(JSON, default=list)
    # sha256 of split, tags and annotations: comparing two versions compares these.
    digest: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_version_image_version", "version_id", "image_id", unique=True),
        # A stored file stays while a version still holds it (services.images.release_if_unused).
        Index("ix_version_image_storage_key", "storage_key"),
    )


class Export(db.Model):
    """An export file made by a job, from the live dataset or a version, kept until it expires."""

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[int | None] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(20))
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    # Set only when the file is complete in storage: a partial file is never offered.
    storage_key: Mapped[str | None] = mapped_column(String(255))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    byte_size: Mapped[int] = mapped_column(BigInteger, default=0)
    # The validation report, counted from the written file (images, annotations, per label, per split).
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]

    job = relationship("Job")
    version = relationship("Version")
    created_by = relationship("User")

    __table_args__ = (Index("ix_export_expires", "expires_at"),)
