"""A small detection dataset to export: boxes and polygons, splits, states, folders and tags.

make_export_world() is a plain function too, for the browser test of the Exports page."""

import io
from dataclasses import dataclass

import pytest

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, ImageState, Label, Split, User
from services import images as image_service
from services.annotations import replace_annotations
from services.labels import create_label
from tests.factories import image_bytes, make_dataset, make_user, token_for


@dataclass
class ExportWorld:
    owner: User
    headers: dict
    dataset: Dataset
    images: dict[str, Image]  # by file name
    labels: dict[str, Label]  # by name


def add_image(dataset: Dataset, name: str, size=(16, 12), split="unassigned", state="unlabeled", folder: str = "", seed: int = 0) -> Image:
    """An image row over real stored bytes (what an import leaves, without the import's cost)."""
    stored = get_storage().put_stream(io.BytesIO(image_bytes(size, "PNG", seed=seed)))
    image = Image(
        dataset_id=dataset.id, file_name=name, storage_key=stored.key, width=size[0], height=size[1], byte_size=stored.size,
        format="png", split=Split(split), state=ImageState(state),
        folder_id=image_service.folder_for(dataset.id, folder) if folder else None,
    )
    db.session.add(image)
    db.session.commit()
    return image


def box(label: Label, x, y, w, h) -> dict:
    return {"label_id": label.id, "shape": "box", "geometry": {"x": x, "y": y, "width": w, "height": h}}


def polygon(label: Label, points) -> dict:
    return {"label_id": label.id, "shape": "polygon", "geometry": {"points": points}}


def annotate(image: Image, user: User, annotations: list[dict], state: str) -> None:
    replace_annotations(image, user, annotations)
    image.state = ImageState(state)
    db.session.commit()


@pytest.fixture
def export_world(app_ctx) -> ExportWorld:
    return make_export_world()


def make_export_world() -> ExportWorld:
    owner = make_user()
    dataset = make_dataset(owner, name="Cats", type="detection")
    labels = {name: create_label(dataset, name=name, default_shape="box") for name in ("cat", "dog", "bird")}
    a = add_image(dataset, "a.png", split="train", folder="line-1", seed=1)
    b = add_image(dataset, "b.png", size=(20, 10), split="train", seed=2)
    c = add_image(dataset, "c.png", split="validation", folder="line-2", seed=3)
    d = add_image(dataset, "d.png", split="test", seed=4)
    annotate(a, owner, [box(labels["cat"], 1, 2, 4, 6), polygon(labels["dog"], [[1, 1], [8, 1], [8, 6]])], "accepted")
    annotate(b, owner, [box(labels["dog"], 0, 0, 10, 5), box(labels["bird"], 2, 2, 2, 2)], "to_review")
    annotate(c, owner, [polygon(labels["cat"], [[0, 0], [16, 0], [16, 12], [0, 12]])], "accepted")
    image_service.update_image(a, tags=["sunny"])
    return ExportWorld(owner, token_for(owner), dataset, {"a.png": a, "b.png": b, "c.png": c, "d.png": d}, labels)
