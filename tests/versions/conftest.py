"""A detection dataset of four tiny imported images and two labels, for the version tests."""

from dataclasses import dataclass

import pytest

from core.extensions import db
from models import Dataset, Image, Label, User
from services.labels import create_label
from tests.factories import image_bytes, imported_image, make_dataset, make_user, token_for


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


def png(n: int) -> bytes:
    """img-<n>.png's bytes: distinct for every n."""
    return image_bytes((16, 12), "PNG", seed=n + 1)


@pytest.fixture
def shop(app_ctx) -> Shop:
    """Made as an import leaves them, not uploaded: the upload path is tested in tests/workers, and
    running it for every version test was most of their time."""
    owner = make_user()
    dataset = make_dataset(owner, name="Shop", type="detection")
    for n in range(4):
        imported_image(dataset, f"img-{n}.png", png(n), owner=owner)
    cat, dog = create_label(dataset, name="cat", default_shape="box"), create_label(dataset, name="dog", default_shape="box")
    images = db.session.scalars(db.select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id)).all()
    assert len(images) == 4
    return Shop(owner, dataset, list(images), cat, dog, token_for(owner))
