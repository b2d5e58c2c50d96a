"""A real worker process killed mid-import, then the job re-run: nothing lost, nothing doubled.

Also cancelling a running import: it stops at a commit between items, and a re-run imports the rest;
and a worker killed while its work-horse runs on: the job follows the horse.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select, update

from core.extensions import db
from core.queues import get_redis
from models import Dataset, Image, ImportItem, ImportItemStatus, Job, JobStatus
from services import jobs as jobs_service
from services.job_kinds import REFRESH_COUNTERS
from tests.factories import make_dataset, make_user, token_for
from tests.support import sign_in
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


def _statuses_seen(client, headers, job_id: str) -> set[str]:
    """What every observer says of the job now: the service, the API and the job page."""
    db.session.expire_all()
    seen = {jobs_service.reconcile(db.session.get(Job, job_id)).status.value}
    seen.add(client.get(f"/api/v1/jobs/{job_id}", headers=headers).get_json()["status"])
    page = client.get(f"/jobs/{job_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    seen.add(page.split('data-job-status="', 1)[1].split('"', 1)[0])
    return seen


def test_killing_only_the_worker_leaves_the_job_to_its_work_horse_and_refuses_a_second_run(app_ctx, client, start_worker):
    user = make_user()
    dataset = make_dataset(user)
    upload, job = upload_files(dataset, user, slow_pngs(COUNT))
    sign_in(client, user)
    headers = token_for(user)
    worker = start_worker()
    wait_for(lambda: read_job(job.id)["done"] > 0, timeout=30, what="the worker to commit some progress")
    (horse,) = _children(worker.pid)

    os.kill(worker.pid, signal.SIGKILL)  # the worker only: its work-horse runs on, an orphan
    worker.wait(timeout=10)
    assert _state(horse) not in ("Z", "X")

    seen, refused = set(), []
    while read_job(job.id)["status"] == "running":
        seen |= _statuses_seen(client, headers, job.id)
        if len(refused) < 2:  # a second run while the first is alive would import the same files twice
            refused.append(client.post(f"/api/v1/jobs/{job.id}/retry", headers=headers))
            refused.append(client.post(f"/jobs/{job.id}/rerun", headers={"HX-Request": "true"}))
        time.sleep(0.05)
    seen |= _statuses_seen(client, headers, job.id)

    assert seen == {"running", "finished"}, "the job never shows as failed while its work-horse runs"
    assert [r.status_code for r in refused] == [409] * len(refused) and refused
    assert "this one is running" in refused[0].get_json()["error"]["message"]
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished and job.attempts == 1
    assert job.result == {"imported": COUNT, "duplicates": 0, "failed": 0, "pending": 0}
    _assert_imported_exactly_once(dataset.id, upload.id)


def _running_row(runner: str) -> Job:
    user = make_user()
    job = jobs_service.start_job(REFRESH_COUNTERS, 0, dataset=make_dataset(user), user=user)
    db.session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.running, runner=runner))
    db.session.commit()
    db.session.refresh(job)
    return job


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _start_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


HOST = socket.gethostname()


@pytest.mark.parametrize("runner, alive", [
    pytest.param(lambda: jobs_service.this_process(), True, id="this process"),
    pytest.param(lambda: f"{HOST} {os.getppid()} {_start_of(os.getppid())}", True, id="another live process here"),
    pytest.param(lambda: f"{HOST} {_dead_pid()} 1", False, id="a process that exited"),
    pytest.param(lambda: f"{HOST} {os.getpid()} 1", False, id="a live pid reused by another process"),
    pytest.param(lambda: f"{HOST} 4194304 1", False, id="a pid beyond the kernel's range"),
])
def test_a_running_job_on_this_host_is_lost_exactly_when_its_process_is_gone(app_ctx, runner, alive):
    job = _running_row(runner())
    jobs_service.reconcile(job)
    assert job.status == (JobStatus.running if alive else JobStatus.failed)
    assert (job.message == jobs_service.INTERRUPTED) != alive


def test_a_running_job_on_another_host_is_alive_while_its_heartbeat_key_is(app_ctx):
    runner = "another-machine 1234 5678"
    job = _running_row(runner)
    redis = get_redis()
    redis.set(jobs_service.runner_key(job.id), runner, ex=jobs_service.RUNNER_TTL_S)
    assert jobs_service.reconcile(job).status == JobStatus.running
    redis.set(jobs_service.runner_key(job.id), "another-machine 999 5678", ex=jobs_service.RUNNER_TTL_S)  # not this run's
    assert jobs_service.reconcile(job).status == JobStatus.failed

    job = _running_row(runner)
    redis.delete(jobs_service.runner_key(job.id))  # the key lapsed: the process stopped beating
    assert jobs_service.reconcile(job).status == JobStatus.failed


def test_a_job_keeps_its_heartbeat_key_while_it_runs_and_drops_it_after(app_ctx, run_jobs, start_worker):
    user = make_user()
    dataset = make_dataset(user)
    # Enough files (seconds of work) that the job is still running when the key is read.
    _, job = upload_files(dataset, user, slow_pngs(300))
    start_worker()
    wait_for(lambda: read_job(job.id)["done"] > 0, timeout=30, what="the worker to start the job")
    db.session.expire_all()
    runner = db.session.get(Job, job.id).runner
    host, pid, _ = runner.split(" ")
    assert host == HOST and int(pid) != os.getpid()
    key = get_redis().get(jobs_service.runner_key(job.id))
    assert read_job(job.id)["status"] == "running", "the job ended before its key could be read"
    assert key == runner.encode()
    wait_for(lambda: read_job(job.id)["status"] == "finished", timeout=60, what="the job to finish")
    wait_for(lambda: not get_redis().exists(jobs_service.runner_key(job.id)), timeout=10, what="the key to go")
