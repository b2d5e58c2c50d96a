"""API-test fixtures: an isolated client per request, and a dataset with imported images."""

from dataclasses import dataclass

import pytest

from models import Dataset, Image, Job, User
from services.datasets import request_refresh_counters
from tests.factories import image_bytes, imported_image, make_dataset, make_user


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
def world(app_ctx) -> World:
    """A private dataset with two imported images and a queued job."""
    owner = make_user()
    dataset = make_dataset(owner, name="Private cats")
    originals = {"a.jpg": image_bytes(seed=1), "b.jpg": image_bytes(seed=2)}
    image = imported_image(dataset, "a.jpg", originals["a.jpg"], owner=owner, external_id="ext-1")
    other = imported_image(dataset, "b.jpg", originals["b.jpg"], owner=owner)
    queued = request_refresh_counters(dataset, owner)
    return World(owner, dataset, image, other, originals, queued, make_user())
