"""What a dataset's deletion and its labels' delete/merge jobs refuse meanwhile, and what becomes of the jobs behind them.

Uploads (web and API) into a dataset whose delete job is active and label reorders while a label
job is active answer 409; jobs queued behind a deletion end cancelled with the reason; the
interleavings a check cannot rule out (the deletion commits between the check and the write) end
in the same 409, never a 500.
"""

import hashlib
import io

import pytest
from rq.job import Job as RQJob
from rq.serializers import JSONSerializer
from sqlalchemy import delete, func, select, update

from core.errors import Conflict
from core.extensions import db
from core.queues import get_queue, get_redis
from core.storage import get_storage
from models import Dataset, ImportItem, Job, JobStatus, Upload
from services import datasets as datasets_service
from services import images as images_service
from services import jobs as jobs_service
from services import labels as labels_service
from services.job_kinds import IMPORT, MERGE_LABELS, REFRESH_COUNTERS
from tests.api.support import jpegs, post_files
from tests.conftest import BurstWorker
from tests.factories import image_bytes, make_dataset, make_user, token_for
from tests.support import sign_in
from tests.workers.helpers import read_job, slow_pngs, upload_files, wait_for

HX = {"HX-Request": "true"}


@pytest.fixture
def owner(app_ctx):
    return make_user()


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Doomed", type="classification")


def _run_queue(name: str) -> None:
    """A real RQ worker on one queue only, as when the dataset queue's worker is ahead of the imports'."""
    BurstWorker([get_queue(name)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    db.session.expire_all()
    db.session.commit()


def _uploads(dataset_id: int) -> tuple[int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Upload).where(Upload.dataset_id == dataset_id)),
        db.session.scalar(select(func.count()).select_from(ImportItem).join(Upload).where(Upload.dataset_id == dataset_id)),
    )


# ---- uploads into a dataset being deleted ---------------------------------------------------


def test_every_upload_path_into_a_dataset_being_deleted_is_a_conflict(client, owner, dataset):
    sign_in(client, owner)
    early = client.post(f"/datasets/{dataset.id}/upload/batches", headers={"Accept": "application/json"}).get_json()
    datasets_service.request_delete(dataset, owner)
    before = _uploads(dataset.id)
    files = {"files": [(io.BytesIO(image_bytes(seed=1)), "a.jpg")]}
    base = f"/datasets/{dataset.id}/upload"

    answers = {
        "form": client.post(f"{base}/", data=dict(files), content_type="multipart/form-data"),
        "new batch": client.post(f"{base}/batches", headers={"Accept": "application/json"}),
        "file into an earlier batch": client.post(
            early["files_url"], data={"files": [(io.BytesIO(image_bytes(seed=2)), "b.jpg")]},
            content_type="multipart/form-data", headers={"Accept": "application/json"},
        ),
        "finish an earlier batch": client.post(early["finish_url"], headers={"Accept": "application/json"}),
        "api": post_files(client, dataset.id, token_for(owner), jpegs(2)),
    }

    for path, response in answers.items():
        assert response.status_code == 409, (path, response.status_code, response.get_data(as_text=True)[:300])
        assert "being deleted" in response.get_data(as_text=True), path
    assert _uploads(dataset.id) == before, "nothing was recorded for the refused uploads"


def test_a_file_whose_dataset_is_deleted_while_it_is_sent_is_a_conflict_and_its_bytes_go(owner, dataset):
    upload = images_service.begin_upload(dataset, owner)
    with db.engine.begin() as other:  # the delete job's last step commits while the file streams in
        other.execute(delete(Dataset).where(Dataset.id == dataset.id))
    data = image_bytes(seed=5)

    with pytest.raises(Conflict, match="deleted while the files were being sent"):
        images_service.add_file(upload, "late.jpg", io.BytesIO(data))

    assert not get_storage().exists(hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("kind", [IMPORT, REFRESH_COUNTERS, MERGE_LABELS], ids=lambda kind: kind.key)
def test_a_job_started_on_a_dataset_deleted_meanwhile_is_a_conflict(owner, dataset, kind):
    with db.engine.begin() as other:  # the deletion commits between the check and the job's row
        other.execute(delete(Dataset).where(Dataset.id == dataset.id))
    with pytest.raises(Conflict, match="The dataset was deleted"):
        jobs_service.start_job(kind, dataset.id, dataset=dataset, user=owner)
    assert db.session.scalar(select(func.count()).select_from(Job)) == 0


# ---- the jobs behind a deletion ------------------------------------------------------------


def test_jobs_queued_behind_a_deletion_end_cancelled_with_the_reason_and_never_run(owner, dataset, run_jobs):
    _, import_job = upload_files(dataset, owner, [(name, data) for data, name in jpegs(3)])
    label = labels_service.create_label(dataset, name="cat")
    label_job = labels_service.request_delete(dataset, label, owner)
    delete_job = datasets_service.request_delete(dataset, owner)

    # New work on the dataset is refused from now on.
    with pytest.raises(Conflict, match="being deleted"):
        datasets_service.request_refresh_counters(dataset, owner)

    _run_queue("datasets")  # the label job, then the deletion; the import still waits in its queue

    assert read_job(delete_job.id)["status"] == "finished"
    assert read_job(label_job.id)["status"] == "finished"
    cancelled = read_job(import_job.id)
    assert cancelled["status"] == "cancelled" and cancelled["message"] == "Cancelled: the dataset was deleted"
    assert RQJob.fetch(import_job.id, connection=get_redis()).get_status() == "canceled"
    run_jobs()
    assert read_job(import_job.id)["status"] == "cancelled"


@pytest.mark.parametrize("status", [JobStatus.cancelled, JobStatus.finished, JobStatus.failed])
def test_a_worker_that_picks_up_a_job_no_longer_queued_does_not_run_it(owner, dataset, run_jobs, status):
    _, job = upload_files(dataset, owner, [(name, data) for data, name in jpegs(2)])
    # Still in RQ's queue (the cancel did not reach it, or the worker had already taken it).
    db.session.execute(update(Job).where(Job.id == job.id).values(status=status, message="ended elsewhere"))
    db.session.commit()

    run_jobs()

    row = read_job(job.id)
    assert row["status"] == status.value and row["message"] == "ended elsewhere"
    assert db.session.get(Job, job.id).attempts == 0
    assert db.session.get(Dataset, dataset.id).image_count == 0


def test_an_import_running_while_its_dataset_is_deleted_ends_cancelled_with_the_reason(owner, dataset, start_worker, monkeypatch):
    monkeypatch.setenv("LOUPE_IMPORT_THREADS", "1")
    _, job = upload_files(dataset, owner, slow_pngs(150))
    start_worker("imports")
    wait_for(lambda: read_job(job.id)["done"] > 0, timeout=30, what="the import to commit some progress")
    delete_job = datasets_service.request_delete(dataset, owner)

    _run_queue("datasets")

    assert read_job(delete_job.id)["status"] == "finished"
    ended = wait_for(lambda: (row := read_job(job.id))["status"] != "running" and row, timeout=30, what="the import to stop")
    assert ended["status"] == "cancelled", ended
    assert ended["message"].startswith("Cancelled after ") and ended["message"].endswith(": the dataset was deleted")


# ---- label reorders while labels are deleted or merged -------------------------------------


def _label_job(dataset, owner, kind: str) -> Job:
    a, b = (labels_service.create_label(dataset, name=name) for name in ("a", "b"))
    if kind == "delete":
        return labels_service.request_delete(dataset, a, owner)
    return labels_service.request_merge(dataset, [a.id, b.id], "ab", None, owner)


def _as_running(job: Job) -> None:
    db.session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.running, runner=jobs_service.this_process()))
    db.session.commit()


@pytest.mark.parametrize("state", ["queued", "running"])
@pytest.mark.parametrize("kind", ["delete", "merge"])
def test_reordering_labels_while_a_label_job_is_active_is_a_conflict_on_every_path(client, owner, dataset, run_jobs, kind, state):
    job = _label_job(dataset, owner, kind)
    labels_service.create_label(dataset, name="c")
    if state == "running":
        _as_running(job)
    sign_in(client, owner)
    order = [label.id for label in reversed(labels_service.list_labels(dataset))]
    positions = {label.id: label.position for label in labels_service.list_labels(dataset)}

    answers = {
        "api": client.post(f"/api/v1/datasets/{dataset.id}/labels/reorder", json={"label_ids": order}, headers=token_for(owner)),
        "page": client.post(f"/datasets/{dataset.id}/labels/reorder", data={"label_ids": order}),
        "htmx drag": client.post(f"/datasets/{dataset.id}/labels/reorder", data={"label_ids": order}, headers=HX),
        "htmx button": client.post(f"/datasets/{dataset.id}/labels/reorder", data={"label_id": order[0], "direction": "up"}, headers=HX),
    }

    for path, response in answers.items():
        assert response.status_code == 409, (path, response.status_code)
        assert "being deleted or merged" in response.get_data(as_text=True), path
    db.session.expire_all()
    assert {label.id: label.position for label in labels_service.list_labels(dataset)} == positions

    if state == "running":  # its worker died: the job no longer blocks anything
        db.session.execute(update(Job).where(Job.id == job.id).values(runner=f"{jobs_service.this_process().split()[0]} 4194304 1"))
        db.session.commit()
    else:
        run_jobs()
    order = [label.id for label in reversed(labels_service.list_labels(dataset))]
    response = client.post(f"/api/v1/datasets/{dataset.id}/labels/reorder", json={"label_ids": order}, headers=token_for(owner))
    assert response.status_code == 200, response.get_json()
    assert [label["id"] for label in response.get_json()] == order
