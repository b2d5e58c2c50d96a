"""Dataset-wide jobs: delete a dataset, recompute its counters."""

from sqlalchemy import delete, select

from core.extensions import db
from models import Dataset, Image
from services.datasets import recount
from services.images import release_if_unused
from workers.runtime import app_context, job_run

CHUNK = 500


def delete_dataset(job_id: str, dataset_id: int) -> dict:
    """Delete a dataset's images in chunks, then the dataset; files no other image uses go too."""
    with app_context(), job_run(job_id) as run:
        deleted = run.job.done  # a re-run continues the count of the run that died
        while db.session.get(Dataset, dataset_id) is not None:
            rows = db.session.execute(
                select(Image.id, Image.storage_key).where(Image.dataset_id == dataset_id).order_by(Image.id).limit(CHUNK)
            ).all()
            if not rows:
                db.session.delete(db.session.get(Dataset, dataset_id))
                db.session.commit()
                break
            db.session.execute(delete(Image).where(Image.id.in_([r.id for r in rows])))
            deleted += len(rows)
            run.progress(deleted, max(run.job.total, deleted), f"Deleted {deleted} images", force=True)
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
