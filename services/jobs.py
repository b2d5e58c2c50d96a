"""Job rows: create-and-enqueue, cancel, re-run, and reconciling rows whose worker died."""

import os
import socket
import uuid

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import select, update

from core.errors import Conflict, Unavailable
from core.extensions import db
from core.queues import enqueue, get_redis
from models import Dataset, Job, JobStatus, User
from models.base import utcnow

# What a running job of each kind makes the dataset's status (SPEC: ready, importing, exporting, deleting).
STATUS_BY_KIND = {"import": "importing", "delete_dataset": "deleting", "refresh_counters": "ready", "export": "exporting"}


def start_job(kind: str, func: str, *args, queue: str, dataset: Dataset | None, user: User | None, total: int = 0, message: str = "Waiting for a worker") -> Job:
    """Commit a job row, then enqueue it: a worker never starts before its row exists."""
    job = Job(
        id=f"{kind.replace('_', '-')}-{uuid.uuid4().hex[:16]}",
        kind=kind, dataset_id=dataset.id if dataset else None, user_id=user.id if user else None,
        total=total, message=message, func=func, queue=queue, args=list(args),
    )
    db.session.add(job)
    db.session.commit()
    _enqueue(job)
    return job


def _enqueue(job: Job) -> None:
    try:
        enqueue(job.queue, job.func, job.id, *job.args, job_id=job.id)
    except RedisError as exc:
        # No silent synchronous fallback: the job is recorded as failed and can be re-run.
        job.status, job.message, job.finished_at = JobStatus.failed, f"Could not reach Redis: {exc}", utcnow()
        db.session.commit()
        raise Unavailable("The job queue (Redis) is not reachable; the job was saved and can be re-run") from exc


def _rq_job(job: Job) -> RQJob | None:
    try:
        return RQJob.fetch(job.id, connection=get_redis())
    except NoSuchJobError:
        return None


def _worker_alive(rq_job: RQJob) -> bool:
    """Whether the worker that started this job still exists.

    A SIGKILLed worker (OOM, power cut) never deregisters: its `rq:worker:<name>` key lives until
    its TTL runs out (job_monitoring_interval + 60 s while busy, worker_ttl + 60 s otherwise), so
    the key alone says "alive" for minutes. A worker on this machine is also checked by its pid.
    """
    if not rq_job.worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + rq_job.worker_name, connection=get_redis())
    if worker is None or worker.death_date is not None:
        return False
    if worker.pid and worker.hostname == socket.gethostname():
        return _pid_alive(worker.pid)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, but belongs to another user
    try:  # a killed child not yet reaped by its parent (the `python app.py` launcher) is a zombie
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def reconcile(job: Job) -> Job:
    """Mark a queued/running row failed when RQ no longer has a live job for it (worker killed)."""
    if not job.status.active:
        return job
    rq_job = _rq_job(job)
    rq_status = rq_job.get_status(refresh=False) if rq_job else None
    lost = (
        rq_job is None
        or rq_status in ("failed", "stopped", "canceled")
        or (rq_status == "started" and not _worker_alive(rq_job))
    )
    if lost:
        job.status = JobStatus.failed
        job.message = "The worker stopped while running this job. Run it again to continue where it stopped."
        job.finished_at = utcnow()
        db.session.commit()
    return job


def cancel_job(job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop between items."""
    reconcile(job)
    if job.status == JobStatus.queued:
        rq_job = _rq_job(job)
        if rq_job is not None:
            rq_job.cancel()
        job.status, job.finished_at, job.message = JobStatus.cancelled, utcnow(), "Cancelled before it started"
        db.session.commit()
        return job
    # Conditional, so a job that finishes at this very moment is not left flagged "Cancelling…".
    flagged = db.session.execute(
        update(Job).where(Job.id == job.id, Job.status == JobStatus.running).values(cancel_requested=True, message="Cancelling…")
    ).rowcount
    db.session.commit()
    db.session.refresh(job)
    if not flagged:
        raise Conflict(f"The job is already {job.status.value}")
    return job


def rerun_job(job: Job) -> Job:
    """Enqueue a failed or cancelled job again; jobs are idempotent, so it continues where it stopped."""
    reconcile(job)
    if job.status.active or job.status == JobStatus.finished:
        raise Conflict(f"Only a failed or cancelled job can be run again; this one is {job.status.value}")
    job.status, job.cancel_requested, job.finished_at = JobStatus.queued, False, None
    job.message = "Waiting for a worker"
    db.session.commit()
    stale = _rq_job(job)
    if stale is not None:
        # The id is enqueued again: drop the dead run's entries in rq's registries first, or rq's
        # StartedJobRegistry.cleanup() would later fail the new run as abandoned.
        stale.delete()
    _enqueue(job)
    return job


def dataset_status(dataset: Dataset) -> str:
    """ready, importing, exporting or deleting, from the dataset's active jobs."""
    kinds = db.session.scalars(
        select(Job.kind).where(Job.dataset_id == dataset.id, Job.status.in_([JobStatus.queued, JobStatus.running]))
    ).all()
    for kind in ("delete_dataset", "export", "import"):
        if kind in kinds:
            return STATUS_BY_KIND[kind]
    return "ready"


def recent_jobs(user: User, dataset: Dataset | None = None, limit: int = 50) -> list[Job]:
    """Jobs a person may see, newest first: their own, plus the dataset's when one is given."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit)
    if dataset is not None:
        query = query.where(Job.dataset_id == dataset.id)
    elif not user.is_admin:
        query = query.where(Job.user_id == user.id)
    return [reconcile(job) for job in db.session.scalars(query)]
