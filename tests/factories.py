"""Factories: plain functions with overrides, exposed as fixtures where a test wants them."""

import io
import itertools
import random

from PIL import Image as PILImage
from werkzeug.security import generate_password_hash

from core.extensions import db
from models import Assignment, Dataset, DatasetMember, LabelingTask, Role, User
from services.accounts import create_token
from services.datasets import create_dataset

PASSWORD = "correct-horse-battery"
_counter = itertools.count(1)
_hashes: dict[str, str] = {}


def make_user(email: str | None = None, *, is_admin: bool = False, active: bool = True, password: str = PASSWORD, name: str = "Test User") -> User:
    """A user; the password hash is computed once per password (hashing costs ~0.1 s)."""
    if password not in _hashes:
        _hashes[password] = generate_password_hash(password)
    user = User(
        email=email or f"user{next(_counter)}@example.com", display_name=name,
        is_admin=is_admin, active=active, password_hash=_hashes[password],
    )
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
