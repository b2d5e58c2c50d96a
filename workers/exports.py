"""The export job and the cleanup of expired exports.

An export is written to a temp file under the instance folder, counted back from that file by its
format, checked against what it was written from and against the database, and only then moved
into storage and offered: a partial or wrong file is never downloadable. A re-run (after a crash)
opens the temp file afresh and starts over; the file is a function of the export's options.
"""

import gc
import json
import logging
from contextlib import contextmanager
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, select

from core.extensions import db
from core.storage import get_storage
from formats import EXPORTS
from models import Export, Job
from models.base import utcnow
from services import exports as service
from services.jobs import reconcile
from workers.runtime import app_context, job_run

log = logging.getLogger("loupe.exports")
CLEANUP_BATCH = 100


def temp_dir() -> Path:
    return Path(current_app.config["LOUPE_INSTANCE_DIR"]) / "exports-tmp"


def temp_path(export_id: int) -> Path:
    return temp_dir() / f"{export_id}.part"


def run_export(job_id: str, export_id: int) -> None:
    with app_context(), job_run(job_id) as run:
        export = db.session.get(Export, export_id)
        if export is None:
            raise service.ExportMismatch(f"Export {export_id} was deleted before it was written")
        request = service.ExportRequest.from_stored(export.options)
        fmt = EXPORTS.get(export.format)
        if fmt is None:
            raise service.ExportMismatch(f"The {export.format!r} format is no longer available; make a new export")
        source = service.source_for(export, request)
        total = source.count()
        run.progress(0, total, f"Writing {fmt.TITLE}: {total:,} images", force=True)

        part = temp_path(export.id)
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            # "wb": a re-run after a crash starts from an empty file
            with open(part, "wb") as out, _collector_sets_the_app_aside():
                written = fmt.export(source, request.options, out, run.progress)
            run.progress(total, message="Counting the written file", force=True)
            with _collector_sets_the_app_aside():
                in_file = fmt.count(part, request.options)
            problems = written.differences(in_file) + _database_differences(source, written)
            if problems:
                raise service.ExportMismatch(
                    f"The {fmt.TITLE} file does not hold what the database does, so it is not offered: " + "; ".join(problems)
                )
            file_name = fmt.file_name(source, request.options)
            report = {
                "format": export.format, "file_name": file_name, "options": export.options,
                "version": source.version_name, "checked": True, **in_file.as_dict(),
                "written": {"images": written.images, "annotations": written.annotations, "skipped": dict(written.skipped)},
                "database": {"images": total, "annotations": written.annotations + sum(written.skipped.values())},
            }
            storage = get_storage()
            storage.put_bytes(service.report_key(export.id), json.dumps(report, indent=2).encode())
            size = storage.put_file(service.file_key(export.id, file_name), part)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        # Committed with the job's end, in one transaction: the file is offered once it is all there.
        export.file_name, export.report, export.byte_size = file_name, report, size
        export.storage_key = service.file_key(export.id, file_name)
        export.expires_at = utcnow() + service.ttl()
        run.job.result = {"export_id": export.id, "file_name": file_name, "byte_size": size,
                          "images": in_file.images, "annotations": in_file.annotations}
        run.job.message = f"Exported {in_file.images:,} images and {in_file.annotations:,} annotations"


@contextmanager
def _collector_sets_the_app_aside():
    """Full passes of the garbage collector walk only the objects made since this began.

    Writing or counting a file makes and drops records by the million, and every so often a full
    pass runs; it would also walk the app's own objects (150,000 and more, alive as long as the
    process), which cost a fifth of a COCO export's time. They are set aside (gc.freeze) for
    the while and handed back after; nothing of the export is kept from the collector.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _database_differences(source, written) -> list[str]:
    """What the file's records disagree with the database on, counted now (after writing)."""
    problems = []
    images = source.count()
    if written.images != images:
        problems.append(f"images: {written.images} written, {images} in the database")
    annotations = source.annotation_count()
    accounted = written.annotations + sum(written.skipped.values())
    if accounted != annotations:
        problems.append(f"annotations: {written.annotations} written and {accounted - written.annotations} skipped, {annotations} in the database")
    return problems


def cleanup_expired(job_id: str) -> None:
    """Remove expired exports (file, report and row), and temp files no running export will finish."""
    with app_context(), job_run(job_id) as run:
        removed = 0
        while True:
            ids = db.session.scalars(
                select(Export.id).where(Export.expires_at <= utcnow()).order_by(Export.id).limit(CLEANUP_BATCH)
            ).all()
            if not ids:
                break
            for export_id in ids:
                remove_export_files(export_id)
            db.session.execute(delete(Export).where(Export.id.in_(ids)))
            db.session.commit()  # each batch for good: its files are already gone
            removed += len(ids)
            run.progress(removed, message=f"Removed {removed} expired exports", force=True)
        orphans = _remove_orphaned_temp_files()
        run.job.result = {"removed": removed, "temp_files_removed": orphans}
        run.progress(removed, removed, f"Removed {removed} expired exports and {orphans} unfinished temp files")


def remove_export_files(export_id: int) -> None:
    """An export's file and report, and the temp file of a run that did not finish."""
    get_storage().delete_prefix(f"exports/{export_id}/")
    temp_path(export_id).unlink(missing_ok=True)


def remove_dataset_export_files(dataset_id: int) -> None:
    """Every export file of a dataset about to be deleted (its rows go with it by cascade)."""
    for export_id in db.session.scalars(select(Export.id).where(Export.dataset_id == dataset_id)):
        remove_export_files(export_id)


def _remove_orphaned_temp_files() -> int:
    """Temp files whose export is gone or whose job is no longer queued or running (killed, failed)."""
    removed = 0
    for part in temp_dir().glob("*.part") if temp_dir().is_dir() else ():
        export = db.session.get(Export, int(part.stem)) if part.stem.isdigit() else None
        job = db.session.get(Job, export.job_id) if export is not None and export.job_id else None
        if job is None or not reconcile(job).status.active:
            part.unlink(missing_ok=True)
            removed += 1
    return removed
