"""What every job body runs inside: an app context, the job row's lifecycle, progress and cancel."""

import logging
import threading
import time
from contextlib import contextmanager

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event, inspect, select, update

from core.errors import LoupeError
from core.extensions import db
from core.queues import get_redis
from models import Dataset, Job, JobStatus
from models.base import utcnow
from services import jobs as jobs_service

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
    """The running job's handle: progress() and cancel, and the row's result and message (job).

    Progress goes to the job row through short transactions of its own, never the body's: the body
    decides its own commits. The row shows committed work only: progress noted while the body holds
    uncommitted writes waits for the body's next commit (and is taken back if that work rolls back),
    so the separate write never waits on the body's own locks either (SQLite's one write lock, a
    PostgreSQL lock on the job row) and the row never runs ahead of what is stored.
    """

    def __init__(self, job: Job):
        self.job = job
        self.done, self.total, self.message = job.done, job.total, job.message
        self._committed = self._stored = self._values()  # of work committed; on the row
        self._write_at_commit = False  # a forced progress() waits for the body's commit
        self._last_write = 0.0
        self._every_s = current_app.config["LOUPE_PROGRESS_EVERY_MS"] / 1000
        self._cancel_requested = False

    def progress(self, done: int, total: int | None = None, message: str | None = None, force: bool = False) -> None:
        """Note progress; write it at most twice a second (force: at once, or at the body's next
        commit), and stop if the job was cancelled. Cheap when not due: a body may call it per item."""
        self.done = done
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        if not (force or self._due()):
            return
        if _holds_writes():
            self._write_at_commit = self._write_at_commit or force
            self._read_cancel()
        else:
            self._committed = self._values()
            self._write()
        if self._cancel_requested:
            raise Cancelled()

    def _values(self) -> dict:
        return {"done": self.done, "total": self.total, "message": self.message}

    def _due(self) -> bool:
        return time.monotonic() - self._last_write >= self._every_s

    def _write(self) -> None:
        """Write the committed progress if the row lacks it, and read the cancel flag, in a short
        transaction of its own."""
        with db.engine.begin() as connection:
            if self._committed == self._stored:
                cancel = connection.scalar(select(Job.cancel_requested).where(Job.id == self.job.id))
            else:
                cancel = connection.scalar(
                    update(Job).where(Job.id == self.job.id).values(**self._committed).returning(Job.cancel_requested)
                )
        self._cancel_requested, self._stored = bool(cancel), self._committed
        self._write_at_commit, self._last_write = False, time.monotonic()

    def _read_cancel(self) -> None:
        with db.engine.connect() as connection:
            self._cancel_requested = bool(connection.scalar(select(Job.cancel_requested).where(Job.id == self.job.id)))
        self._last_write = time.monotonic()

    def _after_commit(self, _session) -> None:
        self._committed = self._values()  # whatever was noted so far, its work is stored now
        if self._committed != self._stored and (self._write_at_commit or self._due()):
            self._write()

    def _after_rollback(self, _session) -> None:
        # What was noted since the last commit described work that is gone.
        self.done, self.total, self.message = (self._committed[key] for key in ("done", "total", "message"))
        self._write_at_commit = False

    @contextmanager
    def following_commits(self):
        """Write the progress waiting for a commit of the body's once it is made; take it back on a rollback."""
        session = db.session()
        event.listen(session, "after_commit", self._after_commit)
        event.listen(session, "after_rollback", self._after_rollback)
        try:
            yield
        finally:
            event.remove(session, "after_commit", self._after_commit)
            event.remove(session, "after_rollback", self._after_rollback)

    def settle(self) -> None:
        """Put the progress the row lacks on the job, for the row's last commit (after a rollback:
        that of the work committed). A message the body set on the job itself wins."""
        values = self._values()
        if inspect(self.job).attrs.message.history.has_changes():
            del values["message"]
        for key, value in values.items():
            if value != self._stored[key]:
                setattr(self.job, key, value)
        self._committed = self._stored = self._values()


def _holds_writes() -> bool:
    """Whether the body's transaction has written anything (or has ORM changes not yet flushed)."""
    session = db.session()
    if session.new or session.deleted or session.dirty:
        return True
    if not session.in_transaction():
        return False
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # The driver opens its transaction at the first write (see app._sqlite_pragmas).
        return connection.connection.dbapi_connection.in_transaction
    return connection.exec_driver_sql("SELECT txid_current_if_assigned()").scalar() is not None


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
    with _heartbeat(job_id, runner), run.following_commits():
        try:
            yield run
        except Exception as exc:
            db.session.rollback()
            run.settle()
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
            run.settle()
            job.status = JobStatus.finished
        job.finished_at = utcnow()
        db.session.commit()
