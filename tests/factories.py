"""Factories: plain functions with overrides, exposed as fixtures where a test wants them."""

import io
import itertools
import random

from flask import current_app
from PIL import Image as PILImage
from werkzeug.security import generate_password_hash

from core.extensions import db
from core.storage import get_storage
from models import Assignment, Dataset, DatasetMember, Image, LabelingTask, Role, TaskMember, User
from models.image import thumbnail_key_for
from services import imaging
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
    """Give the labeler the image in a task of its own (services/tasks.py builds real ones by a job)."""
    task = LabelingTask(dataset_id=dataset.id, name="task", complete=True, image_count=1)
    db.session.add(task)
    db.session.flush()
    db.session.add(TaskMember(task_id=task.id, user_id=labeler.id))
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


def imported_image(dataset: Dataset, file_name: str, data: bytes, *, owner: User | None = None, **columns) -> Image:
    """The row and stored files an import of `data` leaves (decoded, measured and thumbnailed by the
    import's own services.imaging.process), without an upload and a worker run: for tests of what
    happens to images after the import, which is tested in tests/workers."""
    config = current_app.config
    processed = imaging.process(data, config["LOUPE_MAX_IMAGE_PIXELS"], config["LOUPE_THUMBNAIL_SIZE"])
    storage = get_storage()
    stored = storage.put_stream(io.BytesIO(data))
    storage.put_bytes(thumbnail_key_for(stored.key), processed.thumbnail)
    image = Image(
        dataset_id=dataset.id, file_name=file_name, storage_key=stored.key, width=processed.info.width,
        height=processed.info.height, byte_size=stored.size, format=processed.info.format,
        orientation=processed.info.orientation, phash=processed.phash, created_by_id=owner.id if owner else None, **columns,
    )
    db.session.add(image)
    dataset.image_count = (dataset.image_count or 0) + 1
    dataset.total_bytes = (dataset.total_bytes or 0) + stored.size
    db.session.commit()
    return image
