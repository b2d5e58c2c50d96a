"""Released versions: start a release, snapshot the dataset into it, list, get and compare them,
and read one back as an export source.

A version is numbered when it is asked for (V001, V002...: the unique (dataset, number) decides
between two people releasing at once) and filled by the release job (workers/versions.py) in
id-ordered chunks, each one transaction that also carries the version's running statistics, so a
re-run continues after the last chunk it finds. It is listed once complete. The snapshot copies
everything an export reads, so editing the live dataset afterwards never changes a version, and
a stored file stays while any version holds it (services.images.release_if_unused).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

from sqlalchemy import Integer, and_, delete, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core.errors import INT32_MAX, Conflict, Invalid, LoupeError, NotFound
from core.extensions import db
from core.storage import get_storage
from formats.base import ExportImage, rows_of
from models import Annotation, Dataset, Folder, Image, ImageTag, Job, JobStatus, Label, Tag, User, Version, VersionImage
from services.export_source import ExportFilter, annotation_record, filtered, label_dict, merged_labels
from services.images import release_if_unused
from services.job_kinds import RELEASE_VERSION
from services.jobs import reconcile, start_job

MAX_NOTE = 2000
CHUNK = 500  # images per release transaction
PAGE = 1000  # version images per keyset page when a version is read back
MAX_LIST = 100  # versions per page; images per list of a comparison
NUMBER_ATTEMPTS = 5  # releases racing for the next number: each retry reads the new highest
PARTS = ("split", "tags", "annotations")  # what a digest covers, and what a comparison names as changed


# ---- releasing -----------------------------------------------------------------------------


def release_version(dataset: Dataset, user: User, note: str = "") -> Job:
    """Number a new version of the dataset and start the job that fills it.

    The job's result names the version from the start, so a client polling the job knows which
    version it will get.
    """
    if not isinstance(note, str):
        raise Invalid("note must be text", details={"field": "note"})
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise Invalid(f"The note is longer than {MAX_NOTE} characters", details={"field": "note"})
    version = _numbered(dataset, user, note)
    try:
        job = start_job(
            RELEASE_VERSION, version.id, dataset=dataset, user=user, total=dataset.image_count,
            message=f"Waiting for a worker to release {version.name}",
        )
    except LoupeError:
        # Nothing will fill it (the dataset is being deleted, or the queue is down): the number is free again.
        db.session.rollback()
        db.session.execute(delete(Version).where(Version.id == version.id))
        db.session.commit()
        raise
    version.job_id = job.id
    # Only while no worker has taken the job: a worker's own result is never overwritten (it names
    # the version too).
    db.session.execute(
        update(Job).where(Job.id == job.id, Job.status == JobStatus.queued)
        .values(result={"version_id": version.id, "version": version.name})
    )
    db.session.commit()
    db.session.refresh(job)
    return job


def _numbered(dataset: Dataset, user: User, note: str) -> Version:
    """A new, empty version with the dataset's next number; a release taking that number at the
    same moment makes this one read the new highest and try again."""
    for _ in range(NUMBER_ATTEMPTS):
        number = (db.session.scalar(select(func.max(Version.number)).where(Version.dataset_id == dataset.id)) or 0) + 1
        version = Version(dataset_id=dataset.id, number=number, note=note, created_by_id=user.id, labels=[], stats={})
        db.session.add(version)
        try:
            db.session.commit()
            return version
        except IntegrityError:
            db.session.rollback()
            if db.session.get(Dataset, dataset.id) is None:
                raise Conflict("The dataset was deleted; nothing can be released from it") from None
    raise Conflict("Other releases of this dataset took every number tried; send the release again")


def begin_snapshot(version: Version) -> None:
    """On a release's first run, the label list as of now; a re-run keeps the one it began with."""
    if not version.labels and not db.session.scalar(select(exists().where(VersionImage.version_id == version.id))):
        labels = db.session.scalars(select(Label).where(Label.dataset_id == version.dataset_id).order_by(Label.position, Label.id))
        version.labels = [label_dict(label) for label in labels]


def snapshot_chunk(version: Version) -> int:
    """Copy the next chunk of the dataset's images (after the last one copied) into the version;
    how many it copied (0: the snapshot is whole). One transaction, committed by the caller.

    The image columns are copied by one INSERT ... SELECT, which locks the image rows it reads
    (PostgreSQL: FOR KEY SHARE; SQLite: the write lock the INSERT holds): an image deleted at the
    same moment is either not copied, or its deletion waits and then sees the version holding its
    file. The annotations and tags, read next, fill the rows and the version's statistics.
    """
    after = db.session.scalar(select(func.max(VersionImage.image_id)).where(VersionImage.version_id == version.id)) or 0
    images = (
        select(
            literal(version.id).label("version_id"), Image.id.label("image_id"), Image.file_name,
            func.coalesce(Folder.path, "").label("folder_path"), Image.storage_key, Image.width, Image.height,
            Image.byte_size, Image.format, Image.split, Image.state,
            Image.external_id, literal([], VersionImage.tags.type).label("tags"),
            literal([], VersionImage.annotations.type).label("annotations"), literal("").label("digest"),
        )
        .outerjoin(Folder, Folder.id == Image.folder_id)
        .where(Image.dataset_id == version.dataset_id, Image.id > after)
        .order_by(Image.id).limit(CHUNK)
        .with_for_update(read=True, key_share=True, of=Image)
    )
    columns = [c.name for c in images.selected_columns]
    copied = db.session.execute(
        VersionImage.__table__.insert().from_select(columns, images)
        .returning(VersionImage.id, VersionImage.image_id, VersionImage.split, VersionImage.state)
    ).all()
    if not copied:
        return 0
    ids = [row.image_id for row in copied]
    annotations = _annotations_of(ids)
    tags = _tags_of(ids)
    labels = {label["id"]: label for label in version.labels}
    _add_missing_labels(labels, {a["label_id"] for rows in annotations.values() for a in rows})
    stats = copy.deepcopy(version.stats) or {"splits": {}, "states": {}, "labels": {}}
    filled = []
    for row in copied:
        image_annotations, image_tags = annotations.get(row.image_id, []), tags.get(row.image_id, [])
        filled.append({
            "id": row.id, "tags": image_tags, "annotations": image_annotations,
            "digest": digest_of({"split": row.split, "tags": image_tags, "annotations": image_annotations}),
        })
        _count(stats, row.split, row.state, image_annotations)
    db.session.execute(update(VersionImage), filled)
    db.session.execute(update(Version).where(Version.id == version.id).values(
        labels=sorted(labels.values(), key=lambda label: (label["position"], label["id"])), stats=stats,
        image_count=Version.image_count + len(copied),
        annotation_count=Version.annotation_count + sum(len(f["annotations"]) for f in filled),
    ))
    return len(copied)


def finish_release(version: Version) -> None:
    """Mark the snapshot complete; its parent is the newest complete version before it."""
    version.parent_id = db.session.scalar(
        select(Version.id).where(Version.dataset_id == version.dataset_id, Version.complete, Version.number < version.number)
        .order_by(Version.number.desc()).limit(1)
    )
    version.complete = True


def _annotations_of(image_ids: list[int]) -> dict[int, list[dict]]:
    rows = db.session.execute(
        select(Annotation.image_id, Annotation.label_id, Annotation.shape, Annotation.geometry, Annotation.attributes,
               Annotation.text, Annotation.source, Annotation.score)
        .where(Annotation.image_id.in_(image_ids)).order_by(Annotation.image_id, Annotation.id)
    ).mappings()
    annotations: dict[int, list[dict]] = {}
    for row in rows:
        annotations.setdefault(row["image_id"], []).append({
            "label_id": row["label_id"], "shape": row["shape"], "geometry": row["geometry"] or {},
            "attributes": row["attributes"] or {}, "text": row["text"], "source": row["source"] or "human", "score": row["score"],
        })
    return annotations


def _tags_of(image_ids: list[int]) -> dict[int, list[str]]:
    tags: dict[int, list[str]] = {}
    for image_id, name in db.session.execute(
        select(ImageTag.image_id, Tag.name).join(Tag, Tag.id == ImageTag.tag_id).where(ImageTag.image_id.in_(image_ids))
        .order_by(ImageTag.image_id, Tag.name)
    ):
        tags.setdefault(image_id, []).append(name)
    return tags


def _add_missing_labels(labels: dict[int, dict], referenced: set[int]) -> None:
    """The version's label list grows by the labels its annotations use that it lacks (created
    while the release ran), so every annotation of a version names a label of it."""
    missing = referenced - set(labels)
    if not missing:
        return
    for label in db.session.scalars(select(Label).where(Label.id.in_(missing))):
        labels[label.id] = label_dict(label)
    for label_id in missing - set(labels):
        # Deleted between reading the annotation and its label: kept under a name that says so.
        labels[label_id] = {
            "id": label_id, "name": f"Deleted label {label_id}", "color": "#808080", "position": 2**31 - 1,
            "unclassified": False, "attributes": [], "default_shape": "tag", "shortcut": None, "with_text": False,
        }


def _count(stats: dict, split: str, state: str, annotations: list[dict]) -> None:
    """Add one image to the statistics: per split, per state, per label (and per label and split)."""
    def add(bucket: dict, key: str, images: int, annotation_count: int) -> dict:
        entry = bucket.setdefault(key, {"images": 0, "annotations": 0})
        entry["images"] += images
        entry["annotations"] += annotation_count
        return entry

    add(stats["splits"], split, 1, len(annotations))
    stats["states"][state] = stats["states"].get(state, 0) + 1
    per_label: dict[int, int] = {}
    for annotation in annotations:
        per_label[annotation["label_id"]] = per_label.get(annotation["label_id"], 0) + 1
    for label_id, n in per_label.items():
        entry = add(stats["labels"], str(label_id), 1, n)
        add(entry.setdefault("splits", {}), split, 1, n)


def digest_of(content: dict) -> str:
    """sha256 of an image's split, tags and annotations as canonical JSON: equal content, equal digest."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()


# ---- reading -------------------------------------------------------------------------------


def list_versions(dataset: Dataset, limit: int = MAX_LIST, before: int | None = None) -> tuple[list[Version], int, int | None]:
    """The dataset's complete versions, newest first: a page, the total and the next page's cursor
    (the number to pass as `before`)."""
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}", details={"field": "limit"})
    query = select(Version).where(Version.dataset_id == dataset.id, Version.complete)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    if before is not None:
        if not 1 <= before <= INT32_MAX:
            raise Invalid(f"cursor must be a version number from 1 to {INT32_MAX}", details={"field": "cursor"})
        query = query.where(Version.number < before)
    versions = db.session.scalars(query.order_by(Version.number.desc()).limit(limit + 1)).all()
    next_cursor = versions[limit - 1].number if len(versions) > limit else None
    return list(versions[:limit]), total, next_cursor


def pending_releases(dataset: Dataset) -> list[tuple[Version, Job | None]]:
    """Versions not complete yet, oldest first, with their release jobs: running, or failed (run it again)."""
    versions = db.session.scalars(select(Version).where(Version.dataset_id == dataset.id, ~Version.complete).order_by(Version.number)).all()
    jobs = {job.id: reconcile(job) for job in db.session.scalars(select(Job).where(Job.id.in_([v.job_id for v in versions if v.job_id])))}
    return [(version, jobs.get(version.job_id)) for version in versions]


def get_version(dataset: Dataset, version_id, complete: bool = True) -> Version:
    """A version of this dataset (404 for another dataset's); by default only a complete one (409 while it is released)."""
    try:
        version_id = int(version_id)
    except (TypeError, ValueError):
        raise Invalid("A version is named by its id, a whole number", details={"field": "version"}) from None
    version = db.session.get(Version, version_id) if -(2**31) <= version_id < 2**31 else None
    if version is None or version.dataset_id != dataset.id:
        raise NotFound(f"Version {version_id} not found in dataset {dataset.id}")
    if complete and not version.complete:
        raise Conflict(f"{version.name} is still being released; wait for its job to finish", details={"job_id": version.job_id})
    return version


def labels_with_stats(version: Version) -> list[dict]:
    """The version's labels in display order, each with its image and annotation counts (in all and per split)."""
    counts = version.stats.get("labels", {})
    return [
        {**label, **{k: v for k, v in counts.get(str(label["id"]), {"images": 0, "annotations": 0}).items()}}
        for label in version.labels
    ]


def compare(dataset: Dataset, a: Version, b: Version, limit: int = MAX_LIST) -> dict:
    """What changed from version a to version b, by live image: images added (in b only),
    removed (in a only) and changed (their digests differ: which of split, tags and annotations),
    each as a total and the first `limit` in id order; and both versions' label counts."""
    if not 1 <= limit <= MAX_LIST:
        raise Invalid(f"limit must be between 1 and {MAX_LIST}", details={"field": "limit"})
    if a.dataset_id != dataset.id or b.dataset_id != dataset.id:
        raise NotFound("Both versions must be of this dataset")
    va, vb = aliased(VersionImage), aliased(VersionImage)
    added = _only_in(vb, b, va, a)
    removed = _only_in(va, a, vb, b)

    def changed(*columns):
        return (
            select(*columns).select_from(va).join(vb, and_(vb.version_id == b.id, _same_image(va, vb)))
            .where(va.version_id == a.id, va.digest != vb.digest)
        )

    changed_items = []
    for old, new in db.session.execute(changed(va, vb).order_by(va.image_id).limit(limit)):
        item = {"image_id": new.image_id, "file_name": new.file_name, "changes": [p for p in PARTS if getattr(old, p) != getattr(new, p)]}
        if "split" in item["changes"]:
            item["split"] = {"a": old.split, "b": new.split}
        changed_items.append(item)
    return {
        "a": a, "b": b,
        "added": _listed(added, vb, limit), "removed": _listed(removed, va, limit),
        "changed": {"total": _count_of(changed(va.id)), "items": changed_items},
        "labels": _label_counts(a, b),
    }


def _only_in(mine, version: Version, theirs, other: Version):
    """The images of `version` that `other` does not hold."""
    return select(mine).where(
        mine.version_id == version.id, ~exists().where(theirs.version_id == other.id, _same_image(mine, theirs))
    )


def _same_image(one, other):
    """The same live image in two versions: its id, and its file (an image's file never changes),
    since SQLite gives a new image the id of the newest one deleted."""
    return and_(one.image_id == other.image_id, one.storage_key == other.storage_key)


def _count_of(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def _listed(query, alias, limit: int) -> dict:
    rows = db.session.scalars(query.order_by(alias.image_id).limit(limit)).all()
    return {
        "total": _count_of(query.with_only_columns(alias.id)),
        "items": [{"image_id": r.image_id, "file_name": r.file_name, "split": r.split} for r in rows],
    }


def _label_counts(a: Version, b: Version) -> list[dict]:
    """Each label of either version (b's name and place first) with its counts in a and in b."""
    of_a, of_b = {l["id"]: l for l in labels_with_stats(a)}, {l["id"]: l for l in labels_with_stats(b)}
    ordered = list(of_b.values()) + [label for label_id, label in of_a.items() if label_id not in of_b]
    empty = {"images": 0, "annotations": 0}
    return [
        {
            "id": label["id"], "name": label["name"], "color": label["color"],
            "a": {k: of_a.get(label["id"], empty)[k] for k in empty}, "b": {k: of_b.get(label["id"], empty)[k] for k in empty},
        }
        for label in ordered
    ]


# ---- exporting from a version --------------------------------------------------------------


def _has_label(label_ids: tuple[int, ...]):
    """Whether a version image has an annotation of these labels, asked of its stored JSON list."""
    if db.session.get_bind().dialect.name == "postgresql":
        element = func.json_array_elements(VersionImage.annotations).table_valued("value").alias("element")
        label = element.c.value.op("->>")("label_id").cast(Integer)
    else:
        element = func.json_each(VersionImage.annotations).table_valued("value").alias("element")
        label = func.json_extract(element.c.value, "$.label_id")
    return exists(select(1).select_from(element).where(label.in_(label_ids)))


@dataclass
class VersionSource:
    """A released version as an export reads it (formats/base.py's ExportSource), from its snapshot alone."""

    version: Version
    filter: ExportFilter = field(default_factory=ExportFilter)
    tagmap: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        dataset = db.session.get(Dataset, self.version.dataset_id)
        self.dataset_id = dataset.id
        self.dataset_name = dataset.name
        self.dataset_type = dataset.type.value
        self.version_name = self.version.name
        self.labels, self._target_of = merged_labels(self.version.labels, self.tagmap)

    def _query(self):
        return filtered(
            select(VersionImage).where(VersionImage.version_id == self.version.id), self.filter,
            split=VersionImage.split, state=VersionImage.state, image_id=VersionImage.image_id, has_label=_has_label,
        )

    def count(self) -> int:
        return _count_of(self._query().with_only_columns(VersionImage.id))

    def annotation_count(self) -> int:
        """How many annotations images() yields (within the label filter): the export job checks the file against it."""
        ids = self._query().with_only_columns(VersionImage.id)
        if not self.filter.label_ids:
            return db.session.scalar(
                select(func.coalesce(func.sum(func.json_array_length(VersionImage.annotations)), 0)).where(VersionImage.id.in_(ids))
            )
        wanted = set(self.filter.label_ids)
        lists = db.session.execute(select(VersionImage.annotations).where(VersionImage.id.in_(ids)).execution_options(yield_per=PAGE))
        return sum(1 for (annotations,) in lists for a in annotations if a["label_id"] in wanted)

    def images(self) -> Iterator[ExportImage]:
        after = -1
        while True:
            rows = db.session.scalars(self._query().where(VersionImage.image_id > after).order_by(VersionImage.image_id).limit(PAGE)).all()
            if not rows:
                return
            for row in rows:
                yield self._record(row)
            after = rows[-1].image_id
            # Only this page's rows: expunge_all() would also detach the running job's row, and
            # its progress and end would then never be written.
            for row in rows:
                db.session.expunge(row)

    def rows(self, fields=()) -> Iterator[tuple]:
        # A snapshot keeps an image's annotations in its row, so its records are what rows are made from.
        return rows_of(self.images())

    def _record(self, row: VersionImage) -> ExportImage:
        wanted = set(self.filter.label_ids)
        annotations = tuple(
            annotation_record(a, self._target_of) for a in row.annotations if not wanted or a["label_id"] in wanted
        )
        return ExportImage(
            id=row.image_id, file_name=row.file_name, folder_path=row.folder_path, storage_key=row.storage_key,
            width=row.width, height=row.height, byte_size=row.byte_size, format=row.format, split=row.split,
            state=row.state, external_id=row.external_id, tags=tuple(row.tags), annotations=annotations,
        )

    def open(self, storage_key: str) -> BinaryIO:
        return get_storage().open(storage_key)

    def signed_url(self, image: ExportImage, expires_in_s: int) -> str:
        from services.signed_urls import image_url

        return image_url(self.dataset_id, image.storage_key, image.file_name, expires_in_s)


def version_source(version: Version, filter: ExportFilter | None = None, tagmap: dict[str, str] | None = None) -> VersionSource:
    """The export source of a complete version (services/exports.py reads versions through this)."""
    if not version.complete:
        raise Conflict(f"{version.name} is still being released; export it once its job has finished")
    return VersionSource(version, filter or ExportFilter(), tagmap or {})


def release_version_files(dataset_id: int) -> None:
    """Drop the snapshots of a dataset being deleted, chunk by chunk, and release the files no
    image or other version still holds (the dataset's delete job, before the dataset row goes)."""
    in_dataset = VersionImage.version_id.in_(select(Version.id).where(Version.dataset_id == dataset_id))
    while keys := db.session.scalars(
        delete(VersionImage).where(VersionImage.id.in_(select(VersionImage.id).where(in_dataset).limit(CHUNK)))
        .returning(VersionImage.storage_key).execution_options(synchronize_session=False)
    ).all():
        db.session.commit()
        for key in set(keys):
            release_if_unused(key)
