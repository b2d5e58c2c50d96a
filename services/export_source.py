"""The live dataset as an export reads it: filtered images in keyset pages, labels after the tag map.

A released version is read the same way from its snapshot (services/versions.py); both give the
records of formats/base.py, so every format exports either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from sqlalchemy import exists, func, select

from core.extensions import db
from core.storage import get_storage
from formats.base import ExportAnnotation, ExportImage, ExportLabel
from models import Annotation, Dataset, Folder, Image, ImageTag, Label, Tag

PAGE = 1000  # images per keyset page: one query for them, one for their annotations, one for tags


@dataclass(frozen=True)
class ExportFilter:
    """Which images an export takes (empty: all). Labels also limit the annotations to theirs."""

    splits: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    label_ids: tuple[int, ...] = ()
    image_ids: tuple[int, ...] = ()


def filtered(query, f: ExportFilter, *, split, state, image_id, has_label):
    """A query of images narrowed by the filter, given the columns it reads (the live images'
    or a version's) and how to ask whether an image has an annotation of some labels."""
    if f.splits:
        query = query.where(split.in_(f.splits))
    if f.states:
        query = query.where(state.in_(f.states))
    if f.image_ids:
        query = query.where(image_id.in_(f.image_ids))
    if f.label_ids:
        query = query.where(has_label(f.label_ids))
    return query


def merged_labels(labels: list[dict], tagmap: dict[str, str]) -> tuple[tuple[ExportLabel, ...], dict[int, int]]:
    """Apply a tag map (`from` name -> `to` name, compared case-insensitively) to a label list.

    Labels mapped to one name, or to the name of another label, become one ExportLabel (the first
    in display order gives its id, color and place). Returns the labels and, for every label id,
    the id of the ExportLabel its annotations now carry.
    """
    rename = {source.lower(): target for source, target in tagmap.items()}
    ordered = sorted(labels, key=lambda label: (label["position"], label["id"]))
    by_name: dict[str, ExportLabel] = {}
    target_of: dict[int, int] = {}
    for label in ordered:
        name = rename.get(label["name"].lower(), label["name"])
        key = name.lower()
        if key not in by_name:
            by_name[key] = ExportLabel(
                id=label["id"], name=name, color=label["color"], position=len(by_name),
                unclassified=label.get("unclassified", False), attributes=tuple(label.get("attributes") or ()),
            )
        target_of[label["id"]] = by_name[key].id
    return tuple(by_name.values()), target_of


def label_dict(label: Label) -> dict:
    """A label as a version keeps it, and as merged_labels() reads it."""
    return {
        "id": label.id, "name": label.name, "color": label.color, "position": label.position,
        "unclassified": label.unclassified, "attributes": list(label.attributes or []),
        "default_shape": label.default_shape, "shortcut": label.shortcut, "with_text": label.with_text,
    }


def annotation_record(row: dict, target_of: dict[int, int]) -> ExportAnnotation:
    """An annotation (a row's columns, or a version's stored dict) with its label after the tag map."""
    return ExportAnnotation(
        label_id=target_of[row["label_id"]], shape=row["shape"], geometry=row["geometry"] or {},
        attributes=row.get("attributes") or {}, text=row.get("text"), source=row.get("source") or "human", score=row.get("score"),
    )


@dataclass
class LiveSource:
    dataset: Dataset
    filter: ExportFilter = field(default_factory=ExportFilter)
    tagmap: dict[str, str] = field(default_factory=dict)
    version_name: str | None = None

    def __post_init__(self):
        labels = db.session.scalars(select(Label).where(Label.dataset_id == self.dataset.id)).all()
        self.labels, self._target_of = merged_labels([label_dict(label) for label in labels], self.tagmap)
        self.dataset_name = self.dataset.name
        self.dataset_type = self.dataset.type.value

    def _query(self):
        return filtered(
            select(Image.id).where(Image.dataset_id == self.dataset.id), self.filter,
            split=Image.split, state=Image.state, image_id=Image.id,
            has_label=lambda ids: exists().where(Annotation.image_id == Image.id, Annotation.label_id.in_(ids)),
        )

    def count(self) -> int:
        return db.session.scalar(select(func.count()).select_from(self._query().subquery()))

    def annotation_count(self) -> int:
        query = select(func.count()).select_from(Annotation).where(Annotation.image_id.in_(self._query()))
        if self.filter.label_ids:
            query = query.where(Annotation.label_id.in_(self.filter.label_ids))
        return db.session.scalar(query)

    def images(self) -> Iterator[ExportImage]:
        after = 0
        while True:
            ids = db.session.scalars(self._query().where(Image.id > after).order_by(Image.id).limit(PAGE)).all()
            if not ids:
                return
            # Rows and columns, not entities: nothing of a page stays in the session (expunging it
            # would also detach the running job's row, whose progress would then never be written).
            yield from self._page(ids)
            after = ids[-1]

    def _page(self, ids: list[int]) -> Iterator[ExportImage]:
        rows = db.session.connection().execute(
            select(Image.id, Image.file_name, Folder.path, Image.storage_key, Image.width, Image.height, Image.byte_size,
                   Image.format, Image.split, Image.state, Image.external_id)
            .outerjoin(Folder, Folder.id == Image.folder_id).where(Image.id.in_(ids)).order_by(Image.id)
        ).all()
        annotations: dict[int, list] = {}
        query = select(Annotation.image_id, Annotation.label_id, Annotation.shape, Annotation.geometry, Annotation.attributes,
                       Annotation.text, Annotation.source, Annotation.score).where(Annotation.image_id.in_(ids))
        if self.filter.label_ids:
            query = query.where(Annotation.label_id.in_(self.filter.label_ids))
        target_of = self._target_of
        # Through the connection, as plain tuples: at 500,000 annotations the ORM's result layer and
        # a mapping per row cost more than the query.
        for image_id, label_id, shape, geometry, attributes, text, source, score in db.session.connection().execute(
            query.order_by(Annotation.image_id, Annotation.id)
        ):
            annotations.setdefault(image_id, []).append(ExportAnnotation(
                label_id=target_of[label_id], shape=shape, geometry=geometry or {}, attributes=attributes or {},
                text=text, source=source or "human", score=score,
            ))
        tags: dict[int, list[str]] = {}
        for image_id, name in db.session.execute(
            select(ImageTag.image_id, Tag.name).join(Tag, Tag.id == ImageTag.tag_id).where(ImageTag.image_id.in_(ids)).order_by(ImageTag.image_id, Tag.name)
        ):
            tags.setdefault(image_id, []).append(name)
        for row in rows:
            yield ExportImage(
                id=row.id, file_name=row.file_name, folder_path=row.path or "", storage_key=row.storage_key,
                width=row.width, height=row.height, byte_size=row.byte_size, format=row.format,
                split=row.split.value, state=row.state.value, external_id=row.external_id,
                tags=tuple(tags.get(row.id, ())), annotations=tuple(annotations.get(row.id, ())),
            )

    def open(self, storage_key: str) -> BinaryIO:
        return get_storage().open(storage_key)

    def signed_url(self, image: ExportImage, expires_in_s: int) -> str:
        from services.signed_urls import image_url

        return image_url(self.dataset.id, image.storage_key, image.file_name, expires_in_s)
