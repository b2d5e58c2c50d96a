"""Images, their folders and free-form tags."""

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.base import BigId, utcnow


class Split(str, enum.Enum):
    train = "train"
    validation = "validation"
    test = "test"
    unassigned = "unassigned"
    review = "review"


class ImageState(str, enum.Enum):
    unlabeled = "unlabeled"
    prelabeled = "prelabeled"
    in_progress = "in_progress"
    to_review = "to_review"
    rejected = "rejected"
    accepted = "accepted"


class Folder(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("folder.id", ondelete="CASCADE"))

    __table_args__ = (UniqueConstraint("dataset_id", "path"),)


class Image(db.Model):
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folder.id", ondelete="SET NULL"))
    file_name: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(64))
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(10))
    orientation: Mapped[int] = mapped_column(default=1)
    phash: Mapped[str | None] = mapped_column(String(16))
    # The number of the image's latest annotation revision (0: never annotated). A save names the
    # revision it was based on, so two people saving the same image never overwrite each other.
    revision: Mapped[int] = mapped_column(default=0, server_default="0")
    split: Mapped[Split] = mapped_column(db.Enum(Split, native_enum=False, length=12), default=Split.unassigned)
    external_id: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[ImageState] = mapped_column(
        db.Enum(ImageState, native_enum=False, length=12), default=ImageState.unlabeled
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    folder: Mapped[Folder | None] = relationship()
    created_by = relationship("User")
    tags: Mapped[list["Tag"]] = relationship(secondary="image_tag", order_by="Tag.name")

    # The grid pages by id inside one dataset, optionally filtered: every filter gets an index that
    # ends in id so keyset paging stays an index range scan at a million rows.
    __table_args__ = (
        UniqueConstraint("dataset_id", "storage_key"),
        UniqueConstraint("dataset_id", "external_id"),
        Index("ix_image_dataset_id_id", "dataset_id", "id"),
        Index("ix_image_dataset_split", "dataset_id", "split", "id"),
        Index("ix_image_dataset_state", "dataset_id", "state", "id"),
        Index("ix_image_dataset_folder", "dataset_id", "folder_id", "id"),
        Index("ix_image_dataset_name", "dataset_id", "file_name"),
        Index("ix_image_storage_key", "storage_key"),
    )

    @property
    def thumbnail_key(self) -> str:
        return thumbnail_key_for(self.storage_key)


def thumbnail_key_for(storage_key: str) -> str:
    """Where a stored file's thumbnail lives (the import job writes it, the grid serves it)."""
    return f"thumbs/{storage_key}.jpg"


class Tag(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # Kept by every change to image_tag (services/images.py): the grid lists tags with their counts
    # on every page, and counting a million links per request is what a counter avoids.
    image_count: Mapped[int] = mapped_column(default=0, server_default="0")

    __table_args__ = (UniqueConstraint("dataset_id", "name"),)


class ImageTag(db.Model):
    __tablename__ = "image_tag"
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)
