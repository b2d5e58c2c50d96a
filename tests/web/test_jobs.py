"""Jobs: the list, one job's progress, cancel (queued → cancelled, gone from RQ) and run again."""

import pytest
from rq.job import Job as RQJob

from core.extensions import db
from core.queues import get_queue, get_redis
from models import Dataset, Job, JobStatus
from tests.factories import image_bytes, make_dataset, make_user
from tests.support import job_id_from, member, sign_in, upload
from tests.workers.helpers import lose_in_rq

HX = {"HX-Request": "true"}


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Jobs")


@pytest.fixture
def queued_import(client, dataset) -> Job:
    response = upload(client, dataset, [(image_bytes(seed=1), "a.jpg"), (image_bytes(seed=2), "b.jpg")])
    return db.session.get(Job, job_id_from(response))


def test_jobs_list_shows_my_jobs_as_a_page_or_a_partial(client, queued_import):
    page = client.get("/jobs/")
    assert page.status_code == 200 and f'data-job-id="{queued_import.id}"' in page.get_data(as_text=True)
    assert 'hx-trigger="every 2s"' in page.get_data(as_text=True), "the list polls while a job is active"
    partial = client.get("/jobs/", headers=HX)
    assert "<html" not in partial.get_data(as_text=True) and queued_import.id in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]


def test_jobs_list_does_not_show_other_peoples_jobs(client, new_client, queued_import):
    other = new_client()
    sign_in(other, make_user())
    assert queued_import.id not in other.get("/jobs/").get_data(as_text=True)


def test_job_page_shows_progress_and_polls_until_it_ends(client, queued_import, run_jobs):
    body = client.get(f"/jobs/{queued_import.id}").get_data(as_text=True)
    assert 'data-job-status="queued"' in body and 'hx-trigger="every 1s"' in body and 'id="job-count">0 / 2<' in body
    run_jobs()
    partial = client.get(f"/jobs/{queued_import.id}", headers=HX).get_data(as_text=True)
    assert 'data-job-status="finished"' in partial and "every 1s" not in partial and 'id="job-count">2 / 2<' in partial
    assert "<html" not in partial


def test_unknown_job_is_not_found(client, owner):
    assert client.get("/jobs/import-doesnotexist").status_code == 404


def test_cancelling_a_queued_job_marks_it_cancelled_and_removes_it_from_rq(client, queued_import, run_jobs):
    queue = get_queue("imports")
    assert queued_import.id in queue.job_ids
    response = client.post(f"/jobs/{queued_import.id}/cancel", headers=HX)
    assert response.status_code == 200
    assert 'data-job-status="cancelled"' in response.get_data(as_text=True)
    assert db.session.get(Job, queued_import.id).status == JobStatus.cancelled
    assert queued_import.id not in queue.job_ids
    assert RQJob.fetch(queued_import.id, connection=get_redis()).get_status() == "canceled"
    run_jobs()
    assert db.session.get(Job, queued_import.id).status == JobStatus.cancelled, "a worker must not run a cancelled job"
    assert db.session.get(Dataset, queued_import.dataset_id).image_count == 0


def test_running_a_cancelled_job_again_completes_it(client, queued_import, run_jobs):
    client.post(f"/jobs/{queued_import.id}/cancel")
    response = client.post(f"/jobs/{queued_import.id}/rerun", headers=HX)
    assert response.status_code == 200
    assert 'data-job-status="queued"' in response.get_data(as_text=True)
    run_jobs()
    job = db.session.get(Job, queued_import.id)
    assert job.status == JobStatus.finished and job.result["imported"] == 2
    assert db.session.get(Dataset, job.dataset_id).image_count == 2


def test_cancelling_a_finished_job_is_a_conflict(client, queued_import, run_jobs):
    run_jobs()
    response = client.post(f"/jobs/{queued_import.id}/cancel", headers=HX)
    assert response.status_code == 409
    assert "already finished" in response.get_data(as_text=True)
    assert db.session.get(Job, queued_import.id).status == JobStatus.finished


def test_running_a_finished_job_again_is_a_conflict(client, queued_import, run_jobs):
    run_jobs()
    response = client.post(f"/jobs/{queued_import.id}/rerun")
    assert response.status_code == 409
    assert "Only a failed or cancelled job" in response.get_data(as_text=True)


def test_a_job_whose_rq_job_vanished_shows_as_failed_and_can_run_again(client, queued_import, run_jobs):
    lose_in_rq(queued_import.id)
    body = client.get(f"/jobs/{queued_import.id}").get_data(as_text=True)
    assert 'data-job-status="failed"' in body and "Run it again" in body
    client.post(f"/jobs/{queued_import.id}/rerun")
    run_jobs()
    assert db.session.get(Job, queued_import.id).status == JobStatus.finished


def test_reviewer_sees_the_job_but_has_no_cancel_button(client, new_client, dataset, queued_import):
    reviewer = new_client()
    sign_in(reviewer, member(dataset, "reviewer"))
    body = reviewer.get(f"/jobs/{queued_import.id}").get_data(as_text=True)
    assert 'data-job-status="queued"' in body and "/cancel" not in body
    assert reviewer.post(f"/jobs/{queued_import.id}/cancel").status_code == 403
