"""Exports: the options of SPEC section 9's table parsed and checked, the Export row and its job,
listing, and what a download may be given.

The job itself (writing, counting back, checking against the database) is workers/exports.py.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import asdict, dataclass, fields
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select

from core.errors import INT32_MAX, INT64_MAX, Conflict, Gone, Invalid, LoupeError, parse_flag, parse_int
from core.extensions import db
from formats import EXPORTS
from formats.base import ExportOptions
from models import Dataset, Export, Image, ImageState, JobStatus, Label, Split, User, Version
from models.base import utcnow
from services.export_source import ExportFilter, LiveSource
from services.job_kinds import CLEANUP_EXPORTS, EXPORT
from services.jobs import active_jobs, reconcile, start_job

# More ids than this is a selection no page makes: a filter (split, state, label, a version) says it better.
MAX_IMAGE_IDS = 10_000
MAX_TAGMAP = 1_000
PAGE = 100
COORDINATES = ("pixel", "percent")
YOLO_SHAPES = ("boxes", "polygons")
# A signed link works from a minute to 30 days.
URL_EXPIRY_S = (60, 30 * 24 * 3600)
# Options every format takes: which images and labels (the source), not how the file is written.
SOURCE_OPTIONS = ("format", "version", "split", "state", "label_ids", "image_ids", "tagmap")
FORMAT_OPTIONS = tuple(f.name for f in fields(ExportOptions) if f.name != "format")


class ExportMismatch(LoupeError):
    """The written file does not hold what the database does: the job fails with the differences."""

    status, code = 500, "export_mismatch"


@dataclass(frozen=True)
class ExportRequest:
    """Everything an export is made from, checked; stored as Export.options and read back by the job."""

    options: ExportOptions
    filter: ExportFilter
    tagmap: dict
    version_id: int | None

    def as_dict(self) -> dict:
        stored = asdict(self.options)
        stored.update(
            version=self.version_id, split=list(self.filter.splits), state=list(self.filter.states),
            label_ids=list(self.filter.label_ids), image_ids=list(self.filter.image_ids), tagmap=dict(self.tagmap),
        )
        return stored

    @classmethod
    def from_stored(cls, stored: dict) -> "ExportRequest":
        return cls(
            options=ExportOptions(**{name: stored[name] for name in ("format", *FORMAT_OPTIONS) if name in stored}),
            filter=ExportFilter(
                splits=tuple(stored.get("split") or ()), states=tuple(stored.get("state") or ()),
                label_ids=tuple(stored.get("label_ids") or ()), image_ids=tuple(stored.get("image_ids") or ()),
            ),
            tagmap=dict(stored.get("tagmap") or {}), version_id=stored.get("version"),
        )


# ---- parsing the options ----------------------------------------------------------------------


def _refuse(field: str, message: str) -> Invalid:
    return Invalid(message, details={"field": field})


def _given(raw: dict, name: str) -> bool:
    value = raw.get(name)
    return value is not None and value != "" and value != []


def _items(raw, field: str) -> list[str]:
    """A list option as the API sends it: a JSON list, a comma list, or a form's repeated field."""
    if isinstance(raw, (list, tuple)):
        values = raw
    elif isinstance(raw, str):
        values = raw.split(",")
    else:
        raise _refuse(field, f"{field} must be a list or a comma-separated string")
    out = []
    for value in values:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
        out.append(value)
    return out


def _choices(raw, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _items(raw, field)
    for value in values:
        if value not in allowed:
            raise _refuse(field, f"Unknown {field} {value!r}; use one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(values))


def _int(raw, field: str, lo: int, hi: int) -> int:
    if isinstance(raw, bool):
        raise _refuse(field, f"{field} must be a whole number from {lo} to {hi}")
    try:
        value = raw if isinstance(raw, int) else parse_int(str(raw))
    except ValueError:
        raise _refuse(field, f"{field} must be a whole number from {lo} to {hi}, not {str(raw)[:24]!r}") from None
    if not lo <= value <= hi:
        raise _refuse(field, f"{field} must be from {lo} to {hi}, not {value}")
    return value


def _ids(raw, field: str, limit: int) -> tuple[int, ...]:
    return tuple(dict.fromkeys(_int(value, field, 1, limit) for value in _items(raw, field)))


def parse_tagmap(raw) -> dict[str, str]:
    """`from:to,from:to` (or a JSON object) -> {from: to}; a malformed entry is refused, saying which."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, str):
        pairs = []
        for position, entry in enumerate(raw.split(","), 1):
            source, colon, target = entry.partition(":")
            if not colon or ":" in target or not source.strip() or not target.strip():
                raise _refuse("tagmap", f"tagmap entry {position} ({entry.strip()[:60]!r}) is not from:to; write the tag map as from:to,from:to")
            pairs.append((source, target))
    else:
        raise _refuse("tagmap", "tagmap must be a string from:to,from:to")
    if len(pairs) > MAX_TAGMAP:
        raise _refuse("tagmap", f"tagmap has {len(pairs):,} entries; the limit is {MAX_TAGMAP:,}")
    tagmap: dict[str, str] = {}
    for source, target in pairs:
        if not isinstance(source, str) or not isinstance(target, str) or not source.strip() or not target.strip():
            raise _refuse("tagmap", "tagmap names must be non-empty text")
        source, target = source.strip(), target.strip()
        if source.lower() in {s.lower() for s in tagmap}:
            raise _refuse("tagmap", f"tagmap maps {source!r} twice")
        tagmap[source] = target
    return tagmap


def _labels_of(dataset: Dataset, ids: tuple[int, ...], field: str) -> None:
    found = set(db.session.scalars(select(Label.id).where(Label.dataset_id == dataset.id, Label.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise _refuse(field, f"{field}: {', '.join(map(str, missing[:10]))} {'is not a label' if len(missing) == 1 else 'are not labels'} of this dataset")


def _version_of(dataset: Dataset, raw) -> int:
    version_id = _int(raw, "version", 1, INT32_MAX)
    version = db.session.get(Version, version_id)
    if version is None or version.dataset_id != dataset.id or not version.complete:
        raise _refuse("version", f"Version {version_id} is not a released version of this dataset")
    return version_id


def _images_of(dataset: Dataset, ids: tuple[int, ...]) -> None:
    found = set()
    for start in range(0, len(ids), 1000):  # SQLite limits the parameters of one statement
        chunk = ids[start:start + 1000]
        found.update(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.id.in_(chunk))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise _refuse("image_ids", f"image_ids: {', '.join(map(str, missing[:10]))}{' …' if len(missing) > 10 else ''} not in this dataset")


def parse_request(dataset: Dataset, raw: dict) -> ExportRequest:
    """Check every option of an export (SPEC section 9's table) against the dataset; Invalid names the one at fault."""
    unknown = sorted(set(raw) - set(SOURCE_OPTIONS) - set(FORMAT_OPTIONS))
    if unknown:
        raise _refuse(unknown[0], f"Unknown option {unknown[0]!r}; exports take {', '.join(SOURCE_OPTIONS + FORMAT_OPTIONS)}")
    key = raw.get("format")
    fmt = EXPORTS.get(key) if isinstance(key, str) else None
    if fmt is None:
        known = ", ".join(EXPORTS)
        raise _refuse("format", f"Unknown format {key!r}; use one of {known}" if key else f"Choose a format: one of {known}")
    if dataset.type.value not in fmt.DATASET_TYPES:
        raise _refuse("format", f"The {fmt.TITLE} format cannot export a {dataset.type.value} dataset")
    not_read = [name for name in FORMAT_OPTIONS if _given(raw, name) and name not in fmt.OPTIONS]
    if not_read:
        takes = ", ".join(fmt.OPTIONS) or "none"
        raise _refuse(not_read[0], f"The {fmt.TITLE} format does not take {not_read[0]!r} (its options: {takes})")

    values: dict = {"format": key}
    if _given(raw, "coordinates"):
        values["coordinates"] = _choices(raw["coordinates"], "coordinates", COORDINATES)[0]
    if _given(raw, "yolo_shapes"):
        values["yolo_shapes"] = _choices(raw["yolo_shapes"], "yolo_shapes", YOLO_SHAPES)[0]
    for name in ("full_path", "include_images", "masks"):
        if name in raw and raw[name] is not None:
            values[name] = parse_flag(raw[name], name)
    for name in ("test", "validation"):
        if _given(raw, name):
            values[name] = _int(raw[name], name, 0, 100)
    if values.get("test", 0) + values.get("validation", 0) > 100:
        raise _refuse("test", f"test ({values.get('test', 0)}) and validation ({values.get('validation', 0)}) together are over 100 percent")
    if _given(raw, "url_expiry_s"):
        values["url_expiry_s"] = _int(raw["url_expiry_s"], "url_expiry_s", *URL_EXPIRY_S)
    if _given(raw, "crop_label_id"):
        values["crop_label_id"] = _int(raw["crop_label_id"], "crop_label_id", 1, INT32_MAX)
        _labels_of(dataset, (values["crop_label_id"],), "crop_label_id")
    missing = [name for name in getattr(fmt, "REQUIRED", ()) if name not in values]
    if missing:
        raise _refuse(missing[0], f"The {fmt.TITLE} format needs {missing[0]!r}")

    version_id = _version_of(dataset, raw["version"]) if _given(raw, "version") else None
    label_ids = _ids(raw.get("label_ids") or [], "label_ids", INT32_MAX)
    if label_ids:
        _labels_of(dataset, label_ids, "label_ids")
    image_items = _items(raw.get("image_ids") or [], "image_ids")
    if len(image_items) > MAX_IMAGE_IDS:
        raise _refuse("image_ids", f"image_ids has {len(image_items):,} ids; at most {MAX_IMAGE_IDS:,}: "
                      "for more, export by a filter (split, state, label) or from a version")
    image_ids = _ids(image_items, "image_ids", INT64_MAX)
    if image_ids and version_id is None:
        _images_of(dataset, image_ids)
    return ExportRequest(
        options=ExportOptions(**values),
        filter=ExportFilter(
            splits=_choices(raw.get("split") or [], "split", tuple(s.value for s in Split)),
            states=_choices(raw.get("state") or [], "state", tuple(s.value for s in ImageState)),
            label_ids=label_ids, image_ids=image_ids,
        ),
        tagmap=parse_tagmap(raw.get("tagmap")), version_id=version_id,
    )


# ---- exports and their jobs ---------------------------------------------------------------------


def ttl() -> timedelta:
    return timedelta(days=current_app.config["LOUPE_EXPORT_TTL_DAYS"])


def create_export(dataset: Dataset, user: User, raw: dict) -> Export:
    """Check the options, save the Export and start its job (exports queue); returns the Export."""
    request = parse_request(dataset, raw)
    export = Export(
        dataset_id=dataset.id, version_id=request.version_id, format=request.options.format, options=request.as_dict(),
        created_by_id=user.id, expires_at=utcnow() + ttl(),
    )
    db.session.add(export)
    db.session.flush()
    # start_job commits the export with the job row, and only then enqueues.
    job = start_job(EXPORT, export.id, dataset=dataset, user=user, message="Waiting for an export worker")
    export.job_id = job.id
    job.result = {"export_id": export.id}  # so a caller holding only the job finds its export
    db.session.commit()
    request_cleanup(user)
    return export


def request_cleanup(user: User | None) -> None:
    """Start the cleanup job when an export has expired (one runs at a time)."""
    if db.session.scalar(select(Export.id).where(Export.expires_at < utcnow()).limit(1)) is not None:
        start_job(CLEANUP_EXPORTS, dataset=None, user=user, message="Waiting to remove expired exports")


def source_for(export: Export, request: ExportRequest):
    """The records an export reads: the live dataset, or the version it names."""
    if request.version_id is None:
        return LiveSource(db.session.get(Dataset, export.dataset_id), request.filter, request.tagmap)
    from services.versions import version_source  # written with the versions; imported when an export needs it

    return version_source(db.session.get(Version, request.version_id), request.filter, request.tagmap)


def status_of(export: Export) -> str:
    """ready, expired, or the job's status (queued, running, failed, cancelled)."""
    if export.expires_at is not None and export.expires_at <= utcnow():
        return "expired"
    if export.storage_key:
        return "ready"
    if export.job is None:
        return "failed"
    status = reconcile(export.job).status
    # The job finishes in the same commit that makes the file ready, so a finished job without a
    # file only happens when its file was removed.
    return "failed" if status == JobStatus.finished else status.value


def list_exports(dataset: Dataset, limit: int = PAGE, offset: int = 0) -> tuple[list[Export], int]:
    """The dataset's exports, newest first, one page; and how many there are."""
    if not 1 <= limit <= PAGE:
        raise _refuse("limit", f"limit must be from 1 to {PAGE}")
    if offset < 0:
        raise _refuse("offset", "offset must be 0 or more")
    query = select(Export).where(Export.dataset_id == dataset.id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    exports = db.session.scalars(query.order_by(Export.created_at.desc(), Export.id.desc()).limit(limit).offset(offset)).all()
    return list(exports), total


def exporting(dataset: Dataset) -> bool:
    """Whether an export of the dataset is queued or running (the page polls while one is)."""
    return bool(active_jobs(dataset, EXPORT.key))


def downloadable(export: Export) -> tuple[str, str, str]:
    """(storage key, file name, media type) of a ready export; 409 while it is not, 410 once expired."""
    status = status_of(export)
    if status == "expired":
        raise Gone(f"Export {export.id} expired on {export.expires_at:%Y-%m-%d %H:%M} UTC; make a new one")
    if status != "ready":
        detail = f": {export.job.message}" if status == "failed" and export.job is not None else ""
        raise Conflict(f"Export {export.id} is not ready to download ({status}{detail})", details={"status": status})
    media_type = mimetypes.guess_type(export.file_name)[0] or "application/octet-stream"
    return export.storage_key, export.file_name, media_type


def storage_name(file_name: str) -> str:
    """A file name safe as the last part of a storage key (the download keeps the real name)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", file_name).strip("._") or "export"


def report_key(export_id: int) -> str:
    return f"exports/{export_id}/report.json"


def file_key(export_id: int, file_name: str) -> str:
    return f"exports/{export_id}/{storage_name(file_name)}"


def formats_for(dataset: Dataset) -> list:
    """The format modules that export this dataset's type, in the registry's order."""
    return [fmt for fmt in EXPORTS.values() if dataset.type.value in fmt.DATASET_TYPES]


def released_versions(dataset: Dataset) -> list[Version]:
    """The dataset's complete versions, newest first (an export can be made from any of them)."""
    return list(db.session.scalars(
        select(Version).where(Version.dataset_id == dataset.id, Version.complete).order_by(Version.number.desc())
    ))
