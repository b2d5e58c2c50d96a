"""A review desk: a detection dataset whose labeler labeled and handed in images of a task that asks for review."""

from dataclasses import dataclass

import pytest

from core.extensions import db
from models import Assignment, Dataset, Image, Label, LabelingTask, User
from services import annotations
from services.labels import create_label
from tests.factories import make_dataset, make_user
from tests.support import insert_images, member

BOX = {"x": 2, "y": 3, "width": 20, "height": 10}


@dataclass
class Desk:
    owner: User
    reviewer: User
    labeler: User
    dataset: Dataset
    label: Label
    task: LabelingTask
    ids: list[int]  # handed in: to_review, each at revision 2 (a save, then the submit)


def hand_in(dataset: Dataset, task: LabelingTask, labeler: User, ids: list[int], label: Label) -> None:
    """Assign the images to the labeler in the task; they box and submit each one."""
    db.session.add_all(Assignment(task_id=task.id, image_id=image_id, labeler_id=labeler.id, position=n) for n, image_id in enumerate(ids))
    db.session.commit()
    for image_id in ids:
        image = db.session.get(Image, image_id)
        annotations.replace_annotations(image, labeler, [{"label_id": label.id, "shape": "box", "geometry": BOX}], image.revision)
        annotations.submit(image, labeler)


def make_desk(images: int = 4, name: str = "Street") -> Desk:
    owner = make_user()
    dataset = make_dataset(owner, name=name, type="detection")
    label = create_label(dataset, name="car", default_shape="box", color="#e6194b")
    reviewer, labeler = member(dataset, "reviewer"), member(dataset, "labeler")
    ids = insert_images(dataset, images)
    task = LabelingTask(dataset_id=dataset.id, name="Cars", review_required=True, complete=True)
    db.session.add(task)
    db.session.commit()
    hand_in(dataset, task, labeler, ids, label)
    return Desk(owner, reviewer, labeler, dataset, label, task, ids)


@pytest.fixture
def desk(app_ctx) -> Desk:
    return make_desk()
