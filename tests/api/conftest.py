"""API-test fixtures: an isolated client per request, and a dataset with really imported images."""

from dataclasses import dataclass

import pytest

from core.extensions import db
from models import Dataset, Image, Job, User
from services.datasets import request_refresh_counters
from tests.factories import image_bytes, make_dataset, make_user
from tests.workers.helpers import upload_files


@dataclass
class World:
    owner: User
    dataset: Dataset
    image: Image  # external_id "ext-1"; the matrix assigns it to the labeler
    other: Image  # never assigned
    originals: dict[str, bytes]  # file name -> uploaded bytes
    queued_job: Job
    candidate: User  # a user with no role yet, to add as a member


@pytest.fixture
def world(app_ctx, run_jobs) -> World:
    """A private dataset with two uploaded and imported images and a queued job."""
    owner = make_user()
    dataset = make_dataset(owner, name="Private cats")
    originals = {"a.jpg": image_bytes(seed=1), "b.jpg": image_bytes(seed=2)}
    upload_files(dataset, owner, list(originals.items()))
    run_jobs()
    image, other = db.session.scalars(db.select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id)).all()
    image.external_id = "ext-1"
    db.session.commit()
    queued = request_refresh_counters(dataset, owner)
    return World(owner, dataset, image, other, originals, queued, make_user())
