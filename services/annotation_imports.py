"""Annotation imports: a format's file, or a ZIP of its folder layout, applied to a dataset's images.

The request (start_import) checks the kind, format and options, keeps the sent file in storage
under imports/<token>/ and starts the job (workers/annotation_imports.py). The job extracts the
file, parses it with its format (formats/<name>.parse), imports the images the upload carries,
and then, through the classes below, matches each image record to a dataset image (by path, then
by file name), turns its annotations into what a save takes (labels created from the file's list,
attribute definitions added for the attributes it carries, fractions made pixels, shapes clipped
to the image) and applies each image's set whole or not at all, saying for every image it could
not apply why.

An import replaces the annotations of each image it applies to, recorded as a revision of its
own (services/annotations.py), so what it replaced stays in the image's history and a re-run
after a crash gives the same result. Predictions never replace a person's work: an image a person
has labeled (services/lifecycle.py) is left alone by a predictions import.
"""

from __future__ import annotations

import math
import posixpath
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from core.errors import Conflict, Invalid, is_finite_number, parse_flag
from core.extensions import db
from core.files import clean_file_name
from core.storage import get_storage
from formats import IMPORTS
from formats.base import ImportAnnotation, ImportImage, ImportLabel
from models import SHAPES_BY_TYPE, Dataset, Folder, Image, Job, Label, User
from services import annotations as annotation_service
from services import labels as label_service
from services import lifecycle
from services.job_kinds import IMPORT_ANNOTATIONS
from services.jobs import refuse_while_deleting, start_job
from services.shapes import GEOMETRY_KEYS, POINT_SHAPES, from_fraction, from_percent

KINDS = ("annotations",)
COORDINATES = ("pixel", "percent")
MAX_NAME = 255


@dataclass(frozen=True)
class ImportOptions:
    format: str
    score_threshold: float = 0.0  # predictions scoring below this are left out (and counted)
    predictions: bool = False  # every annotation is a pre-label, scored or not
    # What a file that does not say holds (Loupe's annotation CSV, a ZIP's annotations.csv, COCO,
    # VOC): pixels, or the percent of the image that an export with coordinates=percent wrote.
    coordinates: str = "pixel"

    def as_dict(self) -> dict:
        return asdict(self)


def parse_options(values) -> ImportOptions:
    """The import's options from a form or multipart fields (strings), checked; Invalid names the field."""
    values = {key: str(value) for key, value in values.items() if isinstance(value, (str, int, float))}
    kind = (values.get("kind") or "annotations").strip()
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}, not {kind[:40]!r}", details={"field": "kind"})
    key = (values.get("format") or "").strip()
    fmt = IMPORTS.get(key)
    if fmt is None:
        known = ", ".join(IMPORTS)
        raise Invalid(f"format must be one of {known}, not {key[:40]!r}", details={"field": "format"})
    raw = (values.get("score_threshold") or "0").strip()
    try:
        threshold = float(raw)
    except ValueError:
        threshold = math.nan
    if not (is_finite_number(threshold) and 0 <= threshold <= 1):
        raise Invalid(f"score_threshold must be a number from 0 to 1, not {raw[:40]!r}", details={"field": "score_threshold"})
    coordinates = (values.get("coordinates") or "pixel").strip()
    if coordinates not in COORDINATES:
        raise Invalid(f"coordinates must be one of {', '.join(COORDINATES)}, not {coordinates[:40]!r}", details={"field": "coordinates"})
    predictions = parse_flag(values.get("predictions", ""), "predictions")
    return ImportOptions(format=fmt.KEY, score_threshold=threshold, predictions=predictions, coordinates=coordinates)


def upload_key(token: str, name: str) -> str:
    return f"imports/{token}/{name}"


def start_import(dataset: Dataset, user: User, values, file) -> Job:
    """Check the options, keep the sent file (a werkzeug FileStorage) and start the import job."""
    options = parse_options(values)
    if file is None or not file.filename:
        raise Invalid("Send the annotation file (or a ZIP of the format's folder layout) as the multipart field 'file'", details={"field": "file"})
    name = clean_file_name(posixpath.basename(file.filename.replace("\\", "/"))).strip()[:MAX_NAME] or "upload"
    refuse_while_deleting(dataset)
    key = upload_key(secrets.token_hex(8), name)
    size = _keep(file.stream, key, current_app.config["MAX_CONTENT_LENGTH"])
    if size == 0:
        get_storage().delete_prefix(posixpath.dirname(key) + "/")
        raise Invalid("The sent file is empty", details={"field": "file"})
    try:
        job = start_job(
            IMPORT_ANNOTATIONS, dataset.id, key, options.as_dict(), dataset=dataset, user=user,
            message=f"Waiting to import {name}",
        )
    except BaseException:
        get_storage().delete_prefix(posixpath.dirname(key) + "/")
        raise
    if job.args[1] != key:  # the dataset's import that is still running, not this one
        get_storage().delete_prefix(posixpath.dirname(key) + "/")
        raise Conflict(
            f"Another annotation import of this dataset is running (job {job.id}); send this file when it has finished",
            details={"job_id": job.id},
        )
    return job


def _keep(stream, key: str, max_bytes: int) -> int:
    """Copy the request's stream to storage under key; its size. Over max_bytes: Invalid."""
    with tempfile.NamedTemporaryFile(dir=current_app.config["LOUPE_INSTANCE_DIR"], delete=False) as out:
        size = 0
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                out.close()
                Path(out.name).unlink(missing_ok=True)
                raise Invalid(f"The file is larger than {max_bytes // (1 << 20)} MB", details={"field": "file"})
            out.write(chunk)
    try:
        if size:
            get_storage().put_file(key, Path(out.name))
    finally:
        Path(out.name).unlink(missing_ok=True)
    return size


# ---- what the job does with the parsed records ------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The dataset image a record applies to."""

    id: int
    width: int
    height: int


class Matcher:
    """Finds the dataset image of each record: by its path (folder and name), else, for a record
    whose upload does not carry the image, by its file name when one image of the dataset has it
    (a carried image found by name alone may be another picture: it is imported, and found by its
    bytes if the dataset has them). Reads only the images named in a chunk of records."""

    def __init__(self, dataset_id: int):
        self.dataset_id = dataset_id

    def match(self, records: list[ImportImage]) -> list[Target | str]:
        """Per record, its image, or why none (no image so named; several)."""
        names = {posixpath.basename(record.path) for record in records}
        rows = db.session.execute(
            select(Image.id, Image.file_name, Folder.path, Image.width, Image.height)
            .outerjoin(Folder, Image.folder_id == Folder.id)
            .where(Image.dataset_id == self.dataset_id, Image.file_name.in_(names))
            .order_by(Image.id)
        ).all()
        by_path, by_name = {}, {}
        for row in rows:
            target = Target(row.id, row.width, row.height)
            by_path.setdefault(posixpath.join(row.path, row.file_name) if row.path else row.file_name, target)
            by_name.setdefault(row.file_name, []).append(target)
        found = []
        for record in records:
            name = posixpath.basename(record.path)
            if record.path in by_path:
                found.append(by_path[record.path])
            elif record.file is not None:
                found.append(f"no image of the dataset is at {record.path}")
            elif len(by_name.get(name, ())) == 1:
                found.append(by_name[name][0])
            elif name in by_name:
                found.append(f"{len(by_name[name])} images of the dataset are named {name}; the file must give the image's folder too")
            else:
                found.append(f"no image of the dataset is named {record.path}")
        return found


@dataclass
class KnownLabel:
    """What an import needs of a label, kept as plain values: the session's Label objects expire
    at every image's commit, and reading one again would cost a query per annotation."""

    id: int
    name: str
    attributes: list  # its attribute definitions
    with_text: bool

    @classmethod
    def of(cls, label: Label) -> "KnownLabel":
        return cls(label.id, label.name, list(label.attributes or []), bool(label.with_text))


class Labels:
    """The dataset's labels by name (without case, as label names are unique), created from the
    file's list and as the records need them, with attribute definitions added for the attributes
    the records carry."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.allowed = SHAPES_BY_TYPE[dataset.type]
        self.by_name = {label.name.casefold(): KnownLabel.of(label) for label in label_service.list_labels(dataset)}
        self.created: list[str] = []
        self.problems: list[tuple[str, str]] = []

    def declare(self, labels: list[ImportLabel]) -> None:
        """Create the file's labels that the dataset lacks, in the file's order."""
        for label in labels:
            self.get(label.name, None, label)

    def get(self, name: str, shape: str | None, declared: ImportLabel | None = None) -> KnownLabel | str:
        """The label so named (created if missing), or why it cannot be."""
        name = (name or "").strip()
        if not name:
            return "an annotation has no label name"
        known = self.by_name.get(name.casefold())
        if known is not None:
            return known
        fields = {"name": name}
        if shape in self.allowed:
            fields["default_shape"] = shape
        if declared is not None and declared.color:
            fields["color"] = declared.color
        if declared is not None and declared.attributes:
            fields["attributes"] = list(declared.attributes)
        try:
            label = self._create(fields)
        except Invalid as exc:
            if "attributes" not in fields and "color" not in fields:
                return f"label {name[:100]!r} cannot be created: {exc.message}"
            self.problems.append((f"label {name[:100]}", f"created without the file's attributes and color: {exc.message}"))
            fields.pop("attributes", None)
            fields.pop("color", None)
            try:
                label = self._create(fields)
            except Invalid as again:
                return f"label {name[:100]!r} cannot be created: {again.message}"
        known = self.by_name[label.name.casefold()] = KnownLabel.of(label)
        return known

    def _create(self, fields: dict) -> Label:
        try:
            label = label_service.create_label(self.dataset, **fields)
        except Conflict:
            # Somebody made a label of this name meanwhile: use theirs.
            label = db.session.scalar(
                select(Label).where(Label.dataset_id == self.dataset.id, Label.name.ilike(fields["name"]))
            )
            if label is None:
                raise
            return label
        self.created.append(label.name)
        return label

    def fit(self, known: KnownLabel, attributes: dict, text: bool) -> str | None:
        """Make the label take what an annotation carries: definitions for the attributes it lacks,
        typed by these values, and text; a problem, or None."""
        names = {d.get("name") for d in known.attributes}
        new = [_definition(name, value) for name, value in attributes.items() if name not in names]
        changes = {}
        if new:
            changes["attributes"] = known.attributes + new
        if text and not known.with_text:
            changes["with_text"] = True
        if not changes:
            return None
        label = db.session.get(Label, known.id)
        if label is None:
            return f"label {known.name!r} was deleted during the import"
        try:
            label_service.update_label(self.dataset, label, **changes)
        except (Invalid, Conflict) as exc:
            db.session.rollback()
            return f"label {known.name!r} cannot take the file's attributes or text ({exc.message})"
        known.attributes, known.with_text = list(label.attributes or []), bool(label.with_text)
        return None


def _definition(name: str, value) -> dict:
    if isinstance(value, bool):
        return {"name": name, "type": "checkbox"}
    if is_finite_number(value):
        return {"name": name, "type": "number"}
    return {"name": name, "type": "text"}


def to_pixels(shape: str, geometry: dict, units: str, width: int, height: int) -> dict:
    """Geometry in the image's pixels from the record's units: pixels, fractions or percent of the
    width and height (a circle's radius of the width)."""
    if units == "pixel" or shape == "tag":
        return geometry
    convert = from_fraction if units == "fraction" else from_percent
    return convert(shape, geometry, width, height)


def clipped(shape: str, geometry: dict, width: int, height: int) -> dict | None:
    """The shape inside the image (files from other tools hold boxes that poke out of it); None
    when nothing of it is inside."""
    def cx(v):
        return min(max(v, 0), width)

    def cy(v):
        return min(max(v, 0), height)

    if shape == "tag":
        return geometry
    if shape in POINT_SHAPES:
        points = geometry["points"]
        if shape == "points":
            inside = [[x, y] for x, y in points if 0 <= x <= width and 0 <= y <= height]
            return {"points": inside} if inside else None
        return {"points": [[cx(x), cy(y)] for x, y in points]}
    if shape == "circle":
        if not (0 <= geometry["cx"] <= width and 0 <= geometry["cy"] <= height):
            return None
        return {**geometry, "r": min(geometry["r"], max(width, height))}
    x0, y0 = cx(geometry["x"]), cy(geometry["y"])
    x1, y1 = cx(geometry["x"] + geometry["width"]), cy(geometry["y"] + geometry["height"])
    if x1 <= x0 or y1 <= y0:
        return None
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def _geometry_readable(shape: str, geometry) -> bool:
    """Whether the geometry has the shape's keys with finite numbers (what to_pixels and clipped read)."""
    if not isinstance(geometry, dict):
        return False
    if shape in POINT_SHAPES:
        points = geometry.get("points")
        return isinstance(points, list) and bool(points) and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(is_finite_number(v) for v in p) for p in points
        )
    return all(is_finite_number(geometry.get(key)) for key in GEOMETRY_KEYS.get(shape, ()))


@dataclass
class Applied:
    """What applying one image's record did: the outcome, or why nothing was applied."""

    annotations: int = 0
    predictions: int = 0
    below_threshold: int = 0
    clipped_away: int = 0
    problem: str | None = None
    left_alone: bool = False  # a predictions import and a person's work on the image


def apply_record(record: ImportImage, target: Target, labels: Labels, user: User, options: ImportOptions) -> Applied:
    """Turn one record into the image's annotations and save them, whole or not at all."""
    outcome = Applied()
    if record.problems:
        outcome.problem = "; ".join(record.problems)[:1000]
        return outcome
    image = db.session.get(Image, target.id)
    records, problems = [], []
    for index, annotation in enumerate(record.annotations):
        made = _annotation_record(annotation, record, target, labels, options, outcome)
        if isinstance(made, str):
            problems.append(f"annotation {index + 1}: {made}")
        elif made is not None:
            records.append(made)
    if problems:
        outcome.problem = "; ".join(problems[:5])[:1000] + ("; …" if len(problems) > 5 else "")
        return outcome
    if not records:  # everything under the threshold or outside the image: an empty set is not put on it
        return outcome
    predicted = all(r["source"] == "prediction" for r in records)
    if predicted:
        try:
            lifecycle.after(lifecycle.PREDICTIONS, image.state)
        except Conflict as exc:  # a person's work: the report says so, apart from the failures
            outcome.left_alone, outcome.problem = True, exc.message
            return outcome
    try:
        annotation_service.import_annotations(image, user, records, predicted)
    except (Invalid, Conflict) as exc:  # a save's own checks, and a label deleted meanwhile
        outcome.problem = exc.message[:1000]
        return outcome
    outcome.annotations = len(records)
    outcome.predictions = sum(1 for r in records if r["source"] == "prediction")
    return outcome


def _annotation_record(annotation: ImportAnnotation, record: ImportImage, target: Target, labels: Labels,
                       options: ImportOptions, outcome: Applied) -> dict | str | None:
    """A save's record of one imported annotation; a problem; or None when it is left out on
    purpose (below the score threshold, nothing of it inside the image), counted in outcome."""
    if annotation.shape not in labels.allowed:
        return f"a {labels.dataset.type.value} dataset takes {', '.join(labels.allowed)}, not {annotation.shape}"
    if not _geometry_readable(annotation.shape, annotation.geometry):
        return f"the {annotation.shape}'s geometry is not a set of finite numbers"
    score = annotation.score
    if score is not None and not (is_finite_number(score) and 0 <= score <= 1):
        return f"score {score!r} is not a number from 0 to 1"[:200]
    prediction = options.predictions or score is not None
    if prediction and (score or 0) < options.score_threshold:
        outcome.below_threshold += 1
        return None
    units = "percent" if record.units == "pixel" and options.coordinates == "percent" else record.units
    geometry = to_pixels(annotation.shape, annotation.geometry, units, target.width, target.height)
    geometry = clipped(annotation.shape, geometry, target.width, target.height)
    if geometry is None:
        outcome.clipped_away += 1
        return None
    label = labels.get(annotation.label, annotation.shape)
    if isinstance(label, str):
        return label
    attributes = {k: v for k, v in (annotation.attributes or {}).items() if v is not None}
    problem = labels.fit(label, attributes, bool(annotation.text))
    if problem:
        return problem
    return {
        "label_id": label.id, "shape": annotation.shape, "geometry": geometry, "attributes": attributes,
        "text": annotation.text, "source": "prediction" if prediction else "human", "score": score,
    }


def work_dir(job_id: str) -> Path:
    return Path(current_app.config["LOUPE_INSTANCE_DIR"]) / "imports-tmp" / job_id


def remove_work_dir(job_id: str) -> None:
    shutil.rmtree(work_dir(job_id), ignore_errors=True)
