"""Bad export options: each is refused with a 422 naming the option, and nothing is created."""

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Export, Job, Version
from tests.exports.helpers import start
from tests.factories import make_dataset

BAD = [
    ({"format": "pdf"}, "format", "Unknown format 'pdf'; use one of json, csv, "),
    ({}, "format", "format: Missing data for required field"),
    ({"format": ""}, "format", "Choose a format: one of json, csv, "),
    ({"format": "json", "coordinates": "inches"}, "coordinates", "Unknown coordinates 'inches'"),
    ({"format": "json", "split": "train,holiday"}, "split", "Unknown split 'holiday'"),
    ({"format": "json", "state": ["done"]}, "state", "Unknown state 'done'"),
    ({"format": "json", "tagmap": "cat:animal,dog"}, "tagmap", "tagmap entry 2 ('dog') is not from:to"),
    ({"format": "json", "tagmap": "cat:animal,:x"}, "tagmap", "tagmap entry 2"),
    ({"format": "json", "tagmap": "cat:a:b"}, "tagmap", "tagmap entry 1"),
    ({"format": "json", "tagmap": "cat:a,CAT:b"}, "tagmap", "maps 'CAT' twice"),
    ({"format": "json", "label_ids": [999999]}, "label_ids", "999999 is not a label of this dataset"),
    ({"format": "json", "image_ids": [999999]}, "image_ids", "999999 not in this dataset"),
    ({"format": "json", "image_ids": list(range(1, 10_002))}, "image_ids", "export by a filter"),
    ({"format": "json", "test": 10}, "test", "does not take 'test'"),
    ({"format": "crops"}, "crop_label_id", "format needs 'crop_label_id'"),
    ({"format": "json", "version": 999999}, "version", "Version 999999 is not a released version of this dataset"),
]


@pytest.mark.parametrize("options, field, message", BAD, ids=[b[1] + ":" + b[2][:30] for b in BAD])
def test_bad_option_is_refused_saying_which(client, export_world, options, field, message):
    response = start(client, export_world, **options)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert message in error["message"]
    assert error.get("details", {}).get("field", field) == field
    assert db.session.scalar(select(func.count()).select_from(Export)) == 0
    assert db.session.scalar(select(func.count()).select_from(Job).where(Job.kind == "export")) == 0


@pytest.mark.parametrize("test, validation, message", [
    (80, 30, "test (80) and validation (30) together are over 100 percent"),
    (101, 0, "test must be from 0 to 100, not 101"),
    (0, -1, "validation must be from 0 to 100, not -1"),
])
def test_split_percentages_over_100_are_refused(client, export_world, test, validation, message):
    assert start(client, export_world, format="csv_training", test=20, validation=10).status_code == 202
    response = start(client, export_world, format="csv_training", test=test, validation=validation)
    assert response.status_code == 422
    assert message in response.get_json()["error"]["message"]


def test_the_rosepetal_shortcut_refuses_percentages_over_100(client, export_world):
    response = client.get(f"/api/v1/datasets/{export_world.dataset.id}/csv?test=70&validation=40", headers=export_world.headers)
    assert response.status_code == 422
    assert "test (70) and validation (40) together are over 100 percent" in response.get_json()["error"]["message"]
    response = client.get(f"/api/v1/datasets/{export_world.dataset.id}/csv?tagmap=cat", headers=export_world.headers)
    assert response.status_code == 422 and "tagmap entry 1" in response.get_json()["error"]["message"]


def test_a_version_of_another_dataset_is_refused(client, export_world):
    other = make_dataset(export_world.owner, name="Dogs")
    version = Version(dataset_id=other.id, number=1, complete=True)
    db.session.add(version)
    db.session.commit()
    response = start(client, export_world, format="json", version=version.id)
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == f"Version {version.id} is not a released version of this dataset"


def test_a_format_that_cannot_export_the_type_is_refused(client, export_world, monkeypatch):
    import types

    from formats import EXPORTS, loupe_json

    fmt = types.SimpleNamespace(**{n: getattr(loupe_json, n) for n in ("OPTIONS", "file_name", "export", "count")})
    fmt.KEY, fmt.TITLE, fmt.DATASET_TYPES = "classes_only", "Classes only", ("classification",)
    monkeypatch.setitem(EXPORTS, "classes_only", fmt)
    response = start(client, export_world, format="classes_only")
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == "The Classes only format cannot export a detection dataset"


def test_schema_refuses_wrong_types_before_the_service(client, export_world):
    response = start(client, export_world, format="json", full_path="maybe")
    assert response.status_code == 422
    response = start(client, export_world, format="json", image_ids="1,2")
    assert response.status_code == 422
    response = start(client, export_world, format="json", colour="red")
    assert response.status_code == 422
