"""What every job body runs inside: an app context, the job row's lifecycle, progress and cancel."""

import time
import traceback
from contextlib import contextmanager

from flask import current_app, has_app_context

from core.extensions import db
from models import Job, JobStatus
from models.base import utcnow

PROGRESS_EVERY_S = 0.5
_app = None


class Cancelled(Exception):
    pass


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
def job_run(job_id: str):
    """Mark the row running, yield a JobRun, and finish, cancel or fail the row at the end."""
    job = db.session.get(Job, job_id)
    if job is None:
        raise LookupError(f"job row {job_id} does not exist")
    job.status, job.started_at, job.finished_at = JobStatus.running, utcnow(), None
    job.attempts += 1
    job.message = "Running"
    db.session.commit()
    run = JobRun(job)
    try:
        yield run
    except Cancelled:
        db.session.rollback()
        job.status, job.message = JobStatus.cancelled, f"Cancelled after {job.done} of {job.total}"
    except Exception as exc:
        db.session.rollback()
        job.status = JobStatus.failed
        job.message = f"{type(exc).__name__}: {exc}"[:2000]
        job.result = {**(job.result or {}), "traceback": traceback.format_exc()[-4000:]}
        job.finished_at = utcnow()
        db.session.commit()
        raise
    else:
        job.status = JobStatus.finished
    job.finished_at = utcnow()
    db.session.commit()
