"""JSON and annotation CSV exports end to end: the API, the real RQ worker, the file, the report."""

import dataclasses
import json
import types
from datetime import timedelta

import pytest
from sqlalchemy import delete, select

from core.extensions import db
from core.storage import get_storage
from formats import EXPORTS, loupe_json
from models import Annotation, Export, Image, Job, JobStatus, Split, Version
from models.base import utcnow
from services import exports as export_service
from tests.exports.helpers import csv_rows, export_file, json_images, start
from workers.exports import temp_path


def _database_rows(world) -> list[tuple]:
    """(image file name, label name, shape, geometry) of every annotation, from the database."""
    names = {label.id: name for name, label in world.labels.items()}
    rows = db.session.execute(
        select(Image.file_name, Annotation.label_id, Annotation.shape, Annotation.geometry)
        .join(Image, Image.id == Annotation.image_id).where(Image.dataset_id == world.dataset.id)
    ).all()
    return sorted((name, names[label_id], shape, json.dumps(geometry, sort_keys=True)) for name, label_id, shape, geometry in rows)


def test_json_export_holds_every_image_and_annotation_as_the_database_does(client, export_world, run_jobs):
    export, data = export_file(client, export_world, run_jobs, format="json")
    document = json.loads(data)
    assert document["dataset"] == {"name": "Cats", "type": "detection", "version": None}
    assert [label["name"] for label in document["labels"]] == ["cat", "dog", "bird"]
    images = json_images(data)
    assert set(images) == {"a.png", "b.png", "c.png", "d.png"}
    a = images["a.png"]
    assert (a["width"], a["height"], a["split"], a["state"], a["tags"]) == (16, 12, "train", "accepted", ["sunny"])
    assert images["d.png"]["annotations"] == []
    written = sorted(
        (name, ann["label"], ann["shape"], json.dumps(ann["geometry"], sort_keys=True))
        for name, image in images.items() for ann in image["annotations"]
    )
    assert written == _database_rows(export_world)
    # The report is counted from the file, stored beside it and on the export.
    report = export["report"]
    assert (report["images"], report["annotations"]) == (4, 5)
    assert report["per_label"] == {"bird": 1, "cat": 2, "dog": 2}
    assert report["per_split"]["train"] == {"images": 2, "annotations": 4}
    assert report["per_split"]["test"] == {"images": 1, "annotations": 0}
    stored = json.loads(get_storage().read(export_service.report_key(export["id"])))
    assert stored == report
    assert export["file_name"] == "Cats-loupe.json" and export["byte_size"] == len(data)
    job = db.session.get(Job, export["job"]["id"])
    assert job.status == JobStatus.finished and job.done == job.total == 4
    assert job.result["export_id"] == export["id"] and job.result["annotations"] == 5


def test_percent_coordinates_and_full_paths(client, export_world, run_jobs):
    _, data = export_file(client, export_world, run_jobs, format="json", coordinates="percent", full_path=True)
    images = json_images(data)
    assert set(images) == {"line-1/a.png", "b.png", "line-2/c.png", "d.png"}
    geometry = {ann["shape"]: ann["geometry"] for ann in images["line-1/a.png"]["annotations"]}
    # a.png is 16x12: the box (1, 2, 4, 6) in percent of width and height.
    assert geometry["box"] == pytest.approx({"x": 100 / 16, "y": 200 / 12, "width": 400 / 16, "height": 600 / 12})
    flat = [value for point in geometry["polygon"]["points"] for value in point]
    assert flat == pytest.approx([100 / 16, 100 / 12, 50, 100 / 12, 50, 50])


def test_csv_rows_match_the_database_and_images_without_annotations_keep_a_row(client, export_world, run_jobs):
    export, data = export_file(client, export_world, run_jobs, format="csv")
    rows = csv_rows(data)
    assert len(rows) == 6  # five annotations and d.png's empty row
    assert [r for r in rows if r["image"] == "d.png"] == [{**rows[-1]}] and rows[-1]["label"] == ""
    boxes = {(r["image"], r["label"]): r for r in rows if r["shape"] == "box"}
    cat = boxes[("a.png", "cat")]
    assert (float(cat["x_min"]), float(cat["y_min"]), float(cat["x_max"]), float(cat["y_max"])) == (1, 2, 5, 8)
    assert (cat["width"], cat["height"], cat["split"], cat["source"]) == ("16", "12", "train", "human")
    dog = next(r for r in rows if r["image"] == "a.png" and r["shape"] == "polygon")
    assert json.loads(dog["points"]) == [[1, 1], [8, 1], [8, 6]] and dog["label"] == "dog"
    from_rows = sorted(
        (r["image"], r["label"], r["shape"],
         json.dumps({"x": float(r["x_min"]), "y": float(r["y_min"]), "width": float(r["x_max"]) - float(r["x_min"]),
                     "height": float(r["y_max"]) - float(r["y_min"])} if r["shape"] == "box" else {"points": json.loads(r["points"])},
                    sort_keys=True))
        for r in rows if r["label"]
    )
    database = sorted((n, label, shape, json.dumps({k: float(v) if not isinstance(v, list) else v for k, v in json.loads(g).items()}, sort_keys=True))
                      for n, label, shape, g in _database_rows(export_world))
    assert from_rows == database
    assert export["report"]["images"] == 4 and export["report"]["annotations"] == 5


def test_filters_by_split_state_and_label(client, export_world, run_jobs):
    _, data = export_file(client, export_world, run_jobs, format="json", split="train,test")
    assert set(json_images(data)) == {"a.png", "b.png", "d.png"}
    _, data = export_file(client, export_world, run_jobs, format="csv", state=["accepted"])
    assert {r["image"] for r in csv_rows(data)} == {"a.png", "c.png"}
    dog = export_world.labels["dog"].id
    export, data = export_file(client, export_world, run_jobs, format="json", label_ids=[dog])
    images = json_images(data)
    # Only images with a dog, and only their dog annotations.
    assert set(images) == {"a.png", "b.png"}
    assert [ann["label"] for image in images.values() for ann in image["annotations"]] == ["dog", "dog"]
    assert export["report"]["per_label"] == {"dog": 2}


def test_tag_map_merges_two_labels(client, export_world, run_jobs):
    export, data = export_file(client, export_world, run_jobs, format="csv", tagmap="cat:animal,dog:animal")
    labels = sorted(r["label"] for r in csv_rows(data) if r["label"])
    assert labels == ["animal", "animal", "animal", "animal", "bird"]
    assert export["report"]["per_label"] == {"animal": 4, "bird": 1}
    _, data = export_file(client, export_world, run_jobs, format="json", tagmap="cat:animal,dog:animal")
    assert [label["name"] for label in json.loads(data)["labels"]] == ["animal", "bird"]


def test_a_format_that_loses_an_annotation_fails_the_job_loudly_and_offers_no_file(client, export_world, run_jobs, monkeypatch):
    """A format plugged in with a bug (it drops a polygon without counting it as skipped): the
    job's check against the database catches it, names the difference, and nothing is offered."""
    lossy = types.SimpleNamespace(**{name: getattr(loupe_json, name) for name in ("TITLE", "DATASET_TYPES", "OPTIONS", "file_name", "count")})
    lossy.KEY = "lossy"

    def export(source, options, out, progress):
        class Lossy:
            def __getattr__(self, name):
                return getattr(source, name)

            def images(self):
                for image in source.images():
                    yield dataclasses.replace(image, annotations=tuple(a for a in image.annotations if a.shape != "polygon"))

        return loupe_json.export(Lossy(), options, out, progress)

    lossy.export = export
    monkeypatch.setitem(EXPORTS, "lossy", lossy)
    response = start(client, export_world, format="lossy")
    assert response.status_code == 202
    run_jobs()
    export = client.get(f"/api/v1/exports/{response.get_json()['id']}", headers=export_world.headers).get_json()
    assert export["status"] == "failed" and export["download_url"] is None
    assert export["job"]["status"] == "failed"
    assert "annotations: 3 written and 0 skipped, 5 in the database" in export["job"]["message"]
    assert client.get(f"/api/v1/exports/{export['id']}/download", headers=export_world.headers).status_code == 409
    assert not get_storage().exists(export_service.file_key(export["id"], "Cats-loupe.json"))
    assert not get_storage().exists(export_service.report_key(export["id"]))
    assert not temp_path(export["id"]).exists()


def test_ready_export_downloads_with_ranges_and_its_name(client, export_world, run_jobs):
    export, data = export_file(client, export_world, run_jobs, format="json")
    url = export["download_url"]
    whole = client.get(url, headers=export_world.headers)
    assert "filename*=UTF-8''Cats-loupe.json" in whole.headers["Content-Disposition"]
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = client.get(url, headers={**export_world.headers, "Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.data == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    resumed = client.get(url, headers={**export_world.headers, "Range": f"bytes={len(data) - 5}-"})
    assert resumed.status_code == 206 and resumed.data == data[-5:]


def test_not_ready_is_409_and_expired_is_410_then_cleanup_removes_file_and_row(client, export_world, run_jobs):
    waiting = start(client, export_world, format="json").get_json()
    response = client.get(f"/api/v1/exports/{waiting['id']}/download", headers=export_world.headers)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"
    run_jobs()
    export = db.session.get(Export, waiting["id"])
    key = export.storage_key
    assert get_storage().exists(key)
    export.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.get(f"/api/v1/exports/{export.id}/download", headers=export_world.headers)
    assert response.status_code == 410 and response.get_json()["error"]["code"] == "gone"
    assert client.get(f"/api/v1/exports/{export.id}", headers=export_world.headers).get_json()["status"] == "expired"
    # The next export starts the cleanup job, which removes the expired file, its report and row.
    start(client, export_world, format="csv")
    cleanup = db.session.scalar(select(Job).where(Job.kind == "cleanup_exports"))
    assert cleanup is not None
    run_jobs()
    assert db.session.get(Job, cleanup.id).status == JobStatus.finished
    assert not get_storage().exists(key)
    assert not get_storage().exists(export_service.report_key(waiting["id"]))
    assert db.session.get(Export, waiting["id"]) is None
    assert client.get(f"/api/v1/exports/{waiting['id']}", headers=export_world.headers).status_code == 404


def test_list_pages_newest_first(client, export_world, run_jobs):
    ids = [start(client, export_world, format="json").get_json()["id"] for _ in range(3)]
    base = f"/api/v1/datasets/{export_world.dataset.id}/exports"
    page = client.get(f"{base}?limit=2", headers=export_world.headers).get_json()
    assert [e["id"] for e in page["items"]] == ids[::-1][:2] and page["total"] == 3 and page["next_offset"] == 2
    rest = client.get(f"{base}?limit=2&offset=2", headers=export_world.headers).get_json()
    assert [e["id"] for e in rest["items"]] == [ids[0]] and rest["next_offset"] is None
    assert page["items"][0]["status"] == "queued" and page["items"][0]["download_url"] is None


def test_the_rosepetal_csv_shortcut_answers_with_the_job_of_a_csv_training_export(client, export_world, run_jobs):
    url = f"/api/v1/datasets/{export_world.dataset.id}/csv?test=25&validation=25&tagmap=cat:animal,dog:animal"
    response = client.get(url, headers=export_world.headers)
    assert response.status_code == 202
    job = response.get_json()
    assert job["kind"] == "export" and job["status"] == "queued"
    export_id = job["result"]["export_id"]
    run_jobs()
    job = client.get(f"/api/v1/jobs/{job['id']}", headers=export_world.headers).get_json()
    assert job["status"] == "finished", job["message"]
    assert job["result"]["export_id"] == export_id
    export = client.get(f"/api/v1/exports/{export_id}", headers=export_world.headers).get_json()
    assert export["format"] == "csv_training" and export["options"]["test"] == 25 and export["options"]["tagmap"] == {"cat": "animal", "dog": "animal"}
    data = client.get(export["download_url"], headers=export_world.headers).data.decode()
    assert "animal" in data and ",cat" not in data and ",dog" not in data


def test_an_export_of_a_version_stays_as_released_after_the_live_dataset_changes(client, export_world, run_jobs):
    from services.versions import release_version

    job = release_version(export_world.dataset, export_world.owner, "first")
    run_jobs()
    version = db.session.scalar(select(Version).where(Version.dataset_id == export_world.dataset.id))
    assert version is not None and version.complete, db.session.get(Job, job.id).message
    # The live dataset changes after the release: a label renamed, an annotation gone, a split moved.
    export_world.labels["cat"].name = "kitten"
    db.session.execute(delete(Annotation).where(Annotation.image_id == export_world.images["b.png"].id))
    export_world.images["d.png"].split = Split.train
    db.session.commit()
    export, data = export_file(client, export_world, run_jobs, format="json", version=version.id)
    images = json_images(data)
    assert images["d.png"]["split"] == "test"
    assert [a["label"] for a in images["b.png"]["annotations"]] == ["dog", "bird"]
    assert export["report"]["per_label"] == {"bird": 1, "cat": 2, "dog": 2}
    assert export["file_name"] == f"Cats-{version.name}-loupe.json"
    _, data = export_file(client, export_world, run_jobs, format="csv", version=version.id, label_ids=[export_world.labels["dog"].id])
    assert sorted(r["image"] for r in csv_rows(data)) == ["a.png", "b.png"]


def test_deleting_the_dataset_removes_its_export_files(client, export_world, run_jobs):
    export, _ = export_file(client, export_world, run_jobs, format="json")
    key = db.session.get(Export, export["id"]).storage_key
    assert get_storage().exists(key) and get_storage().exists(export_service.report_key(export["id"]))

    assert client.delete(f"/api/v1/datasets/{export_world.dataset.id}", headers=export_world.headers).status_code == 202
    run_jobs()

    assert db.session.get(Export, export["id"]) is None
    assert not get_storage().exists(key) and not get_storage().exists(export_service.report_key(export["id"]))
