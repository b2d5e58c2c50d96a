"""The import job: decode, measure and thumbnail every file of an upload, resumably."""

import time
from concurrent.futures import ThreadPoolExecutor

from flask import current_app
from sqlalchemy import func, insert, select, update

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, ImportItem, ImportItemStatus, Upload
from models.image import thumbnail_key_for
from services import imaging
from services.images import folder_for, release_if_unused
from workers.runtime import app_context, job_run

# A transaction holds up to CHUNK items or CHUNK_SECONDS of decoding, whichever comes first: large
# enough that database work is a small share of the time per image, small enough that progress and
# cancel stay live with huge images and a crash redoes only a second of work.
CHUNK = 50
CHUNK_SECONDS = 1.0


def import_upload(job_id: str, upload_id: int) -> dict:
    """Import every pending file of an upload; a re-run skips the files already done."""
    with app_context(), job_run(job_id) as run:
        total = db.session.scalar(select(func.count()).where(ImportItem.upload_id == upload_id))
        done = db.session.scalar(
            select(func.count()).where(ImportItem.upload_id == upload_id, ImportItem.status != ImportItemStatus.pending)
        )
        run.progress(done, total, "Importing", force=True)
        import_pending(upload_id, lambda n: run.progress(done + n, total, f"Imported {done + n} of {total}"))
        run.progress(total, total, "Done", force=True)
        result = summarize(upload_id)
        run.job.result = result
        run.job.errors = [
            {"item": item.file_name, "reason": item.reason}
            for item in db.session.scalars(
                select(ImportItem)
                .where(ImportItem.upload_id == upload_id, ImportItem.status.in_([ImportItemStatus.failed, ImportItemStatus.duplicate]))
                .order_by(ImportItem.id)
                .limit(run.job.MAX_ERRORS)
            )
        ]
        run.job.error_count = result["failed"] + result["duplicates"]
        run.job.message = f"{result['imported']} imported, {result['duplicates']} duplicates, {result['failed']} failed"
        return result


def import_pending(upload_id: int, progress) -> None:
    """Import the upload's pending ledger items, a chunk per transaction, calling progress(n) with
    how many this call has done. The ledger is the checkpoint: a re-run reads only pending items."""
    upload = db.session.get(Upload, upload_id)
    threads = current_app.config["LOUPE_IMPORT_THREADS"]
    pending = (
        select(ImportItem.id, ImportItem.file_name, ImportItem.folder_path, ImportItem.storage_key, ImportItem.byte_size)
        .where(ImportItem.upload_id == upload_id, ImportItem.status == ImportItemStatus.pending)
        .order_by(ImportItem.id)
        .limit(CHUNK)
    )
    with ThreadPoolExecutor(threads) as pool:
        importer = _Importer(upload.dataset_id, upload.user_id, upload.split, pool, threads)
        done = 0
        while items := db.session.execute(pending).all():
            done += importer.import_chunk(items)
            progress(done)


def summarize(upload_id: int) -> dict:
    counts = dict(
        db.session.execute(
            select(ImportItem.status, func.count()).where(ImportItem.upload_id == upload_id).group_by(ImportItem.status)
        ).all()
    )
    return {
        "imported": counts.get(ImportItemStatus.imported, 0),
        "duplicates": counts.get(ImportItemStatus.duplicate, 0),
        "failed": counts.get(ImportItemStatus.failed, 0),
        "pending": counts.get(ImportItemStatus.pending, 0),
    }


class _Importer:
    def __init__(self, dataset_id: int, user_id: int | None, split: str, pool: ThreadPoolExecutor, threads: int):
        self.dataset_id, self.user_id, self.split = dataset_id, user_id, split
        self.pool = pool
        self.window = 2 * threads
        self.storage = get_storage()
        self.max_pixels = current_app.config["LOUPE_MAX_IMAGE_PIXELS"]
        # The threads hold at most as much decoded memory at once as a limit-sized 8-bit image
        # (200 MB by default): small files side by side, a huge one alone, whatever the mix.
        self.budget = imaging.DecodeBudget(self.max_pixels)
        self.box = current_app.config["LOUPE_THUMBNAIL_SIZE"]
        self.folders: dict[str, int] = {}

    def import_chunk(self, items) -> int:
        """Import ledger items in one transaction (images, ledger, counters); returns how many."""
        deadline = time.monotonic() + CHUNK_SECONDS
        in_dataset = {
            row.storage_key: (_duplicate_of(row.file_name, row.id), row.id)
            for row in db.session.execute(
                select(Image.id, Image.file_name, Image.storage_key)
                .where(Image.dataset_id == self.dataset_id, Image.storage_key.in_({item.storage_key for item in items}))
            )
        }
        outcomes, first_of, to_process, copies = [], {}, [], []
        for item in items:
            if item.storage_key in in_dataset:
                outcomes.append(_outcome(item, ImportItemStatus.duplicate, *in_dataset[item.storage_key]))
            elif item.storage_key in first_of:
                copies.append((item, first_of[item.storage_key]))
            else:
                first_of[item.storage_key] = item
                to_process.append(item)

        results = self._process_until(to_process, deadline)
        new_images = [(item, processed) for item, processed, _ in results if processed]
        failures = {item.id: reason for item, processed, reason in results if not processed}
        outcomes += [_outcome(item, ImportItemStatus.failed, failures[item.id]) for item, _, _ in results if item.id in failures]
        image_ids = {}
        if new_images:
            rows = [self._image_row(item, processed) for item, processed in new_images]
            ids = db.session.execute(insert(Image).returning(Image.id, sort_by_parameter_order=True), rows).scalars().all()
            image_ids = {item.id: image_id for (item, _), image_id in zip(new_images, ids)}
            outcomes += [_outcome(item, ImportItemStatus.imported, "", image_ids[item.id]) for item, _ in new_images]
            db.session.execute(
                update(Dataset)
                .where(Dataset.id == self.dataset_id)
                .values(
                    image_count=Dataset.image_count + len(rows),
                    total_bytes=Dataset.total_bytes + sum(item.byte_size for item, _ in new_images),
                )
            )
        for copy, original in copies:  # a copy waits for its original when that is not processed yet
            if original.id in failures:
                outcomes.append(_outcome(copy, ImportItemStatus.failed, failures[original.id]))
            elif original.id in image_ids:
                image_id = image_ids[original.id]
                outcomes.append(_outcome(copy, ImportItemStatus.duplicate, _duplicate_of(original.file_name, image_id), image_id))
        db.session.execute(update(ImportItem), outcomes)
        db.session.commit()
        # Only after the commit: the ledger no longer holds these files as pending.
        for item, _, _ in results:
            if item.id in failures:
                release_if_unused(item.storage_key)
        return len(outcomes)

    def _process_until(self, items, deadline: float) -> list:
        """Decode items on the thread pool (Pillow releases the GIL), a window at a time, until the deadline."""
        results = []
        for start in range(0, len(items), self.window):
            batch = items[start : start + self.window]
            results += [(item, *result) for item, result in zip(batch, self.pool.map(self._process, batch))]
            if time.monotonic() > deadline:
                break
        return results

    def _process(self, item) -> tuple[imaging.Processed | None, str]:
        """Decode one file and store its thumbnail; returns the result, or why it was rejected."""
        try:
            data = self.storage.read(item.storage_key)
        except FileNotFoundError:
            return None, "the uploaded file is missing from storage"
        try:
            processed = imaging.process(data, self.max_pixels, self.box, self.budget)
        except imaging.ImageRejected as exc:
            return None, str(exc)
        # Content-addressed: rewriting an existing thumbnail gives the same bytes, so no exists() check.
        self.storage.put_bytes(thumbnail_key_for(item.storage_key), processed.thumbnail)
        return processed, ""

    def _image_row(self, item, processed: imaging.Processed) -> dict:
        return {
            "dataset_id": self.dataset_id, "folder_id": self._folder(item.folder_path), "file_name": item.file_name,
            "storage_key": item.storage_key, "width": processed.info.width, "height": processed.info.height,
            "byte_size": item.byte_size, "format": processed.info.format, "orientation": processed.info.orientation,
            "phash": processed.phash, "split": self.split, "created_by_id": self.user_id,
        }

    def _folder(self, path: str) -> int | None:
        if not path:
            return None
        if path not in self.folders:
            self.folders[path] = folder_for(self.dataset_id, path)
        return self.folders[path]


def _duplicate_of(file_name: str, image_id: int) -> str:
    return f"same content as {file_name} (image {image_id}), not imported again"


def _outcome(item, status: ImportItemStatus, reason: str, image_id: int | None = None) -> dict:
    return {"id": item.id, "status": status, "reason": reason, "image_id": image_id}
