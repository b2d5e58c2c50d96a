"""A worker SIGKILLed mid-export: nothing partial is ever offered, the cleanup job removes the
orphaned temp file, and the job's retry writes a complete, valid file."""

import json

from sqlalchemy import select, text

from core.extensions import db
from formats import loupe_json
from formats.base import ExportOptions
from models import Annotation, Export, Image, ImageState, Job, JobStatus, Split
from services import exports as export_service
from services import jobs as jobs_service
from services.job_kinds import CLEANUP_EXPORTS
from services.labels import create_label
from tests.factories import make_dataset, make_user, token_for
from tests.workers.helpers import read_job, wait_for
from tests.workers.test_crash_recovery import _kill_hard
from workers.exports import temp_path

# The worker writes progress on every image (LOUPE_PROGRESS_EVERY_MS=0), one commit each, so it
# is still early in these when the test holds the job row, however fast the machine.
COUNT = 4000


def _many_images(dataset, label) -> None:
    """Image and annotation rows in two statements (an export reads rows, not the files' bytes)."""
    db.session.execute(Image.__table__.insert(), [
        {"dataset_id": dataset.id, "file_name": f"img-{i:05d}.png", "storage_key": f"{i:064x}", "width": 16, "height": 12,
         "byte_size": 100, "format": "png", "split": Split.train.value, "state": ImageState.accepted.value, "orientation": 1,
         "revision": 0}
        for i in range(COUNT)
    ])
    ids = db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id)).all()
    db.session.execute(Annotation.__table__.insert(), [
        {"image_id": image_id, "label_id": label.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 4, "height": 3},
         "attributes": {}, "source": "human"}
        for image_id in ids
    ])
    db.session.commit()


def _hold_the_job_row(job_id: str):
    """Another transaction writing the job row: the worker's next progress commit (the next image)
    waits on it, so the worker is held in the middle of writing until it is killed."""
    connection = db.engine.connect()
    connection.execute(text("UPDATE job SET message = message WHERE id = :id"), {"id": job_id})
    return connection


def test_killed_export_offers_nothing_and_its_retry_writes_a_complete_file(app_ctx, client, run_jobs, start_worker):
    owner = make_user()
    headers = token_for(owner)
    dataset = make_dataset(owner, name="Many")
    _many_images(dataset, create_label(dataset, name="cat", default_shape="box"))
    export = export_service.create_export(dataset, owner, {"format": "json"})
    job_id, part = export.job_id, temp_path(export.id)

    worker = start_worker("exports", LOUPE_PROGRESS_EVERY_MS="0")
    wait_for(lambda: read_job(job_id)["done"] > 0 and part.exists() and part.stat().st_size > 0,
             timeout=60, interval=0.005, what="the export to commit some progress and write some bytes")
    held = _hold_the_job_row(job_id)
    try:
        _kill_hard(worker)
    finally:
        held.rollback()
        held.close()

    killed_at = read_job(job_id)
    assert killed_at["status"] == "running" and 0 < killed_at["done"] < COUNT, killed_at
    db.session.expire_all()
    assert jobs_service.reconcile(db.session.get(Job, job_id)).status == JobStatus.failed
    # The half-written file stays where it was written, and nothing points at it.
    assert part.exists() and part.stat().st_size > 0
    try:
        loupe_json.count(part, ExportOptions(format="json"))
        raise AssertionError("the killed export's temp file reads as complete")
    except ValueError:
        pass
    shown = client.get(f"/api/v1/exports/{export.id}", headers=headers).get_json()
    assert shown["status"] == "failed" and shown["download_url"] is None
    assert client.get(f"/api/v1/exports/{export.id}/download", headers=headers).status_code == 409

    # The cleanup job removes temp files whose job is no longer running.
    jobs_service.start_job(CLEANUP_EXPORTS, dataset=None, user=owner)
    run_jobs()
    assert not part.exists()

    retried = client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)
    assert retried.status_code == 202
    run_jobs()
    job = db.session.get(Job, job_id)
    assert job.status == JobStatus.finished and job.attempts == 2, job.message
    shown = client.get(f"/api/v1/exports/{export.id}", headers=headers).get_json()
    assert shown["status"] == "ready" and shown["report"]["images"] == COUNT and shown["report"]["annotations"] == COUNT
    document = json.loads(client.get(shown["download_url"], headers=headers).data)
    assert len(document["images"]) == COUNT
    assert len({image["id"] for image in document["images"]}) == COUNT
    assert not part.exists()
    assert db.session.get(Export, export.id).byte_size == shown["byte_size"] > 0
