"""The live dataset as an export reads it: filtered images in keyset pages, labels after the tag map.

A released version is read the same way from its snapshot (services/versions.py); both give the
records of formats/base.py, so every format exports either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import BinaryIO, Collection, Iterator

from sqlalchemy import String, Text, and_, bindparam, case, cast, exists, func, null, select, type_coerce
from sqlalchemy.orm import aliased

from core.extensions import db
from core.storage import get_storage
from formats.base import ROW_FIELDS, ExportAnnotation, ExportImage, ExportLabel
from models import Annotation, Dataset, Folder, Image, ImageTag, Label, Tag

PAGE = 1000  # images per keyset page: one query for them, one for their annotations, one for tags
ROWS_PAGE = 10_000  # images per page of rows(): a row costs far less than a record
# Rows taken from the cursor at once. Few enough to be freed before the garbage collector's first
# generation fills: a page's worth alive at once is promoted, and the full collections that follow
# walk every object of the process (they doubled the cost of a row, and more).
FETCH = 500
EMPTY_JSON = (None, "{}", "null")  # a JSON column's text when it holds nothing


def _raw(column):
    """An enum column as the string stored (its value): no enum object made per row."""
    return type_coerce(column, String)


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

    def _query(self, *columns):
        return filtered(
            select(*(columns or (Image.id,))).where(Image.dataset_id == self.dataset.id), self.filter,
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
        # Rows and columns through the connection, not entities: nothing of a page stays in the
        # session (expunging it would also detach the running job's row, whose progress would then
        # never be written), and at 500,000 annotations the ORM's result layer costs more than the query.
        query = self._query(
            Image.id, Image.file_name, Folder.path, Image.storage_key, Image.width, Image.height, Image.byte_size,
            Image.format, _raw(Image.split), _raw(Image.state), Image.external_id,
        ).outerjoin(Folder, Folder.id == Image.folder_id).order_by(Image.id).limit(PAGE)
        after = 0
        while rows := db.session.connection().execute(query.where(Image.id > after)).all():
            yield from self._page(rows, after)
            after = rows[-1][0]

    def _page(self, rows: list, after: int) -> Iterator[ExportImage]:
        # The page's images named by the query that found them, not by a list of their ids: a
        # thousand bound values are a thousand names to render into every statement.
        ids = self._query().where(Image.id > after, Image.id <= rows[-1][0])
        query = select(
            Annotation.image_id, Annotation.label_id, Annotation.shape, cast(Annotation.geometry, Text),
            cast(Annotation.attributes, Text), Annotation.text, Annotation.source, Annotation.score,
        ).where(Annotation.image_id.in_(ids))
        if self.filter.label_ids:
            query = query.where(Annotation.label_id.in_(self.filter.label_ids))
        connection = db.session.connection()
        found = connection.execute(query.order_by(Annotation.image_id, Annotation.id)).all()
        # The page's geometries decoded in one call, as the text the database holds: a call per
        # annotation costs twice the parsing; most attributes are empty and need no parser at all.
        geometries = json.loads("[" + ",".join(row[3] or "null" for row in found) + "]")
        annotations: dict[int, list] = {}
        target_of = self._target_of
        for (image_id, label_id, shape, _, attributes, text, source, score), geometry in zip(found, geometries):
            annotations.setdefault(image_id, []).append(ExportAnnotation(
                target_of[label_id], shape, geometry or {}, {} if attributes in EMPTY_JSON else json.loads(attributes) or {},
                text, source or "human", score,
            ))
        tags: dict[int, list[str]] = {}
        for image_id, name in connection.execute(
            select(ImageTag.image_id, Tag.name).join(Tag, Tag.id == ImageTag.tag_id)
            .where(ImageTag.image_id.in_(ids)).order_by(ImageTag.image_id, Tag.name)
        ):
            tags.setdefault(image_id, []).append(name)
        for image_id, file_name, folder, key, width, height, byte_size, format_, split, state, external_id in rows:
            yield ExportImage(
                image_id, file_name, folder or "", key, width, height, byte_size, format_, split, state, external_id,
                tuple(tags.get(image_id, ())), tuple(annotations.get(image_id, ())),
            )

    def rows(self, fields: Collection[str] = ROW_FIELDS) -> Iterator[tuple]:
        # One join per page of images, its rows handed on as the database gives them: the tag map is
        # applied in the query, the folder and split come as the strings records hold, and a field
        # not asked for is a NULL (a column read costs as much as the rest of the row).
        # An alias: the label filter's EXISTS over annotations must not correlate with the join's.
        annotation = aliased(Annotation)
        label_id = annotation.label_id
        if any(source != target for source, target in self._target_of.items()):
            label_id = case(self._target_of, value=annotation.label_id)
        joined = annotation.image_id == Image.id
        if self.filter.label_ids:
            joined = and_(joined, annotation.label_id.in_(self.filter.label_ids))
        columns = {
            "image_id": Image.id, "file_name": Image.file_name, "folder_path": func.coalesce(Folder.path, ""),
            "storage_key": Image.storage_key, "width": Image.width, "height": Image.height, "split": _raw(Image.split),
            "label_id": label_id, "shape": annotation.shape, "geometry": annotation.geometry,
        }
        wanted = {"image_id", *fields}  # the id always: it is what tells one image's rows from the next
        query = self._query(*(columns[name] if name in wanted else null() for name in ROW_FIELDS)).outerjoin(annotation, joined)
        if "folder_path" in wanted:
            query = query.outerjoin(Folder, Folder.id == Image.folder_id)
        query = query.order_by(Image.id, annotation.id)
        # Pages by a range of ids whose end is found first (an index read): a join limited to
        # `IN (the page's ids)` costs a quarter more per row.
        ends = self._query().where(Image.id > bindparam("after")).order_by(Image.id).offset(ROWS_PAGE - 1).limit(1)
        connection, after = db.session.connection(), 0
        while True:
            last = connection.scalar(ends, {"after": after})
            page = query.where(Image.id > after)
            rows = connection.execute(page if last is None else page.where(Image.id <= last))
            while batch := rows.fetchmany(FETCH):
                yield from batch
            if last is None:
                return
            after = last

    def open(self, storage_key: str) -> BinaryIO:
        return get_storage().open(storage_key)

    def signed_url(self, image: ExportImage, expires_in_s: int) -> str:
        from services.signed_urls import image_url

        return image_url(self.dataset.id, image.storage_key, image.file_name, expires_in_s)
