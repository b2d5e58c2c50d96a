"""Labels (classes) of a dataset."""

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.extensions import db


class Label(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(9), default="#e6194b")
    shortcut: Mapped[str | None] = mapped_column(String(10))
    default_shape: Mapped[str] = mapped_column(String(10), default="tag")
    with_text: Mapped[bool] = mapped_column(default=False)
    attributes: Mapped[list] = mapped_column(JSON, default=list)
    unclassified: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(default=0)
    image_count: Mapped[int] = mapped_column(default=0)
    annotation_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (UniqueConstraint("dataset_id", "name"), UniqueConstraint("dataset_id", "shortcut"))
