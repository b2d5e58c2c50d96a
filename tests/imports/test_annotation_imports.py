"""Annotation imports through the API and a real worker: matching, labels, predictions as
pre-labels with a score threshold, re-runs, and bad input that leaves what is stored alone."""

import io
import threading
import zipfile

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Annotation, Image, Job, JobStatus, Label
from services.annotations import replace_annotations
from services.labels import create_label
from tests.factories import image_bytes, make_dataset, make_user, token_for
from tests.imports.support import import_file, json_file, label_counts, send, snapshot
from tests.workers.helpers import upload_files
from core.storage import get_storage


def coco(images, annotations, categories=("cat", "dog")) -> dict:
    return {
        "images": [{"id": i, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(images, start=1)],
        "annotations": [{"id": n, "iscrowd": 0, "area": 1, "segmentation": [], **a} for n, a in enumerate(annotations, start=1)],
        "categories": [{"id": i, "name": name} for i, name in enumerate(categories, start=1)],
    }


@pytest.fixture
def world(app_ctx, run_jobs):
    """A detection dataset with three uploaded 64x48 images: a.jpg, b.jpg and c.jpg."""
    owner = make_user()
    dataset = make_dataset(owner)
    upload_files(dataset, owner, [(name, image_bytes((64, 48), seed=i)) for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"])])
    run_jobs()
    ids = dict(db.session.execute(select(Image.file_name, Image.id).where(Image.dataset_id == dataset.id)).all())
    return owner, dataset, ids


def test_a_coco_file_applies_to_the_images_it_names_creates_its_labels_and_reports_the_rest(client, run_jobs, world):
    owner, dataset, ids = world
    document = coco(["a.jpg", "b.jpg", "missing.jpg"], [
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]},
        {"image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5], "segmentation": [[1, 1, 6, 1, 6, 6]]},
        {"image_id": 2, "category_id": 1, "bbox": [60, 40, 30, 30]},  # pokes out of the 64x48 image: clipped
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1]},
    ], categories=("cat", "dog", "unused"))
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "instances.json")
    assert job.status == JobStatus.finished, job.message
    assert job.result["images_applied"] == 2 and job.result["annotations"] == 3 and job.result["unmatched"] == 1
    assert [e["item"] for e in job.errors] == ["missing.jpg"]
    assert "no image of the dataset is named missing.jpg" in job.errors[0]["reason"]
    # The file's label list, unused ones too, in its order.
    assert db.session.scalars(select(Label.name).where(Label.dataset_id == dataset.id).order_by(Label.position)).all() == ["cat", "dog", "unused"]
    held = snapshot(dataset.id)
    assert held["a.jpg"]["state"] == "in_progress"
    assert [a[:3] for a in held["a.jpg"]["annotations"]] == [
        ("cat", "box", '{"height": 10.0, "width": 20.0, "x": 2.0, "y": 3.0}'),
        ("dog", "polygon", '{"points": [[1.0, 1.0], [6.0, 1.0], [6.0, 6.0]]}'),
    ]
    assert held["b.jpg"]["annotations"][0][2] == '{"height": 8.0, "width": 4.0, "x": 60.0, "y": 40.0}'
    assert held["c.jpg"]["annotations"] == [] and held["c.jpg"]["state"] == "unlabeled"
    dataset_row = db.session.get(type(dataset), dataset.id)
    assert dataset_row.annotation_count == 3 and dataset_row.annotated_count == 2


def test_predictions_are_pre_labels_over_a_threshold_and_never_replace_a_persons_work(client, run_jobs, world):
    owner, dataset, ids = world
    cat = create_label(dataset, name="cat", default_shape="box")
    labeled = db.session.get(Image, ids["c.jpg"])
    replace_annotations(labeled, owner, [{"label_id": cat.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}}])
    document = coco(["a.jpg", "b.jpg", "c.jpg"], [
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [5, 5, 5, 5], "score": 0.2},
        {"image_id": 2, "category_id": 1, "bbox": [5, 5, 5, 5], "score": 0.1},
        {"image_id": 3, "category_id": 1, "bbox": [5, 5, 5, 5], "score": 0.99},
    ])
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "predictions.json", score_threshold="0.5")
    assert job.status == JobStatus.finished, job.message
    held = snapshot(dataset.id)
    assert held["a.jpg"]["state"] == "prelabeled"
    assert [(a[1], a[4], a[5]) for a in held["a.jpg"]["annotations"]] == [("box", "prediction", 0.9)]
    assert job.result["below_threshold"] == 2
    # b.jpg had only a prediction under the threshold: an empty set is not put on it.
    assert held["b.jpg"]["state"] == "unlabeled"
    # c.jpg is a person's work: left alone, and said so.
    assert held["c.jpg"]["annotations"][0][4] == "human" and held["c.jpg"]["state"] == "in_progress"
    assert job.result["left_alone"] == 1
    assert any(e["item"] == "c.jpg" and "person" in e["reason"] for e in job.errors)

    # The labeler confirms the pre-label on the canvas (a save of it unchanged keeps it a
    # prediction with its score); the image is then a person's work.
    image = db.session.get(Image, ids["a.jpg"])
    saved = client.put(f"/api/v1/datasets/{dataset.id}/images/{image.id}/annotations", headers=token_for(owner),
                       json={"revision": image.revision, "annotations": client.get(
                           f"/api/v1/datasets/{dataset.id}/images/{image.id}/annotations", headers=token_for(owner)).get_json()["annotations"]})
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["state"] == "in_progress"


def test_the_predictions_option_makes_unscored_annotations_pre_labels(client, run_jobs, world):
    owner, dataset, ids = world
    document = coco(["a.jpg"], [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]}])
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "p.json", predictions="true")
    assert job.status == JobStatus.finished and job.result["predictions"] == 1
    assert snapshot(dataset.id)["a.jpg"]["state"] == "prelabeled"


def test_an_image_with_one_bad_annotation_is_not_half_applied(client, run_jobs, world):
    owner, dataset, ids = world
    cat = create_label(dataset, name="cat", default_shape="box")
    image = db.session.get(Image, ids["a.jpg"])
    before = {"label_id": cat.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}}
    replace_annotations(image, owner, [before])
    document = coco(["a.jpg", "b.jpg"], [
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]},
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, "wide", 10]},
        {"image_id": 2, "category_id": 1, "bbox": [2, 3, 20, 10]},
    ])
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "i.json")
    assert job.status == JobStatus.finished
    assert job.result["images_applied"] == 1 and job.result["failed"] == 1
    held = snapshot(dataset.id)
    assert [a[2] for a in held["a.jpg"]["annotations"]] == ['{"height": 2.0, "width": 2.0, "x": 1.0, "y": 1.0}']
    assert len(held["b.jpg"]["annotations"]) == 1
    assert [e["item"] for e in job.errors] == ["a.jpg"]


def test_a_re_run_after_a_crash_gives_the_same_result(client, run_jobs, world, tmp_path):
    owner, dataset, ids = world
    document = coco(["a.jpg", "b.jpg"], [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]},
                                          {"image_id": 2, "category_id": 2, "bbox": [1, 1, 5, 5]}])
    response = send(client, dataset, owner, "coco", json_file(document), "i.json")
    job_id = response.get_json()["id"]
    key = db.session.get(Job, job_id).args[1]
    kept = tmp_path / "kept"
    kept.write_bytes(get_storage().read(key))
    run_jobs()
    first = snapshot(dataset.id)
    assert not get_storage().exists(key)  # removed once applied
    # A crash after the annotations were applied and before the job ended: the file is still
    # stored and the job failed; its retry applies the file again.
    get_storage().put_file(key, kept)
    job = db.session.get(Job, job_id)
    job.status = JobStatus.failed
    db.session.commit()
    assert client.post(f"/api/v1/jobs/{job_id}/retry", headers=token_for(owner)).status_code == 202
    run_jobs()
    job = db.session.get(Job, job_id)
    assert job.status == JobStatus.finished and job.attempts == 2, job.message
    assert snapshot(dataset.id) == first
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == 2
    assert db.session.get(type(dataset), dataset.id).annotation_count == 2


def test_a_retry_once_the_file_is_applied_and_gone_fails_clearly(client, run_jobs, world):
    owner, dataset, ids = world
    document = coco(["a.jpg"], [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]}])
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "i.json")
    before = snapshot(dataset.id)
    job.status = JobStatus.failed
    db.session.commit()
    assert client.post(f"/api/v1/jobs/{job.id}/retry", headers=token_for(owner)).status_code == 202
    run_jobs()
    job = db.session.get(Job, job.id)
    assert job.status == JobStatus.failed and "no longer stored" in job.message
    assert snapshot(dataset.id) == before


@pytest.mark.parametrize("fields, field", [
    ({"kind": "archive"}, "kind"),
    ({"format": "pdf"}, "format"),
    ({"format": "zip_of_everything" * 10}, "format"),
    ({"format": "csv_training"}, "format"),  # export only
    ({"score_threshold": "abc"}, "score_threshold"),
    ({"score_threshold": "1.5"}, "score_threshold"),
    ({"score_threshold": "-0.1"}, "score_threshold"),
    ({"score_threshold": "nan"}, "score_threshold"),
    ({"score_threshold": "1e999"}, "score_threshold"),
    ({"predictions": "maybe"}, "predictions"),
])
def test_bad_options_are_refused_with_the_field_named(client, world, fields, field):
    owner, dataset, ids = world
    data = {"kind": "annotations", "format": "coco", "file": (json_file(coco([], [])), "i.json"), **fields}
    response = client.post(f"/api/v1/datasets/{dataset.id}/imports", headers=token_for(owner), data=data, content_type="multipart/form-data")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    # Checked by the document's schema (details name the field per location) or by the service.
    assert error["details"].get("field") == field or field in error["details"].get("multipart", {}), error
    assert field in error["message"]
    assert db.session.scalar(select(func.count()).select_from(Job).where(Job.kind == "import_annotations")) == 0


@pytest.mark.parametrize("data, message", [
    ({"kind": "annotations", "format": "coco"}, "file"),
    ({"kind": "annotations", "format": "coco", "file": (io.BytesIO(b""), "empty.json")}, "empty"),
])
def test_a_missing_or_empty_file_is_refused(client, world, data, message):
    owner, dataset, ids = world
    response = client.post(f"/api/v1/datasets/{dataset.id}/imports", headers=token_for(owner), data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and message in response.get_json()["error"]["message"].lower() + str(response.get_json())


def _zip(entries: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("fmt, file, name, message", [
    ("coco", io.BytesIO(b"{not json"), "i.json", "not COCO"),
    ("coco", io.BytesIO(_deep(100_000)), "deep.json", "not COCO"),
    ("coco", io.BytesIO(b'{"images": 5, "annotations": [], "categories": []}'), "i.json", "not COCO"),
    ("voc", io.BytesIO(b"<annotation><object>"), "a.xml", "Pascal VOC"),
    ("voc", io.BytesIO(b'<!DOCTYPE lolz [<!ENTITY lol "lol">]><annotation>&lol;</annotation>'), "a.xml", "Pascal VOC"),
    ("coco", _zip({"../../escape.json": b"{}"}), "evil.zip", "outside its folder"),
    # A leading "/" is dropped, as unzip does: the file lands inside the work folder.
    ("coco", _zip({"/etc/passwd.json": b"{}"}), "evil.zip", "not COCO"),
    ("coco", _zip({"C:/windows/x.json": b"{}"}), "evil.zip", "outside its folder"),
    ("coco", io.BytesIO(b"PK\x03\x04 broken zip" + b"\0" * 100), "broken.zip", ""),
    ("json", io.BytesIO(image_bytes()), "photo.jpg", "Loupe JSON"),
])
def test_a_file_that_cannot_be_imported_fails_the_job_clearly_and_keeps_what_is_stored(client, run_jobs, world, fmt, file, name, message):
    owner, dataset, ids = world
    cat = create_label(dataset, name="cat", default_shape="box")
    image = db.session.get(Image, ids["a.jpg"])
    replace_annotations(image, owner, [{"label_id": cat.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 2, "height": 2}}])
    before = snapshot(dataset.id)
    job = import_file(client, run_jobs, dataset, owner, fmt, file, name)
    assert job.status == JobStatus.failed and message in job.message, job.message
    assert "Traceback" not in job.message
    assert snapshot(dataset.id) == before


def test_a_zip_that_unpacks_past_the_limit_is_refused(client, run_jobs, world, app_ctx, monkeypatch):
    owner, dataset, ids = world
    monkeypatch.setitem(app_ctx.config, "LOUPE_MAX_EXTRACT_MB", 1)
    bomb = _zip({"instances.json": b" " * (3 << 20)})  # compresses to a few KB
    job = import_file(client, run_jobs, dataset, owner, "coco", bomb, "bomb.zip")
    assert job.status == JobStatus.failed and "more than 1 MB" in job.message


def test_two_imports_at_once_on_one_dataset_give_one_job_and_a_clear_409(app_ctx, client, world):
    owner, dataset, ids = world
    answers = []
    url, headers = f"/api/v1/datasets/{dataset.id}/imports", token_for(owner)

    def send_one(n):
        data = {"kind": "annotations", "format": "coco", "file": (json_file(coco(["a.jpg"], [])), f"{n}.json")}
        with app_ctx.test_client() as own:
            answers.append(own.post(url, headers=headers, data=data, content_type="multipart/form-data").status_code)

    threads = [threading.Thread(target=send_one, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [202, 409]
    assert db.session.scalar(select(func.count()).select_from(Job).where(Job.kind == "import_annotations")) == 1


def test_labels_match_without_case_and_imported_attributes_get_definitions(client, run_jobs, world):
    owner, dataset, ids = world
    create_label(dataset, name="Cat", default_shape="box")
    document = coco(["a.jpg"], [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "attributes": {"occluded": True, "pose": "left", "n": 3}}],
                    categories=("cat",))
    job = import_file(client, run_jobs, dataset, owner, "coco", json_file(document), "i.json")
    assert job.status == JobStatus.finished and job.result["labels_created"] == []
    label = db.session.scalar(select(Label).where(Label.dataset_id == dataset.id))
    assert {d["name"]: d["type"] for d in label.attributes} == {"occluded": "checkbox", "pose": "text", "n": "number"}
    assert label_counts(dataset.id) == {"Cat": 1}


def test_a_carried_image_is_matched_by_path_or_bytes_never_by_a_name_alone(client, run_jobs, world):
    owner, dataset, ids = world
    other_picture = image_bytes((64, 48), seed=77)
    document = coco(["sub/a.jpg", "b.jpg"], [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10]},
                                              {"image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}])
    same_as_b = get_storage().read(db.session.get(Image, ids["b.jpg"]).storage_key)
    archive = _zip({"annotations/instances.json": json_file(document).getvalue(), "images/sub/a.jpg": other_picture,
                    "images/b.jpg": same_as_b})
    job = import_file(client, run_jobs, dataset, owner, "coco", archive, "coco.zip")
    assert job.status == JobStatus.finished, job.message
    held = snapshot(dataset.id)
    # sub/a.jpg is another picture than the dataset's a.jpg: imported as an image of its own.
    assert len(held["sub/a.jpg"]["annotations"]) == 1 and held["a.jpg"]["annotations"] == []
    # b.jpg carries the bytes the dataset has: found by them, not imported twice.
    assert len(held["b.jpg"]["annotations"]) == 1
    assert job.result["images_added"] == 1 and len(held) == 4
