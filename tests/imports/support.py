"""Sending annotation imports through the API, and reading back what a dataset holds."""

import io
import json
import zipfile
from pathlib import Path

from sqlalchemy import select

from core.extensions import db
from models import Annotation, Folder, Image, Job, Label
from tests.factories import token_for
from tests.support import FORMAT_FIXTURES

FIXTURES = FORMAT_FIXTURES


def zipped(folder: Path) -> io.BytesIO:
    """A folder as a ZIP, as a person would send a format's layout."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    buffer.seek(0)
    return buffer


def send(client, dataset, user, fmt: str, file: io.BytesIO, name: str, **fields):
    data = {"kind": "annotations", "format": fmt, "file": (file, name), **{k: str(v) for k, v in fields.items()}}
    return client.post(f"/api/v1/datasets/{dataset.id}/imports", headers=token_for(user), data=data, content_type="multipart/form-data")


def import_file(client, run_jobs, dataset, user, fmt: str, file: io.BytesIO, name: str, **fields) -> Job:
    """Send an import, run it with a real worker, and return its finished (or failed) job."""
    response = send(client, dataset, user, fmt, file, name, **fields)
    assert response.status_code == 202, response.get_json()
    run_jobs()
    return db.session.get(Job, response.get_json()["id"])


def json_file(document) -> io.BytesIO:
    return io.BytesIO(json.dumps(document).encode())


def snapshot(dataset_id: int) -> dict:
    """What a dataset holds, by image path: its split, and its annotations as comparable tuples."""
    labels = dict(db.session.execute(select(Label.id, Label.name).where(Label.dataset_id == dataset_id)).all())
    images = db.session.execute(
        select(Image.id, Image.file_name, Folder.path, Image.split, Image.state)
        .outerjoin(Folder, Image.folder_id == Folder.id).where(Image.dataset_id == dataset_id)
    ).all()
    found = {}
    for image in images:
        annotations = db.session.scalars(select(Annotation).where(Annotation.image_id == image.id)).all()
        found[f"{image.path}/{image.file_name}" if image.path else image.file_name] = {
            "split": image.split.value, "state": image.state.value,
            "annotations": sorted(
                (labels[a.label_id], a.shape, rounded(a.geometry), json.dumps(a.attributes or {}, sort_keys=True), a.source, a.score, a.text)
                for a in annotations
            ),
        }
    return found


def rounded(geometry: dict) -> str:
    """Geometry to 1e-6 of a pixel, as text: equal texts are shapes within the round trip's tolerance."""
    def r(v):
        return round(float(v), 6) + 0.0

    return json.dumps({k: [[r(x), r(y)] for x, y in v] if k == "points" else r(v) for k, v in sorted(geometry.items())})


def label_counts(dataset_id: int) -> dict:
    rows = db.session.execute(
        select(Label.name, Annotation.id).join(Annotation, Annotation.label_id == Label.id).where(Label.dataset_id == dataset_id)
    ).all()
    counts = {}
    for name, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return counts
