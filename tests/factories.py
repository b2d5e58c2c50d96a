"""Factories: plain functions with overrides, exposed as fixtures where a test wants them."""

import io
import random

import pytest
from PIL import Image as PILImage

from core.extensions import db
from models import Assignment, Dataset, DatasetMember, LabelingTask, Role, User
from services.accounts import create_token
from services.datasets import create_dataset

PASSWORD = "correct-horse-battery"


def make_user(email: str | None = None, *, is_admin: bool = False, active: bool = True, password: str = PASSWORD) -> User:
    user = User(email=email or f"user{random.randrange(10**9)}@example.com", display_name="Test User", is_admin=is_admin, active=active)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def make_dataset(owner: User, *, name: str = "Cats", type: str = "detection", public: bool = False) -> Dataset:
    dataset = create_dataset(owner, name, type)
    if public:
        dataset.public = True
        db.session.commit()
    return dataset


def add_member(dataset: Dataset, user: User, role: str) -> None:
    db.session.add(DatasetMember(dataset_id=dataset.id, user_id=user.id, role=Role(role)))
    db.session.commit()


def assign(dataset: Dataset, image_id: int, labeler: User) -> None:
    task = LabelingTask(dataset_id=dataset.id, name="task")
    db.session.add(task)
    db.session.flush()
    db.session.add(Assignment(task_id=task.id, image_id=image_id, labeler_id=labeler.id))
    db.session.commit()


def image_bytes(size: tuple[int, int] = (64, 48), fmt: str = "JPEG", color=None, seed: int | None = None, **save) -> bytes:
    """A real image made in memory; a seed gives distinct content (and so a distinct sha256)."""
    rng = random.Random(seed)
    image = PILImage.new("RGB", size, color or (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    if seed is not None:
        image.putpixel((0, 0), (seed % 256, (seed >> 8) % 256, (seed >> 16) % 256))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def token_for(user: User) -> dict:
    _, secret = create_token(user, "test")
    return {"Authorization": f"Token {secret}"}


def login(client, user: User, password: str = PASSWORD):
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return response


ROLES = ["admin", "owner", "manager", "reviewer", "labeler", "outsider"]


def user_with_role(dataset: Dataset, role: str) -> User:
    """A user who holds `role` on the dataset: admin, owner, a member role, or outsider (none)."""
    if role == "admin":
        return make_user(is_admin=True)
    if role == "owner":
        return db.session.get(User, dataset.owner_id)
    user = make_user()
    if role != "outsider":
        add_member(dataset, user, role)
    return user


@pytest.fixture
def factories(app_ctx):
    class F:
        pass

    f = F()
    for fn in (make_user, make_dataset, add_member, assign, image_bytes, token_for, login, user_with_role):
        setattr(f, fn.__name__, staticmethod(fn))
    return f
