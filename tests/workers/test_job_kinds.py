"""Job kinds declared once (services/job_kinds.py), how start_job answers a second start, how a job
row is taken (a cancelled one never starts), and progress that never commits the body's work."""

import importlib
from dataclasses import replace

import pytest
from rq.job import Job as RQJob
from sqlalchemy import func, select, update

from core.extensions import db
from core.queues import QUEUES, get_redis
from models import Dataset, Job, JobStatus, Label
from services import datasets as datasets_service
from services import jobs as jobs_service
from services import labels as labels_service
from services.job_kinds import ALLOW, CLEANUP_EXPORTS, EXPORT, KINDS, REFRESH_COUNTERS, JobKind
from tests.factories import image_bytes, make_dataset, make_user
from tests.workers.helpers import FAILING, lose_in_rq, read_job, upload_files
from workers.runtime import job_run


@pytest.fixture
def owner(app_ctx):
    return make_user()


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Kinds")


def _jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(Job))


# ---- the table -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=list(KINDS))
def test_every_kind_names_a_job_body_and_a_queue_the_workers_listen_on(kind):
    module, name = kind.func.rsplit(".", 1)
    assert module.startswith("workers.") and callable(getattr(importlib.import_module(module), name))
    assert kind.queue in QUEUES
    assert len(kind.key) <= Job.kind.type.length and len(kind.func) <= Job.func.type.length


@pytest.mark.parametrize("field, value", [("queue", "nightly"), ("dataset_status", "busy"), ("duplicates", "twice")])
def test_a_kind_with_an_unknown_queue_status_or_rule_is_refused_where_it_is_declared(field, value):
    declared = {"key": "check", "func": "workers.x.y", "queue": "datasets", "dataset_status": None, "duplicates": ALLOW}
    with pytest.raises(ValueError, match=value):
        JobKind(**{**declared, field: value})


def test_exports_run_on_a_queue_of_their_own_that_workers_listen_on(owner, dataset, run_jobs):
    assert EXPORT.queue == CLEANUP_EXPORTS.queue == "exports"
    job = jobs_service.start_job(replace(FAILING, queue="exports"), "domain", dataset=dataset, user=owner)
    assert job.queue == "exports"
    run_jobs()
    assert (db.session.get(Job, job.id).status, db.session.get(Job, job.id).attempts) == (JobStatus.failed, 1)  # it ran


# ---- a second start ------------------------------------------------------------------------


def test_same_args_answers_the_active_job_started_with_the_same_arguments(owner, dataset):
    cat, dog = (labels_service.create_label(dataset, name=name) for name in ("cat", "dog"))
    first = labels_service.request_delete(dataset, cat, owner)
    assert labels_service.request_delete(dataset, cat, owner).id == first.id
    assert labels_service.request_delete(dataset, dog, owner).id != first.id
    assert _jobs() == 2


def test_one_per_dataset_answers_the_dataset_s_active_job(owner, dataset):
    other = make_dataset(owner, name="Other")
    deleting = datasets_service.request_delete(dataset, owner)
    assert datasets_service.request_delete(dataset, owner).id == deleting.id
    assert datasets_service.request_delete(other, owner).id != deleting.id
    assert _jobs() == 2


def test_one_per_dataset_without_a_dataset_runs_one_at_a_time(owner):
    first = jobs_service.start_job(CLEANUP_EXPORTS, dataset=None, user=owner)
    assert jobs_service.start_job(CLEANUP_EXPORTS, dataset=None, user=None).id == first.id
    assert _jobs() == 1


def test_allow_starts_a_second_job(owner, dataset):
    first = datasets_service.request_refresh_counters(dataset, owner)
    assert datasets_service.request_refresh_counters(dataset, owner).id != first.id
    assert _jobs() == 2


def test_an_active_job_whose_worker_is_gone_answers_nothing_a_new_one_starts(owner, dataset):
    label = labels_service.create_label(dataset, name="cat")
    lost = labels_service.request_delete(dataset, label, owner)
    lose_in_rq(lost.id)

    again = labels_service.request_delete(dataset, label, owner)

    assert again.id != lost.id and again.status == JobStatus.queued
    assert db.session.get(Job, lost.id).status == JobStatus.failed


def test_a_row_committed_but_not_yet_enqueued_is_answered_not_failed(owner, dataset):
    # start_job commits the row, then enqueues it: a second start in between finds no RQ job yet.
    label = labels_service.create_label(dataset, name="cat")
    first = labels_service.request_delete(dataset, label, owner)
    RQJob.fetch(first.id, connection=get_redis()).delete()

    again = labels_service.request_delete(dataset, label, owner)

    assert again.id == first.id and db.session.get(Job, first.id).status == JobStatus.queued


def test_a_finished_job_answers_nothing(owner, dataset, run_jobs):
    label = labels_service.create_label(dataset, name="cat")
    done = labels_service.request_delete(dataset, labels_service.create_label(dataset, name="dog"), owner)
    run_jobs()
    assert db.session.get(Job, done.id).status == JobStatus.finished
    assert labels_service.request_delete(dataset, label, owner).id != done.id


# ---- the dataset's status ------------------------------------------------------------------


def test_the_dataset_status_follows_its_active_jobs(owner, dataset):
    assert jobs_service.dataset_status(dataset) == "ready"
    datasets_service.request_refresh_counters(dataset, owner)
    assert jobs_service.dataset_status(dataset) == "ready"
    _, importing = upload_files(dataset, owner, [("a.png", image_bytes((16, 12), "PNG"))])
    assert jobs_service.dataset_status(dataset) == "importing"
    exporting = jobs_service.start_job(EXPORT, 0, dataset=dataset, user=owner)
    assert jobs_service.dataset_status(dataset) == "exporting"
    deleting = datasets_service.request_delete(dataset, owner)
    assert jobs_service.dataset_status(dataset) == "deleting"

    for job in (deleting, exporting):
        jobs_service.cancel_job(job)
    assert jobs_service.dataset_status(dataset) == "importing"
    jobs_service.cancel_job(importing)
    assert jobs_service.dataset_status(dataset) == "ready"


# ---- taking the row ------------------------------------------------------------------------


def test_a_job_cancelled_while_queued_never_starts(owner, dataset, run_jobs):
    job = datasets_service.request_refresh_counters(dataset, owner)
    jobs_service.cancel_job(job)
    run_jobs()
    row = db.session.get(Job, job.id)
    assert (row.status, row.attempts, row.started_at, row.runner) == (JobStatus.cancelled, 0, None, None)


def test_a_row_cancelled_after_the_worker_took_the_job_from_the_queue_never_starts(owner, dataset, run_jobs):
    job = datasets_service.request_refresh_counters(dataset, owner)
    # Cancelled in the database only: RQ still hands the job to a worker, as when the cancel
    # commits between a worker's dequeue and its claim of the row.
    db.session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.cancelled))
    db.session.execute(update(Dataset).where(Dataset.id == dataset.id).values(image_count=7))
    db.session.commit()

    run_jobs()

    row = db.session.get(Job, job.id)
    assert (row.status, row.attempts, row.started_at, row.runner) == (JobStatus.cancelled, 0, None, None)
    assert db.session.get(Dataset, dataset.id).image_count == 7  # the body never ran


# ---- progress ------------------------------------------------------------------------------


def _queued_row(dataset, owner) -> str:
    """A queued job row the tests below run a body of their own for, through the real job_run()."""
    return jobs_service.start_job(REFRESH_COUNTERS, dataset.id, dataset=dataset, user=owner, total=2).id


def _labels(dataset) -> set[str]:
    return set(db.session.scalars(select(Label.name).where(Label.dataset_id == dataset.id)))


@pytest.mark.parametrize("flushed", [True, False], ids=["written", "pending"])
def test_progress_never_commits_the_body_s_work(owner, dataset, flushed):
    job_id = _queued_row(dataset, owner)
    with pytest.raises(RuntimeError):
        with job_run(job_id) as run:
            db.session.add(Label(dataset_id=dataset.id, name="half-done"))
            run.job.result = {"checkpoint": 1}  # the job row too, as a body's checkpoint does
            if flushed:
                # In the body's transaction: SQLite's write lock, and PostgreSQL's lock on the job row, are the body's now.
                db.session.flush()
            run.progress(1, 2, "Half way", force=True)  # must neither commit the work nor wait on those locks
            assert read_job(job_id)["done"] == 0  # nor show work that is not stored
            raise RuntimeError("the body fails before it commits")

    db.session.rollback()
    assert _labels(dataset) == set()
    row = read_job(job_id)
    assert (row["status"], row["done"]) == ("failed", 0)
    assert db.session.get(Job, job_id).result == {}


def test_progress_of_committed_work_is_written_at_once_and_otherwise_at_the_body_s_commit(owner, dataset):
    job_id = _queued_row(dataset, owner)
    with job_run(job_id) as run:
        db.session.add(Label(dataset_id=dataset.id, name="one"))
        db.session.commit()
        run.progress(1, 3, "One", force=True)
        assert (read_job(job_id)["done"], read_job(job_id)["message"]) == (1, "One")

        db.session.add(Label(dataset_id=dataset.id, name="two"))
        db.session.flush()
        run.progress(2, message="Two", force=True)
        assert read_job(job_id)["done"] == 1
        db.session.commit()
        assert (read_job(job_id)["done"], read_job(job_id)["message"]) == (2, "Two")

        run.progress(3, message="Three")  # not forced: written at the latest with the row's last commit

    row = read_job(job_id)
    assert (row["status"], row["done"], row["total"], row["message"]) == ("finished", 3, 3, "Three")
    assert _labels(dataset) == {"one", "two"}


def test_a_cancel_request_stops_the_body_at_its_next_progress_and_keeps_only_committed_work(owner, dataset):
    job_id = _queued_row(dataset, owner)
    with job_run(job_id) as run:
        db.session.add(Label(dataset_id=dataset.id, name="one"))
        db.session.commit()
        run.progress(1, force=True)
        with db.engine.begin() as page:  # a person presses Cancel
            page.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
        db.session.add(Label(dataset_id=dataset.id, name="two"))
        db.session.flush()
        run.progress(2, force=True)
        raise AssertionError("progress() did not stop the cancelled job")

    row = read_job(job_id)
    assert (row["status"], row["done"], row["message"]) == ("cancelled", 1, "Cancelled after 1 of 2")
    assert _labels(dataset) == {"one"}
