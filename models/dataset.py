"""Datasets and the roles people hold on them."""

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from models.base import utcnow
from services.shapes import SHAPES


class DatasetType(str, enum.Enum):
    classification = "classification"
    multilabel = "multilabel"
    detection = "detection"
    segmentation = "segmentation"
    anomaly = "anomaly"

    @property
    def title(self) -> str:
        return self.value.capitalize()


# The shapes an annotation may have in each dataset type (SPEC sections 3 and 7). `tag` is a
# whole-image class; classification and anomaly images carry exactly one.
SHAPES_BY_TYPE = {
    DatasetType.classification: ("tag",),
    DatasetType.multilabel: ("tag", "polygon"),
    DatasetType.detection: ("box", "polygon", "polyline", "points", "circle"),
    DatasetType.segmentation: ("polygon", "box", "circle"),
    DatasetType.anomaly: ("tag", "box", "polygon", "circle"),
}
SINGLE_TAG_TYPES = (DatasetType.classification, DatasetType.anomaly)


class Role(str, enum.Enum):
    """Dataset roles, weakest first: the order is what role_at_least() compares."""

    labeler = "labeler"
    reviewer = "reviewer"
    manager = "manager"
    owner = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class Dataset(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[DatasetType] = mapped_column(db.Enum(DatasetType, native_enum=False, length=20))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    archived: Mapped[bool] = mapped_column(default=False)
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Counters are kept current by the services that change images, so pages never count rows;
    # the refresh-counters job recomputes them from scratch.
    image_count: Mapped[int] = mapped_column(default=0)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    annotated_count: Mapped[int] = mapped_column(default=0)
    annotation_count: Mapped[int] = mapped_column(default=0)

    owner = relationship("User")
    members: Mapped[list["DatasetMember"]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("ix_dataset_image_count", "image_count", "id"), Index("ix_dataset_name", "name", "id"))

    @classmethod
    def lock(cls, dataset_id: int) -> None:
        """Hold the dataset's row to the end of the transaction, to serialise changes to one dataset.

        A no-op write rather than SELECT ... FOR UPDATE: PostgreSQL locks the row, SQLite takes its
        one write lock (it has no row locks, so FOR UPDATE would not do).
        """
        db.session.execute(
            db.update(cls).where(cls.id == dataset_id).values(updated_at=cls.updated_at).execution_options(synchronize_session=False)
        )


class DatasetMember(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(db.Enum(Role, native_enum=False, length=20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    dataset: Mapped[Dataset] = relationship(back_populates="members")
    user = relationship("User")

    __table_args__ = (UniqueConstraint("dataset_id", "user_id"),)
