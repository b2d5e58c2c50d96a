"""Releasing a version: the dataset's images copied into the version's snapshot, chunk by chunk."""

from core.errors import NotFound
from core.extensions import db
from models import Version
from services import versions as service
from workers.runtime import app_context, job_run


def release_version(job_id: str, version_id: int) -> dict:
    """Fill the version's snapshot, then mark it complete.

    Each chunk is one transaction holding its images and the version's statistics so far, so a
    re-run after a crash continues after the last chunk that committed, and copies nothing twice.
    """
    with app_context(), job_run(job_id) as run:
        version = db.session.get(Version, version_id)
        if version is None:
            raise NotFound("The version to release no longer exists")
        result = {"version_id": version.id, "version": version.name}
        run.job.result = result  # committed with the first chunk, for a client polling the job
        if not version.complete:
            service.begin_snapshot(version)
            while copied := service.snapshot_chunk(version):
                db.session.commit()
                run.progress(version.image_count, max(run.total, version.image_count), f"Copied {version.image_count:,} images into {version.name}", force=True)
                if copied < service.CHUNK:
                    break
            service.finish_release(version)
        # Committed with the row's end by job_run: the version is complete exactly when its job finished.
        run.job.result = {**result, "images": version.image_count, "annotations": version.annotation_count}
        run.job.message = f"Released {version.name}: {version.image_count:,} images, {version.annotation_count:,} annotations"
        run.progress(version.image_count, max(run.total, version.image_count))
        return run.job.result
