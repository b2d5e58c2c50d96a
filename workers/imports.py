"""The import job: decode, measure and thumbnail every file of an upload, resumably."""

from flask import current_app
from sqlalchemy import func, select, update

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, ImportItem, ImportItemStatus, Upload
from services import imaging
from services.images import folder_for, release_if_unused
from workers.runtime import app_context, job_run

CHUNK = 200


def import_upload(job_id: str, upload_id: int) -> dict:
    """Import every pending file of an upload; a re-run skips the files already done."""
    with app_context(), job_run(job_id) as run:
        upload = db.session.get(Upload, upload_id)
        dataset_id = upload.dataset_id
        total = db.session.scalar(select(func.count()).where(ImportItem.upload_id == upload_id))
        done = db.session.scalar(
            select(func.count()).where(ImportItem.upload_id == upload_id, ImportItem.status != ImportItemStatus.pending)
        )
        run.progress(done, total, "Importing", force=True)
        importer = _Importer(dataset_id, upload.user_id, upload.split)
        last_id = 0
        while True:
            # The ledger is the checkpoint: only pending items are read, in id order.
            items = db.session.scalars(
                select(ImportItem)
                .where(ImportItem.upload_id == upload_id, ImportItem.status == ImportItemStatus.pending, ImportItem.id > last_id)
                .order_by(ImportItem.id)
                .limit(CHUNK)
            ).all()
            if not items:
                break
            for item in items:
                importer.import_item(item)
                done += 1
                last_id = item.id
                run.progress(done, total, f"Imported {done} of {total}")
        run.progress(done, total, "Done", force=True)
        run.job.result = summarize(upload_id)
        run.job.errors = [
            {"item": item.file_name, "reason": item.reason}
            for item in db.session.scalars(
                select(ImportItem)
                .where(ImportItem.upload_id == upload_id, ImportItem.status.in_([ImportItemStatus.failed, ImportItemStatus.duplicate]))
                .order_by(ImportItem.id)
                .limit(run.job.MAX_ERRORS)
            )
        ]
        run.job.error_count = run.job.result["failed"] + run.job.result["duplicates"]
        run.job.message = (
            f"{run.job.result['imported']} imported, {run.job.result['duplicates']} duplicates, {run.job.result['failed']} failed"
        )
        return run.job.result


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
    def __init__(self, dataset_id: int, user_id: int | None, split: str):
        self.dataset_id, self.user_id, self.split = dataset_id, user_id, split
        self.storage = get_storage()
        self.max_pixels = current_app.config["LOUPE_MAX_IMAGE_PIXELS"]
        self.box = current_app.config["LOUPE_THUMBNAIL_SIZE"]
        self.folders: dict[str, int] = {}

    def import_item(self, item: ImportItem) -> None:
        """Turn one ledger item into an image row, or mark it duplicate or failed with a reason."""
        existing = db.session.execute(
            select(Image.id, Image.file_name).where(Image.dataset_id == self.dataset_id, Image.storage_key == item.storage_key)
        ).first()
        if existing:
            item.status, item.image_id = ImportItemStatus.duplicate, existing.id
            item.reason = f"same content as {existing.file_name} (image {existing.id}), not imported again"
            return
        try:
            data = self.storage.read(item.storage_key)
        except FileNotFoundError:
            item.status, item.reason = ImportItemStatus.failed, "the uploaded file is missing from storage"
            return
        try:
            processed = imaging.process(data, self.max_pixels, self.box)
        except imaging.ImageRejected as exc:
            item.status, item.reason = ImportItemStatus.failed, str(exc)
            release_if_unused(item.storage_key)
            return
        thumb_key = f"thumbs/{item.storage_key}.jpg"
        if not self.storage.exists(thumb_key):
            self.storage.put_bytes(thumb_key, processed.thumbnail)
        image = Image(
            dataset_id=self.dataset_id, folder_id=self._folder(item.folder_path), file_name=item.file_name,
            storage_key=item.storage_key, width=processed.info.width, height=processed.info.height,
            byte_size=item.byte_size, format=processed.info.format, orientation=processed.info.orientation,
            phash=processed.phash, split=self.split, created_by_id=self.user_id,
        )
        db.session.add(image)
        db.session.flush()
        item.status, item.image_id = ImportItemStatus.imported, image.id
        db.session.execute(
            update(Dataset)
            .where(Dataset.id == self.dataset_id)
            .values(image_count=Dataset.image_count + 1, total_bytes=Dataset.total_bytes + item.byte_size)
        )

    def _folder(self, path: str) -> int | None:
        if not path:
            return None
        if path not in self.folders:
            self.folders[path] = folder_for(self.dataset_id, path)
        return self.folders[path]
