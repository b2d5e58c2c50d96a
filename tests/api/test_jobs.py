"""Jobs through the API: poll, retry (POST /api/v1/jobs/{id}/retry) and what a failed job tells a person."""

import logging
import re

import pytest
from rq.serializers import JSONSerializer
from sqlalchemy import update

from core.extensions import db
from core.queues import get_queue, get_redis
from models import Dataset, Job, JobStatus
from services import jobs as jobs_service
from tests.factories import make_dataset, make_user, token_for
from tests.support import sign_in
from tests.workers.helpers import FAILING, FAILURES, lose_in_rq, upload_files
from tests.api.support import jpegs
from tests.conftest import BurstWorker

HX = {"HX-Request": "true"}
# What must never reach a person: a traceback, server paths, source files.
LEAKS = re.compile(r"Traceback|File \"|/srv/|/home/|/usr/|/tmp/|\.py\b|no_such_table")


@pytest.fixture
def owner(app_ctx):
    return make_user()


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Jobs")


def _import(dataset, owner) -> Job:
    _, job = upload_files(dataset, owner, [(name, data) for data, name in jpegs(2)])
    return job


def _retry(client, job_id: str, user):
    return client.post(f"/api/v1/jobs/{job_id}/retry", headers=token_for(user))


# ---- a failed job's message ---------------------------------------------------------------


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failed_job_shows_a_message_never_a_traceback_or_server_paths(client, owner, dataset, run_jobs, caplog, failure):
    job = jobs_service.start_job(FAILING, failure, dataset=dataset, user=owner)
    with caplog.at_level(logging.ERROR, logger="loupe.jobs"):
        run_jobs()

    row = db.session.get(Job, job.id)
    assert row.status == JobStatus.failed
    assert "worker's log" in row.message and "Run it again" in row.message
    sign_in(client, owner)
    shown = {
        "row": row.message + repr(row.result),
        "api": client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_data(as_text=True),
        "page": client.get(f"/jobs/{job.id}").get_data(as_text=True),
        "partial": client.get(f"/jobs/{job.id}", headers=HX).get_data(as_text=True),
    }
    for where, text in shown.items():
        assert not LEAKS.search(text), (where, LEAKS.search(text).group(), text[:2000])
    assert "traceback" not in client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json()["result"]
    # The log keeps what the person is spared.
    assert "Traceback" in caplog.text and job.id in caplog.text


def test_a_traceback_an_older_version_kept_in_a_job_s_result_is_never_shown(client, owner, dataset):
    trace = 'Traceback (most recent call last):\n  File "/srv/loupe/workers/imports.py", line 48, in import_upload\nKeyError: 3'
    job = Job(
        id="import-from-an-older-version", kind="import", dataset_id=dataset.id, user_id=owner.id, status=JobStatus.failed,
        message="The import failed; the worker's log has the details. Run it again to continue.", func="workers.imports.import_upload",
        queue="imports", args=[], result={"imported": 3, "traceback": trace},
    )
    db.session.add(job)
    db.session.commit()
    sign_in(client, owner)
    body = client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner))
    assert body.status_code == 200 and body.get_json()["result"] == {"imported": 3}
    shown = {
        "api": body.get_data(as_text=True),
        "page": client.get(f"/jobs/{job.id}").get_data(as_text=True),
        "partial": client.get(f"/jobs/{job.id}", headers=HX).get_data(as_text=True),
        "list": client.get("/jobs/").get_data(as_text=True),
    }
    for where, text in shown.items():
        assert job.id in text and not LEAKS.search(text), (where, text[:2000])
    assert db.session.get(Job, job.id).result["traceback"] == trace  # the row is left as it was


def test_a_job_that_fails_on_a_domain_error_shows_that_error_s_message(client, owner, dataset, run_jobs):
    job = jobs_service.start_job(FAILING, "domain", dataset=dataset, user=owner)
    run_jobs()
    body = client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json()
    assert body["status"] == "failed" and body["message"] == "The manifest's third line has no URL"


# ---- retry --------------------------------------------------------------------------------


def _interrupted(client, job, owner):
    lose_in_rq(job.id)  # its worker died and Redis lost it


def _cancelled(client, job, owner):
    assert client.post(f"/api/v1/jobs/{job.id}/cancel", headers=token_for(owner)).get_json()["status"] == "cancelled"


def _failed(client, job, owner):
    db.session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.failed))
    db.session.commit()


@pytest.mark.parametrize("end", [_interrupted, _cancelled, _failed], ids=["interrupted", "cancelled", "failed"])
def test_retrying_an_ended_job_runs_it_again_to_the_end(client, owner, dataset, run_jobs, end):
    job = _import(dataset, owner)
    end(client, job, owner)

    response = _retry(client, job.id, owner)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["status"] == "queued" and response.get_json()["id"] == job.id
    run_jobs()
    body = client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json()
    assert body["status"] == "finished" and body["result"]["imported"] == 2
    assert db.session.get(Dataset, dataset.id).image_count == 2


def _queued(job, run_jobs):
    return "queued"


def _running(job, run_jobs):
    # As a live worker on this machine leaves it: running, taken by a process that exists.
    db.session.execute(update(Job).where(Job.id == job.id).values(status=JobStatus.running, runner=jobs_service.this_process()))
    db.session.commit()
    return "running"


def _finished(job, run_jobs):
    run_jobs()
    return "finished"


@pytest.mark.parametrize("state", [_queued, _running, _finished], ids=["queued", "running", "finished"])
def test_retrying_a_queued_running_or_finished_job_is_a_conflict_that_changes_nothing(client, owner, dataset, run_jobs, state):
    job = _import(dataset, owner)
    status = state(job, run_jobs)
    before = client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json()

    response = _retry(client, job.id, owner)

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "conflict" and error["message"] == f"Only a failed or cancelled job can be run again; this one is {status}"
    assert client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json() == before


def test_retrying_a_job_cancelled_by_its_dataset_s_deletion_is_a_conflict(client, owner, dataset, run_jobs):
    job = _import(dataset, owner)
    assert client.delete(f"/api/v1/datasets/{dataset.id}", headers=token_for(owner)).status_code == 202
    # The deletion's worker gets there before the imports' one: the import is cancelled unrun.
    BurstWorker([get_queue("datasets")], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    db.session.expire_all()
    assert client.get(f"/api/v1/jobs/{job.id}", headers=token_for(owner)).get_json()["status"] == "cancelled"

    for _ in range(2):
        response = _retry(client, job.id, owner)
        assert response.status_code == 409
        assert response.get_json()["error"]["message"] == "The dataset of this job was deleted; there is nothing to run it on again"
    db.session.expire_all()
    assert db.session.get(Job, job.id).status == JobStatus.cancelled


def test_two_retries_at_once_enqueue_the_job_once(client, owner, dataset, run_jobs):
    job = _import(dataset, owner)
    _interrupted(client, job, owner)
    answers = sorted(_retry(client, job.id, owner).status_code for _ in range(3))
    assert answers == [202, 409, 409]
    run_jobs()
    assert db.session.get(Job, job.id).attempts == 1


@pytest.mark.parametrize("job_id", ["import-doesnotexist", "x" * 300, "%C3%A9t%C3%A9", "1", "import-..%2F..%2Fetc"])
def test_retrying_an_unknown_job_is_not_found(client, owner, job_id):
    response = client.post(f"/api/v1/jobs/{job_id}/retry", headers=token_for(owner))
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
