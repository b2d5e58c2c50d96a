"""Job rows: create-and-enqueue, cancel, re-run, and reconciling rows whose worker died."""

import logging
import os
import socket
import uuid
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, Unavailable
from core.extensions import db
from core.permissions import visible_jobs
from core.queues import enqueue, get_redis
from models import Dataset, Job, JobStatus, User
from models.base import utcnow
from services.job_kinds import ALLOW, DATASET_STATUSES, DELETE_DATASET, KINDS, ONE_PER_DATASET, READY, JobKind

# What a queued or running job of each kind makes the dataset's status (SPEC: ready, importing, exporting, deleting).
STATUS_BY_KIND = {kind.key: kind.dataset_status for kind in KINDS.values() if kind.dataset_status}
ACTIVE = (JobStatus.queued, JobStatus.running)
DATASET_DELETED = "the dataset was deleted"
INTERRUPTED = "The worker stopped while running this job. Run it again to continue where it stopped."
# The process running a job refreshes its key every RUNNER_BEAT_S; it lapses RUNNER_TTL_S after a crash.
RUNNER_BEAT_S, RUNNER_TTL_S = 10, 60
ENQUEUE_GRACE = timedelta(seconds=30)
log = logging.getLogger("loupe.jobs")


def start_job(kind: JobKind, *args, dataset: Dataset | None, user: User | None, total: int = 0, message: str = "Waiting for a worker") -> Job:
    """Commit a job row, then enqueue it: a worker never starts before its row exists.

    A second start is answered with the active job the kind's duplicates rule names, if any (one
    whose process died does not count: a new one starts); the caller tells them apart by the job's
    args. Either way the session's pending work is committed. Nothing new starts on a dataset that
    is being deleted, except its deletion.
    """
    args = list(args)
    answer = None
    if kind.duplicates != ALLOW:
        answer = _duplicate(kind, args, active_jobs(dataset, kind.key))
        if answer is None and dataset is not None:
            # Checked again under the dataset's lock, held until the new row commits, so two starts
            # at the same moment give one job. (reconcile() in active_jobs may commit, so the lock
            # comes after it; a kind without a dataset has no row to lock.)
            Dataset.lock(dataset.id)
            answer = _duplicate(kind, args, db.session.scalars(_active(dataset, kind.key)))
    if answer is not None:
        db.session.commit()
        return answer
    if dataset is not None and kind != DELETE_DATASET:
        refuse_while_deleting(dataset)
    job = Job(
        id=f"{kind.key.replace('_', '-')}-{uuid.uuid4().hex[:16]}",
        kind=kind.key, dataset_id=dataset.id if dataset else None, user_id=user.id if user else None,
        total=total, message=message, func=kind.func, queue=kind.queue, args=args,
    )
    db.session.add(job)
    try:
        db.session.commit()
    except IntegrityError:  # the dataset's deletion committed between the check and this row
        db.session.rollback()
        raise Conflict("The dataset was deleted; nothing can be started on it") from None
    _enqueue(job)
    return job


def _enqueue(job: Job) -> None:
    try:
        enqueue(job.queue, job.func, job.id, *job.args, job_id=job.id)
    except RedisError as exc:
        # No silent synchronous fallback: the job is recorded as failed and can be re-run. The
        # error (which may name a socket path) goes to the log, not to the person.
        log.error("Could not enqueue job %s: %s", job.id, exc)
        job.status, job.finished_at = JobStatus.failed, utcnow()
        job.message = "The job queue (Redis) could not be reached; run the job again when it is back."
        db.session.commit()
        raise Unavailable("The job queue (Redis) is not reachable; the job was saved and can be re-run") from exc


def _rq_job(job: Job) -> RQJob | None:
    try:
        return RQJob.fetch(job.id, connection=get_redis())
    except NoSuchJobError:
        return None


# ---- who runs a job ------------------------------------------------------------------------


def this_process() -> str:
    """The runner a job row records: host, pid and the process's start time (pids are reused)."""
    pid = os.getpid()
    return f"{socket.gethostname()} {pid} {_process_start(pid) or ''}".strip()


def runner_key(job_id: str) -> str:
    return f"loupe:runner:{job_id}"


def _process_start(pid: int) -> str | None:
    """A live process's start time ("" where /proc is missing), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else ("" if _pid_exists(pid) else None)
    except OSError:
        return None
    # A killed child not yet reaped by its parent (the `python app.py` launcher) is a zombie.
    return None if fields[0] in ("Z", "X") else fields[19]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to another user
    return True


def runner_alive(job_id: str, runner: str) -> bool:
    """Whether the process that took the job still runs it.

    On this host the process itself is looked at (at once, and immune to pid reuse); a process on
    another host keeps a key in Redis alive while it runs (workers/runtime.py), which lapses within
    RUNNER_TTL_S of its death. An unreachable Redis proves nothing, so it counts as alive.
    """
    host, pid, *start = runner.split(" ")
    if host == socket.gethostname():
        now = _process_start(int(pid))
        return now is not None and (not start or not now or now == start[0])
    try:
        return get_redis().get(runner_key(job_id)) == runner.encode()
    except RedisError:
        return True


def _worker_alive(rq_job: RQJob) -> bool:
    """Whether the worker that dequeued this job still exists (before the job took its row).

    A SIGKILLed worker (OOM, power cut) never deregisters: its `rq:worker:<name>` key lives until
    its TTL runs out, so the key alone says "alive" for minutes. A worker on this machine is also
    checked by its pid.
    """
    if not rq_job.worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + rq_job.worker_name, connection=get_redis())
    if worker is None or worker.death_date is not None:
        return False
    if worker.pid and worker.hostname == socket.gethostname():
        return _process_start(worker.pid) is not None
    return True


def _lost_in_rq(job: Job) -> bool:
    """A row no process has taken yet: lost when RQ no longer holds a live job for it."""
    rq_job = _rq_job(job)
    if rq_job is None:
        # start_job commits the row before it enqueues it: a row this young may simply not be in
        # RQ yet (a second start checking for duplicates in that moment must not fail it).
        return utcnow() - job.created_at > ENQUEUE_GRACE
    rq_status = rq_job.get_status(refresh=False)
    return rq_status in ("failed", "stopped", "canceled") or (rq_status == "started" and not _worker_alive(rq_job))


def reconcile(job: Job) -> Job:
    """Mark a queued/running row failed when the process that would run it is gone (worker killed).

    A running row follows the process that took it (the work-horse), not the worker that forked
    it: a horse outliving its killed worker keeps its job running. The update is conditional on
    the state that was judged, so a job that finishes or is taken meanwhile is left alone.
    """
    if not job.status.active:
        return job
    if job.runner:
        if runner_alive(job.id, job.runner):
            return job
    elif not _lost_in_rq(job):
        return job
    runner = Job.runner == job.runner if job.runner else Job.runner.is_(None)
    db.session.execute(
        update(Job).where(Job.id == job.id, Job.status == job.status, runner)
        .values(status=JobStatus.failed, message=INTERRUPTED, finished_at=utcnow())
    )
    db.session.commit()
    db.session.refresh(job)
    return job


def _active(dataset: Dataset | None, *kinds: str):
    """The dataset's queued or running jobs of these kinds (jobs without a dataset for None), oldest first."""
    of_dataset = Job.dataset_id.is_(None) if dataset is None else Job.dataset_id == dataset.id
    return select(Job).where(of_dataset, Job.kind.in_(kinds), Job.status.in_(ACTIVE)).order_by(Job.created_at, Job.id)


def _duplicate(kind: JobKind, args: list, active) -> Job | None:
    """The active job a second start of the kind is answered with, by its duplicates rule."""
    return next((job for job in active if kind.duplicates == ONE_PER_DATASET or list(job.args) == args), None)


def active_jobs(dataset: Dataset | None, *kinds: str) -> list[Job]:
    """The dataset's queued or running jobs of these kinds whose process is alive."""
    return [job for job in db.session.scalars(_active(dataset, *kinds)).all() if reconcile(job).status.active]


def refuse_while_deleting(dataset: Dataset) -> None:
    """Conflict while the dataset's delete job is queued or running: nothing may be added to it."""
    deleting = active_jobs(dataset, DELETE_DATASET.key)
    if deleting:
        raise Conflict("This dataset is being deleted; nothing can be added to it", details={"job_id": deleting[0].id})


def end_jobs_of_deleted_dataset(dataset_id: int, deleting_job_id: str) -> list[str]:
    """Cancel the dataset's queued jobs with the reason and ask its running ones to stop.

    Part of the delete job's transaction; returns the cancelled ids, whose RQ jobs the caller
    cancels (cancel_in_rq) once it has committed.
    """
    others = (Job.dataset_id == dataset_id, Job.id != deleting_job_id)
    cancelled = db.session.scalars(
        update(Job).where(*others, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, finished_at=utcnow(), message=f"Cancelled: {DATASET_DELETED}")
        .returning(Job.id).execution_options(synchronize_session=False)
    ).all()
    db.session.execute(
        update(Job).where(*others, Job.status == JobStatus.running)
        .values(cancel_requested=True, message="Cancelling: the dataset is being deleted")
        .execution_options(synchronize_session=False)
    )
    return list(cancelled)


def cancel_in_rq(job_ids: list[str]) -> None:
    """Take cancelled jobs off RQ's queues, so no worker picks them up (one that already has refuses)."""
    for job_id in job_ids:
        try:
            RQJob.fetch(job_id, connection=get_redis()).cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass


# ---- what people do -----------------------------------------------------------------------


def cancel_job(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop between items."""
    reconcile(job)
    # Both conditional: a job a worker takes (or that finishes) at this very moment is cancelled the
    # cooperative way, or not at all, rather than marked cancelled while it runs.
    cancelled = db.session.execute(
        update(Job).where(Job.id == job.id, Job.status == JobStatus.queued)
        .values(status=JobStatus.cancelled, finished_at=utcnow(), message="Cancelled before it started")
    ).rowcount
    if cancelled:
        db.session.commit()
        cancel_in_rq([job.id])
        db.session.refresh(job)
        return job
    flagged = db.session.execute(
        update(Job).where(Job.id == job.id, Job.status == JobStatus.running).values(cancel_requested=True, message="Cancelling…")
    ).rowcount
    db.session.commit()
    db.session.refresh(job)
    if not flagged:
        raise Conflict(f"The job is already {job.status.value}")
    return job


def rerun_job(job: Job) -> Job:
    """Enqueue a failed or cancelled job again; jobs are idempotent, so it continues where it stopped.

    The page's "Run again" and `POST /api/v1/jobs/{id}/retry` both come here. A run whose process
    is still alive stays running (reconcile), so it is refused rather than run twice at once.
    """
    reconcile(job)
    # Every job works on a dataset: once it is deleted (the row's dataset_id is then NULL), a re-run
    # would only be cancelled again.
    requeued = db.session.execute(
        update(Job).where(Job.id == job.id, Job.status.in_([JobStatus.failed, JobStatus.cancelled]), Job.dataset_id.is_not(None))
        .values(status=JobStatus.queued, cancel_requested=False, finished_at=None, runner=None, message="Waiting for a worker")
    ).rowcount
    db.session.commit()
    db.session.refresh(job)
    if not requeued:
        if job.dataset_id is None:
            raise Conflict("The dataset of this job was deleted; there is nothing to run it on again")
        raise Conflict(f"Only a failed or cancelled job can be run again; this one is {job.status.value}")
    stale = _rq_job(job)
    if stale is not None:
        # The id is enqueued again: drop the dead run's entries in rq's registries first, or rq's
        # StartedJobRegistry.cleanup() would later fail the new run as abandoned.
        stale.delete()
    _enqueue(job)
    return job


def dataset_status(dataset: Dataset) -> str:
    """ready, importing, exporting or deleting, from the dataset's active jobs."""
    statuses = {STATUS_BY_KIND[kind] for kind in db.session.scalars(
        select(Job.kind).distinct().where(Job.dataset_id == dataset.id, Job.kind.in_(STATUS_BY_KIND), Job.status.in_(ACTIVE))
    )}
    return next((status for status in DATASET_STATUSES if status in statuses), READY)


def recent_jobs(user: User, dataset: Dataset | None = None, limit: int = 50) -> list[Job]:
    """Jobs a person may see, newest first: a dataset's (a labeler: those they started), or else their own."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if dataset is not None:
        query = visible_jobs(query, user, dataset)
    elif not user.is_admin:
        query = query.where(Job.user_id == user.id)
    return [reconcile(job) for job in db.session.scalars(query)]
