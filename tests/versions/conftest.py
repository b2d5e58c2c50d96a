"""A detection dataset with really uploaded tiny images and two labels, for the version tests."""

from dataclasses import dataclass

import pytest

from core.extensions import db
from models import Dataset, Image, Label, User
from services.labels import create_label
from tests.factories import image_bytes, make_dataset, make_user, token_for
from tests.workers.helpers import upload_files


@dataclass
class Shop:
    owner: User
    dataset: Dataset
    images: list[Image]  # in id order
    cat: Label
    dog: Label
    headers: dict  # the owner's API token


def box(label: Label, x: float = 1, y: float = 1, w: float = 4, h: float = 3) -> dict:
    return {"label_id": label.id, "shape": "box", "geometry": {"x": x, "y": y, "width": w, "height": h}}


def upload_pngs(dataset: Dataset, owner: User, count: int, start: int = 0) -> None:
    """Tiny PNGs img-<n>.png, distinct bytes each (the job imports them: run_jobs)."""
    upload_files(dataset, owner, [(f"img-{start + i}.png", image_bytes((16, 12), "PNG", seed=start + i + 1)) for i in range(count)])


@pytest.fixture
def shop(app_ctx, run_jobs) -> Shop:
    owner = make_user()
    dataset = make_dataset(owner, name="Shop", type="detection")
    upload_pngs(dataset, owner, 4)
    run_jobs()
    cat, dog = create_label(dataset, name="cat", default_shape="box"), create_label(dataset, name="dog", default_shape="box")
    images = db.session.scalars(db.select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id)).all()
    assert len(images) == 4
    return Shop(owner, dataset, list(images), cat, dog, token_for(owner))
