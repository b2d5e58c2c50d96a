"""A real worker process killed mid-import, then the job re-run: nothing lost, nothing doubled.

Also cancelling a running import: it stops at a commit between items, and a re-run imports the rest.
"""

import os
import signal
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from core.extensions import db
from core.queues import get_redis
from models import Dataset, Image, ImportItem, ImportItemStatus, Job, JobStatus
from services import jobs as jobs_service
from tests.factories import make_dataset, make_user
from tests.workers.helpers import read_job, slow_pngs, upload_files, wait_for

COUNT = 150


def _children(pid: int) -> list[int]:
    """Direct child processes (the RQ work horse a worker forked for its current job)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _kill_hard(process) -> None:
    """SIGKILL the worker and its work horse, as a power cut or `kill -9` of the container would."""
    horses = _children(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    for pid in horses:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=10)
    for pid in horses:  # an orphaned horse is reaped by init; wait until it is really gone
        wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists() or "Z" in _state(pid), timeout=10, what=f"horse {pid} to die")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "X"


def _assert_imported_exactly_once(dataset_id: int, upload_id: int, count: int = COUNT) -> None:
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).where(Image.dataset_id == dataset_id)) == count
    assert db.session.scalar(select(func.count(func.distinct(Image.storage_key))).where(Image.dataset_id == dataset_id)) == count
    statuses = dict(
        db.session.execute(
            select(ImportItem.status, func.count()).where(ImportItem.upload_id == upload_id).group_by(ImportItem.status)
        ).all()
    )
    assert statuses == {ImportItemStatus.imported: count}
    dataset = db.session.get(Dataset, dataset_id)
    assert dataset.image_count == count
    assert dataset.total_bytes == db.session.scalar(select(func.sum(Image.byte_size)).where(Image.dataset_id == dataset_id))


@pytest.fixture(autouse=True)
def one_import_thread(monkeypatch):
    """Workers started by these tests decode on one thread: a job long enough to interrupt on any machine."""
    monkeypatch.setenv("LOUPE_IMPORT_THREADS", "1")


def test_killed_worker_is_detected_and_a_rerun_imports_every_image_exactly_once(app_ctx, run_jobs, start_worker):
    user = make_user()
    dataset = make_dataset(user)
    upload, job = upload_files(dataset, user, slow_pngs(COUNT))
    worker = start_worker()

    wait_for(lambda: read_job(job.id)["done"] > 0, timeout=30, what="the worker to commit some progress")
    _kill_hard(worker)

    killed_at = read_job(job.id)
    assert killed_at["status"] == "running" and 0 < killed_at["done"] < COUNT, killed_at
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.running  # nobody has told the row yet

    # The dead worker's key lives on in Redis until its TTL runs out, so that alone proves nothing.
    assert get_redis().exists(f"rq:worker:{jobs_service._rq_job(job).worker_name}")
    jobs_service.reconcile(job)
    assert job.status == JobStatus.failed
    assert "Run it again" in job.message
    partly = db.session.scalar(select(func.count()).where(Image.dataset_id == dataset.id))
    assert 0 < partly < COUNT

    jobs_service.rerun_job(job)
    assert read_job(job.id)["status"] == "queued"
    # The dead run's entry is gone from rq's started registry, so rq's later clean-up of abandoned
    # jobs cannot mark the re-run failed.
    assert job.id not in StartedJobRegistry("imports", connection=get_redis()).get_job_ids(cleanup=False)

    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.attempts == 2
    assert job.done == job.total == COUNT
    assert job.result == {"imported": COUNT, "duplicates": 0, "failed": 0, "pending": 0}
    _assert_imported_exactly_once(dataset.id, upload.id)


# ~130 ms to decode each, so the job is still busy when the cancel arrives and several
# transactions (the points where a job looks at cancel_requested) happen before it could finish.
CANCEL_COUNT = 30
CANCEL_SIZE = (4000, 3000)


def test_cancelled_import_stops_between_items_and_a_rerun_imports_the_rest(app_ctx, run_jobs, start_worker):
    user = make_user()
    dataset = make_dataset(user)
    upload, job = upload_files(dataset, user, slow_pngs(CANCEL_COUNT, CANCEL_SIZE))
    worker = start_worker()
    wait_for(lambda: read_job(job.id)["done"] > 0, timeout=30, what="the worker to commit some progress")

    db.session.expire_all()
    job = db.session.get(Job, job.id)
    jobs_service.cancel_job(job)  # the worker is alive: reconcile must not call it lost
    assert job.cancel_requested and job.message == "Cancelling…"

    stopped = wait_for(
        lambda: (row := read_job(job.id))["status"] != "running" and row, timeout=30, what="the job to stop"
    )
    assert stopped["status"] == "cancelled", stopped
    assert 0 < stopped["done"] < CANCEL_COUNT
    assert stopped["message"] == f"Cancelled after {stopped['done']} of {CANCEL_COUNT}"
    assert worker.poll() is None  # cancelling stops the job, not the worker

    db.session.expire_all()
    imported = db.session.scalar(select(func.count()).where(Image.dataset_id == dataset.id))
    pending = db.session.scalar(
        select(func.count()).where(ImportItem.upload_id == upload.id, ImportItem.status == ImportItemStatus.pending)
    )
    # Stopped between items: every item is either fully imported (row + ledger) or still pending.
    assert imported + pending == CANCEL_COUNT and 0 < imported < CANCEL_COUNT
    assert imported == stopped["done"]
    assert db.session.get(Dataset, dataset.id).image_count == imported

    job = db.session.get(Job, job.id)
    jobs_service.rerun_job(job)
    wait_for(lambda: read_job(job.id)["status"] == "finished", timeout=30, what="the re-run to finish")

    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert not job.cancel_requested and job.attempts == 2
    assert job.done == CANCEL_COUNT
    _assert_imported_exactly_once(dataset.id, upload.id, CANCEL_COUNT)
