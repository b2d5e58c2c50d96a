"""The annotation import job: unpack the sent file, parse it with its format, import the images it
carries, and apply each image's annotations (services/annotation_imports.py), reporting per image.

Re-runnable after a crash: the work folder is made afresh, images the first run imported are
found again by path (or by content, as duplicates), and applying a record replaces the image's
annotations, so a second run gives the same result.
"""

import posixpath
import shutil
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from core.errors import LoupeError
from core.extensions import db
from core.storage import get_storage
from formats import IMPORTS
from formats.base import NotThisFormat, added_by_archiver
from models import Dataset, Image, ImportItem, ImportItemStatus, User
from services import annotation_imports as service
from services import images as image_service
from workers.imports import import_pending
from workers.runtime import app_context, job_run

CHUNK = 200
MAX_ENTRIES = 200_000


class ImportRefused(LoupeError):
    """The file cannot be imported at all (not the format, a broken or oversized archive)."""

    status, code = 422, "import_refused"


def import_annotations(job_id: str, dataset_id: int, key: str, options: dict) -> dict:
    with app_context(), job_run(job_id) as run:
        options = service.ImportOptions(**options)
        dataset = db.session.get(Dataset, dataset_id)
        user = db.session.get(User, run.job.user_id) if run.job.user_id else None
        if user is None:
            raise ImportRefused("The user who started this import no longer exists")
        fmt = IMPORTS[options.format]
        root = service.work_dir(job_id)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            run.progress(0, 0, "Reading the file", force=True)
            _unpack(key, root)
            try:
                parsed = fmt.parse(root)
                records = list(parsed.images)
            except NotThisFormat as exc:
                raise ImportRefused(f"The file is not {fmt.IMPORT_TITLE}: {exc}") from None
            except RecursionError:
                raise ImportRefused(f"The file is not {fmt.IMPORT_TITLE}: it is nested too deeply to read") from None
            total = len(records)
            run.progress(0, total, f"Applying the annotations of {total:,} images", force=True)
            report = _Report(total)
            report.errors += [{"item": where, "reason": why} for where, why in parsed.problems]
            labels = service.Labels(dataset)
            labels.declare(parsed.labels)
            matcher = service.Matcher(dataset.id)
            for start in range(0, total, CHUNK):
                chunk = records[start : start + CHUNK]
                targets = _import_carried(dataset, user, chunk, matcher.match(chunk), report)
                targets = report.once_each(chunk, targets)
                _set_splits(dataset, chunk, targets)
                for record, target in zip(chunk, targets):
                    if target is not None:
                        report.add(record, target, labels, user, options)
                run.progress(min(start + CHUNK, total), total, f"Applied {min(start + CHUNK, total):,} of {total:,} images")
            report.errors += [{"item": where, "reason": why} for where, why in labels.problems]
        finally:
            shutil.rmtree(root, ignore_errors=True)
        # Only once applied: a retry after a failure reads the file again.
        get_storage().delete_prefix(posixpath.dirname(key) + "/")
        run.job.result = {**report.counts, "labels_created": labels.created}
        run.job.errors = report.errors[: run.job.MAX_ERRORS]
        run.job.error_count = len(report.errors)
        run.job.message = report.summary()
        return run.job.result


class _Report:
    def __init__(self, total: int):
        self.counts = Counter(
            images_in_file=total, images_applied=0, images_added=0, images_without_annotations=0, unmatched=0,
            same_image=0, failed=0, annotations=0, predictions=0, below_threshold=0, outside_image=0, left_alone=0,
        )
        self.errors: list[dict] = []
        self.applied_to: dict[int, str] = {}  # image id -> the path of the record applied to it

    def once_each(self, records, targets) -> list:
        """The targets with None for a record whose image an earlier record of the file already
        has: identical bytes under two names are one image in a dataset, and the second record
        would replace the first's annotations and split."""
        kept = []
        for record, target in zip(records, targets):
            first = None if isinstance(target, str) else self.applied_to.setdefault(target.id, record.path)
            if first is not None and first != record.path:
                self.counts["same_image"] += 1
                self.errors.append({"item": record.path, "reason": f"the same image as {first} (identical bytes, kept once "
                                    "in a dataset): its annotations and split are not applied"})
                kept.append(None)
            else:
                kept.append(target)
        return kept

    def add(self, record, target, labels, user, options) -> None:
        if isinstance(target, str):
            self.counts["unmatched"] += 1
            self.errors.append({"item": record.path, "reason": target})
            return
        if not record.annotations and not record.problems:
            self.counts["images_without_annotations"] += 1
            return
        outcome = service.apply_record(record, target, labels, user, options)
        self.counts["below_threshold"] += outcome.below_threshold
        self.counts["outside_image"] += outcome.clipped_away
        if outcome.problem:
            self.counts["left_alone" if outcome.left_alone else "failed"] += 1
            self.errors.append({"item": record.path, "reason": outcome.problem})
            return
        self.counts["images_applied"] += 1
        self.counts["annotations"] += outcome.annotations
        self.counts["predictions"] += outcome.predictions

    def summary(self) -> str:
        c = self.counts
        parts = [f"{c['annotations']:,} annotations on {c['images_applied']:,} images"]
        if c["images_added"]:
            parts.append(f"{c['images_added']:,} images added")
        for key, words in (("unmatched", "images not in the dataset"), ("failed", "images not applied"),
                           ("same_image", "images identical to another of the file"),
                           ("left_alone", "images left to the person labeling them"),
                           ("below_threshold", "predictions under the score threshold"),
                           ("outside_image", "shapes outside their image")):
            if c[key]:
                parts.append(f"{c[key]:,} {words}")
        return "Imported " + ", ".join(parts)


def _unpack(key: str, root: Path) -> None:
    """The sent file into root: a ZIP's entries (checked: no paths outside root, bounded count and
    size), or the file itself under its name."""
    name = posixpath.basename(key)
    local = root.parent / f"{root.name}.upload"
    try:
        with get_storage().open(key) as stored, open(local, "wb") as out:
            shutil.copyfileobj(stored, out, 1 << 20)
    except FileNotFoundError:
        raise ImportRefused("The sent file is no longer stored (the import already finished); send it again") from None
    try:
        if not zipfile.is_zipfile(local):
            shutil.move(local, root / name)
            return
        limit = current_app.config["LOUPE_MAX_EXTRACT_MB"] << 20
        try:
            with zipfile.ZipFile(local) as archive:
                entries = [info for info in archive.infolist() if not info.is_dir() and not added_by_archiver(info.filename.split("/"))]
                if len(entries) > MAX_ENTRIES:
                    raise ImportRefused(f"The ZIP holds {len(entries):,} files; at most {MAX_ENTRIES:,} are imported at once")
                written = 0
                for info in entries:
                    target = _inside(root, info.filename)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as entry, open(target, "wb") as out:
                        # The sizes an archive declares can lie; the bytes written are what count.
                        while chunk := entry.read(1 << 20):
                            written += len(chunk)
                            if written > limit:
                                raise ImportRefused(f"The ZIP unpacks to more than {limit >> 20:,} MB")
                            out.write(chunk)
        except (zipfile.BadZipFile, NotImplementedError, EOFError, zlib.error) as exc:
            raise ImportRefused(f"The ZIP cannot be read: {exc}") from None
    finally:
        local.unlink(missing_ok=True)


def _inside(root: Path, name: str) -> Path:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or ":" in parts[0]:
        raise ImportRefused(f"The ZIP holds a file outside its folder: {name[:200]!r}")
    return root.joinpath(*parts)


def _import_carried(dataset, user, records, targets, report: _Report) -> list:
    """Import the images the upload carries that the dataset lacks (not found by path), through
    the image import's ledger and importer: decoded, thumbnailed, de-duplicated by content. The
    targets with those images in."""
    carried = [i for i, (r, t) in enumerate(zip(records, targets)) if isinstance(t, str) and r.file is not None]
    if not carried:
        return targets
    upload = image_service.begin_upload(dataset, user)
    for i in carried:
        with open(records[i].file, "rb") as stream:
            image_service.add_file(upload, records[i].path, stream)
    import_pending(upload.id, lambda n: None)
    items = db.session.execute(
        select(ImportItem.status, ImportItem.reason, Image.id, Image.width, Image.height)
        .outerjoin(Image, Image.id == ImportItem.image_id)
        .where(ImportItem.upload_id == upload.id).order_by(ImportItem.id)
    ).all()
    targets = list(targets)
    for i, item in zip(carried, items):
        if item.id is not None:  # imported, or the same bytes as an image the dataset has
            targets[i] = service.Target(item.id, item.width, item.height)
            report.counts["images_added"] += item.status == ImportItemStatus.imported
        else:
            targets[i] = f"the image file cannot be imported: {item.reason}"
    return targets


def _set_splits(dataset, records, targets) -> None:
    """Put each matched image in the split its record names (a layout's subset, a split list)."""
    by_split: dict[str, list[int]] = {}
    for record, target in zip(records, targets):
        if record.split and isinstance(target, service.Target):
            by_split.setdefault(record.split, []).append(target.id)
    for split, ids in by_split.items():
        image_service.set_split(dataset, ids, split)
