"""The labels API: list, create, update, reorder, copy, merge and delete (jobs), and every bad value per field."""

import pytest
from sqlalchemy import insert

from core.extensions import db
from models import Annotation, Job, JobStatus
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, member

BAD_FIELDS = [
    ("name", "", 422), ("name", "   ", 422), ("name", "x" * 201, 422), ("name", 5, 422), ("name", "CAT", 409),
    ("color", "red", 422), ("color", "#12345", 422), ("color", "#1234567", 422), ("color", "#ggg000", 422), ("color", "", 422),
    ("shortcut", "ab", 422), ("shortcut", "!", 422), ("shortcut", "é", 422), ("shortcut", "C", 409), ("shortcut", 7, 422),
    ("default_shape", "cube", 422), ("default_shape", "tag", 422), ("default_shape", None, 422),
    ("with_text", "yes", 422), ("with_text", 1, 422),
    ("unclassified", "true", 422), ("unclassified", True, 409),
    ("position", -1, 422), ("position", "1", 422), ("position", 1.5, 422), ("position", True, 422),
    ("attributes", "size", 422), ("attributes", {"name": "a"}, 422), ("attributes", [{"name": f"a{i}", "type": "text"} for i in range(51)], 422),
    ("attributes", ["size"], 422), ("attributes", [{"type": "text"}], 422), ("attributes", [{"name": "", "type": "text"}], 422),
    ("attributes", [{"name": "n" * 101, "type": "text"}], 422),
    ("attributes", [{"name": "size", "type": "text"}, {"name": "Size", "type": "number"}], 422),
    ("attributes", [{"name": "size", "type": "date"}], 422), ("attributes", [{"name": "size"}], 422),
    ("attributes", [{"name": "size", "type": "select"}], 422), ("attributes", [{"name": "size", "type": "select", "values": []}], 422),
    ("attributes", [{"name": "size", "type": "select", "values": ["s", "s"]}], 422),
    ("attributes", [{"name": "size", "type": "select", "values": ["s", 3]}], 422),
    ("attributes", [{"name": "size", "type": "select", "values": ["s", " "]}], 422),
    ("attributes", [{"name": "size", "type": "text", "values": ["s"]}], 422),
    ("attributes", [{"name": "size", "type": "text", "default": 5}], 422),
    ("attributes", [{"name": "size", "type": "number", "default": "big"}], 422),
    ("attributes", [{"name": "size", "type": "number", "default": True}], 422),
    ("attributes", [{"name": "ok", "type": "checkbox", "default": "yes"}], 422),
    ("attributes", [{"name": "size", "type": "select", "values": ["s", "m"], "default": "xl"}], 422),
    ("attributes", [{"name": "size", "type": "text", "colour": "red"}], 422),
    ("bogus", 1, 422),
]


@pytest.fixture
def setup(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, name="Street", type="detection")
    headers = token_for(owner)
    return owner, dataset, headers, f"/api/v1/datasets/{dataset.id}/labels"


def _create(client, url, headers, **fields):
    response = client.post(url, json=fields, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_list_and_update_a_label_with_every_field(client, setup):
    owner, dataset, headers, url = setup
    attributes = [
        {"name": "occluded", "type": "checkbox", "default": False},
        {"name": "color", "type": "select", "values": ["red", "blue"], "default": "red"},
        {"name": "plate", "type": "text"}, {"name": "speed", "type": "number", "default": 2.5},
    ]
    created = _create(client, url, headers, name=" Car ", color="#A0B0C0", shortcut="C", default_shape="polygon",
                      with_text=True, attributes=attributes, unclassified=True)
    assert created["name"] == "Car" and created["color"] == "#a0b0c0" and created["shortcut"] == "c"
    assert created["default_shape"] == "polygon" and created["with_text"] is True and created["unclassified"] is True
    assert [a["name"] for a in created["attributes"]] == ["occluded", "color", "plate", "speed"]
    assert created["attributes"][1]["values"] == ["red", "blue"] and created["attributes"][3]["default"] == 2.5
    assert created["image_count"] == 0 and created["annotation_count"] == 0 and created["position"] == 0
    second = _create(client, url, headers, name="Bus")
    assert second["default_shape"] == "box" and second["shortcut"] is None and second["position"] == 1

    response = client.patch(f"{url}/{second['id']}", json={"shortcut": "b", "color": "#000000", "attributes": []}, headers=headers)
    assert response.status_code == 200 and response.get_json()["shortcut"] == "b"
    response = client.patch(f"{url}/{second['id']}", json={"shortcut": None}, headers=headers)
    assert response.get_json()["shortcut"] is None
    listing = client.get(url, headers=headers).get_json()
    assert [label["name"] for label in listing] == ["Car", "Bus"]
    shown = client.get(f"/api/v1/datasets/{dataset.id}", headers=headers).get_json()
    assert shown["labels"][0]["attributes"] == created["attributes"] and shown["labels"][0]["with_text"] is True


@pytest.mark.parametrize("field,value,status", BAD_FIELDS, ids=[f"{f}={str(v)[:20]!r}" for f, v, _ in BAD_FIELDS])
def test_every_bad_value_is_refused_with_a_clear_error_and_nothing_changes(client, setup, field, value, status):
    owner, dataset, headers, url = setup
    cat = _create(client, url, headers, name="cat", shortcut="c", unclassified=True, attributes=[{"name": "kept", "type": "text"}])
    dog = _create(client, url, headers, name="dog")
    before = client.get(url, headers=headers).get_json()

    response = client.patch(f"{url}/{dog['id']}", json={"name": "dog", field: value}, headers=headers)
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == ("conflict" if status == 409 else "invalid") and len(error["message"]) > 10
    response = client.post(url, json={"name": "new one", field: value} if field != "name" else {field: value}, headers=headers)
    assert response.status_code == status, response.get_json()
    assert client.get(url, headers=headers).get_json() == before
    assert cat["id"] != dog["id"]


def test_an_error_names_the_field_at_fault(client, setup):
    owner, dataset, headers, url = setup
    response = client.post(url, json={"name": "x", "attributes": [{"name": "a", "type": "text"}, {"name": "b", "type": "select", "values": []}]}, headers=headers)
    error = response.get_json()["error"]
    assert error["details"] == {"field": "attributes[1].values"} and "attributes[1] (b)" in error["message"]
    response = client.post(url, json={"name": "x", "default_shape": "tag"}, headers=headers)
    assert "not allowed in a detection dataset" in response.get_json()["error"]["message"]


def test_a_label_of_another_dataset_is_not_found(client, setup):
    owner, dataset, headers, url = setup
    other = make_dataset(owner, name="Other")
    label = _create(client, f"/api/v1/datasets/{other.id}/labels", headers, name="x")
    assert client.patch(f"{url}/{label['id']}", json={"name": "y"}, headers=headers).status_code == 404
    assert client.delete(f"{url}/{label['id']}", headers=headers).status_code == 404


def test_reorder_takes_every_label_once(client, setup):
    owner, dataset, headers, url = setup
    ids = [_create(client, url, headers, name=n)["id"] for n in ("a", "b", "c")]
    response = client.post(f"{url}/reorder", json={"label_ids": [ids[2], ids[0], ids[1]]}, headers=headers)
    assert response.status_code == 200
    assert [label["name"] for label in response.get_json()] == ["c", "a", "b"]
    assert [label["position"] for label in response.get_json()] == [0, 1, 2]
    for bad in ([ids[0], ids[1]], [ids[0], ids[1], ids[2], ids[2]], [ids[0], ids[1], 999999], "abc", [ids[0], ids[1], "x"]):
        response = client.post(f"{url}/reorder", json={"label_ids": bad}, headers=headers)
        assert response.status_code == 422, bad
        assert response.get_json()["error"]["message"]
    assert [label["name"] for label in client.get(url, headers=headers).get_json()] == ["c", "a", "b"]


def test_copy_from_a_visible_dataset_skips_names_and_drops_clashing_shortcuts(client, setup):
    owner, dataset, headers, url = setup
    source = make_dataset(owner, name="Source", type="classification")
    source_url = f"/api/v1/datasets/{source.id}/labels"
    _create(client, source_url, headers, name="Car", shortcut="c")
    _create(client, source_url, headers, name="Truck", shortcut="t", attributes=[{"name": "axles", "type": "number"}])
    _create(client, source_url, headers, name="Bike", shortcut="b")
    _create(client, url, headers, name="car")
    _create(client, url, headers, name="Bus", shortcut="t")
    response = client.post(f"{url}/copy", json={"from_dataset_id": source.id}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["copied"] == ["Truck", "Bike"] and body["skipped"] == ["Car"] and body["shortcuts_dropped"] == ["Truck"]
    assert body["shapes_changed"] == ["Truck", "Bike"]  # tag is not a detection shape
    assert "dropped the shortcut of Truck" in body["message"]
    by_name = {label["name"]: label for label in body["labels"]}
    assert by_name["Truck"]["shortcut"] is None and by_name["Bike"]["shortcut"] == "b"
    assert by_name["Truck"]["attributes"] == [{"name": "axles", "type": "number", "values": []}]  # an array is never null
    assert by_name["Truck"]["default_shape"] == "box"


def test_copy_from_a_dataset_the_caller_cannot_see_is_not_found(client, setup):
    owner, dataset, headers, url = setup
    hidden = make_dataset(make_user(), name="Hidden")
    response = client.post(f"{url}/copy", json={"from_dataset_id": hidden.id}, headers=headers)
    assert response.status_code == 404 and "Hidden" not in response.get_data(as_text=True)
    assert client.post(f"{url}/copy", json={"from_dataset_id": dataset.id}, headers=headers).status_code == 422
    assert client.post(f"{url}/copy", json={"from_dataset_id": "x"}, headers=headers).status_code == 422
    manager = member(dataset, "manager")
    visible_to_owner = make_dataset(owner, name="Mine only")
    response = client.post(f"{url}/copy", json={"from_dataset_id": visible_to_owner.id}, headers=token_for(manager))
    assert response.status_code == 404


def test_merge_and_delete_answer_202_with_a_job_that_rewrites_annotations(client, setup, run_jobs):
    owner, dataset, headers, url = setup
    car, truck, bus = (_create(client, url, headers, name=n)["id"] for n in ("car", "truck", "bus"))
    ids = insert_images(dataset, 50)
    db.session.execute(insert(Annotation), [
        {"image_id": i, "label_id": label, "shape": "box", "geometry": {}, "attributes": {}, "source": "human"}
        for i in ids for label in (car, truck, bus)
    ])
    db.session.commit()
    response = client.post(f"{url}/merge", json={"label_ids": [car, truck], "name": "vehicle", "color": "#112233"}, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["kind"] == "merge_labels" and job["status"] == "queued" and job["total"] == 50
    run_jobs()
    polled = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).get_json()
    assert polled["status"] == "finished" and polled["done"] == 50
    labels = {label["name"]: label for label in client.get(url, headers=headers).get_json()}
    assert set(labels) == {"vehicle", "bus"}
    assert (labels["vehicle"]["image_count"], labels["vehicle"]["annotation_count"]) == (50, 100)
    assert labels["vehicle"]["color"] == "#112233"

    response = client.delete(f"{url}/{bus}", headers=headers)
    assert response.status_code == 202 and response.get_json()["kind"] == "delete_label"
    run_jobs()
    assert [label["name"] for label in client.get(url, headers=headers).get_json()] == ["vehicle"]
    shown = client.get(f"/api/v1/datasets/{dataset.id}", headers=headers).get_json()
    assert shown["annotation_count"] == 100

    response = client.post(f"{url}/refresh-counters", headers=headers)
    assert response.status_code == 202
    run_jobs()
    assert db.session.get(Job, response.get_json()["id"]).status == JobStatus.finished


@pytest.mark.parametrize("body,field", [
    ({"label_ids": [], "name": "x"}, "label_ids"),
    ({"name": "x"}, "label_ids"),
    ({"label_ids": "1", "name": "x"}, "label_ids"),
    ({"label_ids": ["LABEL_A"], "name": "LABEL_A"}, "label_ids"),  # merging a label into itself
    ({"label_ids": ["LABEL_A", "LABEL_B"], "name": ""}, "name"),
    ({"label_ids": ["LABEL_A", "LABEL_B"], "name": "x" * 201}, "name"),
    ({"label_ids": ["LABEL_A", "LABEL_B"], "name": "x", "color": "blue"}, "color"),
    ({"label_ids": ["LABEL_A", 999999], "name": "x"}, "label_ids"),
])
def test_a_bad_merge_is_refused_and_starts_no_job(client, setup, body, field):
    owner, dataset, headers, url = setup
    a, b = (_create(client, url, headers, name=n)["id"] for n in ("a", "b"))
    body = {k: ([{"LABEL_A": a, "LABEL_B": b}.get(i, i) for i in v] if k == "label_ids" and isinstance(v, list) else v)
            for k, v in body.items()}
    if body.get("name") == "LABEL_A":
        body["name"] = "a"
    response = client.post(f"{url}/merge", json=body, headers=headers)
    assert response.status_code in (404, 422), response.get_json()
    assert response.get_json()["error"]["message"]
    assert db.session.scalar(db.select(db.func.count(Job.id))) == 0


def test_the_openapi_document_lists_the_label_routes(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    base = "/api/v1/datasets/{dataset_id}/labels"
    assert {"get", "post"} <= set(doc["paths"][base])
    assert {"patch", "delete"} <= set(doc["paths"][base + "/{label_id}"])
    assert "202" in doc["paths"][base + "/{label_id}"]["delete"]["responses"]
    for path in ("/merge", "/reorder", "/copy", "/refresh-counters"):
        assert "post" in doc["paths"][base + path], path
    merge = doc["paths"][base + "/merge"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"label_ids", "name", "color"} <= set(doc["components"]["schemas"][merge]["properties"])
    label = doc["components"]["schemas"]["Label"]["properties"]
    assert {"with_text", "attributes", "unclassified", "shortcut", "default_shape", "image_count"} <= set(label)
