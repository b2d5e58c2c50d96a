"""Dataset-wide jobs: delete a dataset, recompute its counters."""

from sqlalchemy import delete, select

from core.extensions import db
from models import Dataset, Image
from services.datasets import recount
from services.images import release_if_unused
from services.jobs import cancel_in_rq, end_jobs_of_deleted_dataset
from services.versions import release_version_files
from workers.exports import remove_dataset_export_files
from workers.runtime import app_context, job_run

CHUNK = 500


def delete_dataset(job_id: str, dataset_id: int) -> dict:
    """Delete a dataset's images in chunks, then the dataset; files no other image uses go too.

    The dataset's other jobs stop first (queued ones end cancelled, running ones are asked to
    stop), and once more in the transaction that deletes the dataset row, for any that raced in.
    """
    with app_context(), job_run(job_id) as run:
        deleted = run.done  # a re-run continues the count of the run that died
        if db.session.get(Dataset, dataset_id) is not None:
            cancelled = end_jobs_of_deleted_dataset(dataset_id, job_id)
            db.session.commit()
            cancel_in_rq(cancelled)
        while db.session.get(Dataset, dataset_id) is not None:
            rows = db.session.execute(
                select(Image.id, Image.storage_key).where(Image.dataset_id == dataset_id).order_by(Image.id).limit(CHUNK)
            ).all()
            if not rows:
                release_version_files(dataset_id)  # the versions' files, once no image holds them
                remove_dataset_export_files(dataset_id)
                # Locked (PostgreSQL; SQLite's write lock does the same), so no job row can be
                # added for the dataset between the sweep and the delete: it waits, then fails.
                dataset = db.session.scalar(select(Dataset).where(Dataset.id == dataset_id).with_for_update())
                cancelled = end_jobs_of_deleted_dataset(dataset_id, job_id)
                db.session.delete(dataset)
                db.session.commit()
                cancel_in_rq(cancelled)
                break
            db.session.execute(delete(Image).where(Image.id.in_([r.id for r in rows])))
            db.session.commit()
            deleted += len(rows)
            run.progress(deleted, max(run.total, deleted), f"Deleted {deleted} images", force=True)
            # After the commit, so a crash here leaves at most an orphan file, never a row without one.
            for row in rows:
                release_if_unused(row.storage_key)
        run.job.result = {"deleted_images": deleted}
        run.job.message = f"Dataset deleted ({deleted} images)"
        return run.job.result


def refresh_counters(job_id: str, dataset_id: int) -> dict:
    """Recompute a dataset's counters from its rows."""
    with app_context(), job_run(job_id) as run:
        recount(dataset_id)
        dataset = db.session.get(Dataset, dataset_id)
        run.job.result = {"images": dataset.image_count, "total_bytes": dataset.total_bytes}
        run.job.message = f"Counters refreshed: {dataset.image_count} images"
        return run.job.result
