"""What every job body runs inside: an app context, the job row's lifecycle, progress and cancel."""

import logging
import threading
import time
from contextlib import contextmanager

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import update

from core.errors import LoupeError
from core.extensions import db
from core.queues import get_redis
from models import Dataset, Job, JobStatus
from models.base import utcnow
from services import jobs as jobs_service

PROGRESS_EVERY_S = 0.5
log = logging.getLogger("loupe.jobs")
_app = None


class Cancelled(Exception):
    pass


class NotRunnable(Exception):
    """The row was not queued when a worker picked the job up (cancelled, or already taken): not run."""


@contextmanager
def app_context():
    """Reuse the caller's app (tests, `python -m workers`) or build one for a bare `rq worker`."""
    global _app
    if has_app_context():
        yield current_app
        return
    if _app is None:
        from app import create_app

        _app = create_app()
    with _app.app_context():
        try:
            yield _app
        finally:
            db.session.remove()


class JobRun:
    """The running job's handle: progress() and the row's result and message, written to the job row."""

    def __init__(self, job: Job):
        self.job = job
        self._last_write = 0.0

    def progress(self, done: int, total: int | None = None, message: str | None = None, force: bool = False) -> None:
        """Record progress and commit pending work, at most twice a second; stop if cancelled."""
        self.job.done = done
        if total is not None:
            self.job.total = total
        if message is not None:
            self.job.message = message
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_EVERY_S:
            self._last_write = now
            db.session.commit()
            if self.job.cancel_requested:  # reloaded from the database by the commit
                raise Cancelled()


@contextmanager
def _heartbeat(job_id: str, runner: str):
    """Keep the runner's key alive in Redis while this process runs the job, for hosts that cannot
    look at this process (see services.jobs.runner_alive); it lapses within a TTL of a crash."""
    connection, key, stop = get_redis(), jobs_service.runner_key(job_id), threading.Event()

    def set_key():
        try:
            connection.set(key, runner, ex=jobs_service.RUNNER_TTL_S)
        except RedisError:
            pass  # the next beat tries again; the web side treats an unreachable Redis as "alive"

    def beat():
        while not stop.wait(jobs_service.RUNNER_BEAT_S):
            set_key()

    set_key()  # before the job's first step, so the key is there for as long as the job runs
    thread = threading.Thread(target=beat, name=f"heartbeat {job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        try:
            connection.delete(key)
        except RedisError:
            pass


def _failure_message(exc: Exception, job_id: str) -> str:
    """What a person reads: a domain error's own message; anything else stays in the worker's log."""
    if isinstance(exc, LoupeError):
        return exc.message
    return (
        f"The job stopped on an unexpected error; the worker's log has the details (job {job_id}). "
        "Run it again to continue where it stopped."
    )


@contextmanager
def job_run(job_id: str):
    """Take the queued row, yield a JobRun, and finish, cancel or fail the row at the end.

    Taking the row is one conditional update, so a job cancelled (or already taken by another
    process) while it waited in the queue is not run, and the row names this process as its runner.
    """
    runner = jobs_service.this_process()
    claimed = db.session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.queued).values(
            status=JobStatus.running, started_at=utcnow(), finished_at=None, attempts=Job.attempts + 1,
            message="Running", runner=runner,
        )
    ).rowcount
    db.session.commit()
    job = db.session.get(Job, job_id)
    if job is None:
        raise LookupError(f"job row {job_id} does not exist")
    if not claimed:
        raise NotRunnable(f"job {job_id} is {job.status.value}, not queued: not run")
    dataset_id = job.dataset_id  # the row loses it (SET NULL) if the dataset is deleted meanwhile
    run = JobRun(job)
    with _heartbeat(job_id, runner):
        try:
            yield run
        except Exception as exc:
            db.session.rollback()
            # A job whose dataset was deleted under it (asked to stop, or failing on rows that are
            # gone) was cancelled by that deletion, whatever it stopped on.
            deleted = dataset_id is not None and db.session.get(Dataset, dataset_id) is None
            if isinstance(exc, Cancelled) or deleted:
                job.status, job.message = JobStatus.cancelled, f"Cancelled after {job.done} of {job.total}"
                if deleted:
                    job.message += f": {jobs_service.DATASET_DELETED}"
            else:
                log.exception("Job %s (%s) failed", job_id, job.kind)
                job.status, job.message, job.finished_at = JobStatus.failed, _failure_message(exc, job_id), utcnow()
                db.session.commit()
                raise
        else:
            job.status = JobStatus.finished
        job.finished_at = utcnow()
        db.session.commit()
