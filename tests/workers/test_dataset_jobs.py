"""Dataset jobs: delete a dataset (chunked, resumable, keeps files other datasets share) and recount."""

import hashlib

import pytest
from sqlalchemy import func, insert, select

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, ImageState, Job, JobStatus
from services import datasets as datasets_service
from services import jobs as jobs_service
from tests.factories import image_bytes, make_dataset, make_user
from workers import datasets as dataset_jobs

ROWS = 350


def _put(data: bytes) -> str:
    """Store an original and a thumbnail the way an import does; returns the key."""
    key = hashlib.sha256(data).hexdigest()
    get_storage().put_bytes(key, data)
    get_storage().put_bytes(f"thumbs/{key}.jpg", b"thumbnail bytes")
    return key


def _fill(dataset: Dataset, keys: list[str]) -> None:
    """Insert ROWS image rows in one statement; the given keys (real files) go first, the rest are made up."""
    rows = [
        {
            "dataset_id": dataset.id, "file_name": f"img-{i:04d}.jpg", "width": 64, "height": 48, "byte_size": 1000 + i,
            "format": "jpeg",
            "storage_key": keys[i] if i < len(keys) else hashlib.sha256(f"{dataset.id}-{i}".encode()).hexdigest(),
        }
        for i in range(ROWS)
    ]
    db.session.execute(insert(Image), rows)
    dataset.image_count, dataset.total_bytes = ROWS, sum(r["byte_size"] for r in rows)
    db.session.commit()


@pytest.fixture
def doomed(app_ctx):
    """A dataset of ROWS images (four with real files, the first shared with another dataset)."""
    user = make_user()
    dataset = make_dataset(user, name="Doomed")
    other = make_dataset(user, name="Keeper")
    keys = [_put(image_bytes(seed=900 + i)) for i in range(4)]
    _fill(dataset, keys)
    db.session.add(Image(dataset_id=other.id, file_name="shared.jpg", storage_key=keys[0], width=64, height=48, byte_size=10, format="jpeg"))
    other.image_count = 1
    db.session.commit()
    return user, dataset, other, keys


def _exists(key: str) -> tuple[bool, bool]:
    storage = get_storage()
    return storage.exists(key), storage.exists(f"thumbs/{key}.jpg")


def test_delete_dataset_removes_rows_and_unshared_files_and_keeps_shared_ones(doomed, run_jobs, monkeypatch):
    user, dataset, other, keys = doomed
    monkeypatch.setattr(dataset_jobs, "CHUNK", 100)  # several chunks out of a few hundred rows
    dataset_id = dataset.id

    job = datasets_service.request_delete(dataset, user)
    assert job.total == ROWS
    assert datasets_service.request_delete(dataset, user).id == job.id  # asking twice starts one job
    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    assert job.result == {"deleted_images": ROWS}
    assert job.done == ROWS and job.percent == 100
    assert db.session.get(Dataset, dataset_id) is None
    assert db.session.scalar(select(func.count()).where(Image.dataset_id == dataset_id)) == 0
    assert _exists(keys[0]) == (True, True)  # still used by the other dataset
    for key in keys[1:]:
        assert _exists(key) == (False, False)
    assert db.session.get(Dataset, other.id).image_count == 1
    assert db.session.scalar(select(func.count()).where(Image.dataset_id == other.id)) == 1


def test_delete_dataset_rerun_after_partial_progress_finishes_the_job(doomed, run_jobs, monkeypatch, caplog):
    user, dataset, other, keys = doomed
    dataset_id = dataset.id
    monkeypatch.setattr(dataset_jobs, "CHUNK", 100)
    calls = {"n": 0}
    real_release = dataset_jobs.release_if_unused

    def flaky_release(key):
        calls["n"] += 1
        if calls["n"] == 150:  # in the middle of the second chunk, after its rows were deleted
            raise OSError("storage went away")
        real_release(key)

    monkeypatch.setattr(dataset_jobs, "release_if_unused", flaky_release)
    job = datasets_service.request_delete(dataset, user)
    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.failed
    # The person reads what to do; the error itself is in the worker's log.
    assert "Run it again" in job.message and "storage went away" not in job.message
    assert "storage went away" in caplog.text
    left = db.session.scalar(select(func.count()).where(Image.dataset_id == dataset_id))
    assert left == ROWS - 200  # two chunks committed before the failure
    assert db.session.get(Dataset, dataset_id) is not None

    monkeypatch.setattr(dataset_jobs, "release_if_unused", real_release)
    jobs_service.rerun_job(job)
    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished and job.attempts == 2
    # The count covers both runs: the re-run continues from what the failed run committed.
    assert job.result == {"deleted_images": ROWS} and job.done == ROWS
    assert db.session.get(Dataset, dataset_id) is None
    assert db.session.scalar(select(func.count()).where(Image.dataset_id == dataset_id)) == 0
    assert _exists(keys[0]) == (True, True)
    for key in keys[1:]:  # these rows were in the first chunk, released before the failure
        assert _exists(key) == (False, False)

    # Once more with the dataset gone: a no-op that finishes with the same result.
    job.status = JobStatus.queued
    db.session.commit()
    assert dataset_jobs.delete_dataset(job.id, dataset_id) == {"deleted_images": ROWS}
    assert db.session.get(Job, job.id).status == JobStatus.finished
    assert _exists(keys[0]) == (True, True)


def test_refresh_counters_fixes_wrong_counters(app_ctx, run_jobs):
    user = make_user()
    dataset = make_dataset(user)
    _fill(dataset, [])
    db.session.execute(
        Image.__table__.update().where(Image.dataset_id == dataset.id, Image.file_name.in_(["img-0000.jpg", "img-0001.jpg"])).values(state=ImageState.accepted)
    )
    dataset.image_count, dataset.total_bytes, dataset.annotated_count = 7, -5, 99
    db.session.commit()

    job = datasets_service.request_refresh_counters(dataset, user)
    run_jobs()

    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.finished, job.message
    expected_bytes = sum(1000 + i for i in range(ROWS))
    assert job.result == {"images": ROWS, "total_bytes": expected_bytes}
    dataset = db.session.get(Dataset, dataset.id)
    assert (dataset.image_count, dataset.total_bytes, dataset.annotated_count) == (ROWS, expected_bytes, 2)
