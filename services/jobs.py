"""Job rows: create-and-enqueue, cancel, re-run, and reconciling rows whose worker died."""

import uuid

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import select

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
    return bool(rq_job.worker_name) and bool(get_redis().exists(f"rq:worker:{rq_job.worker_name}"))


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
    if not job.status.active:
        raise Conflict(f"The job is already {job.status.value}")
    if job.status == JobStatus.queued:
        rq_job = _rq_job(job)
        if rq_job is not None:
            rq_job.cancel()
        job.status, job.finished_at, job.message = JobStatus.cancelled, utcnow(), "Cancelled before it started"
    else:
        job.cancel_requested = True
        job.message = "Cancelling…"
    db.session.commit()
    return job


def rerun_job(job: Job) -> Job:
    """Enqueue a failed or cancelled job again; jobs are idempotent, so it continues where it stopped."""
    reconcile(job)
    if job.status.active or job.status == JobStatus.finished:
        raise Conflict(f"Only a failed or cancelled job can be run again; this one is {job.status.value}")
    job.status, job.cancel_requested, job.finished_at = JobStatus.queued, False, None
    job.message = "Waiting for a worker"
    db.session.commit()
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
