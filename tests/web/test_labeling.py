"""The labeling page and the session-authenticated JSON endpoints its canvas saves through."""

import json
import re

import pytest

from core.extensions import db
from models import Annotation, Image, ImageState, Label, Split
from tests.conftest import make_app
from tests.factories import PASSWORD, assign, make_dataset, make_user
from tests.support import IsolatedClient, hidden_csrf, insert_images, member, sign_in

# The canvas asks for JSON, and so gets its errors as JSON too (as upload.js does).
JSON = {"Accept": "application/json"}


def add_label(dataset, name: str, *, shortcut: str | None = None, position: int = 0, shape: str = "box", **extra) -> Label:
    label = Label(dataset_id=dataset.id, name=name, shortcut=shortcut, position=position, default_shape=shape, **extra)
    db.session.add(label)
    db.session.commit()
    return label


def config_of(html: str) -> dict:
    match = re.search(r'<script id="labeling-config" type="application/json">(.*?)</script>', html, re.DOTALL)
    assert match, "no labeling config on the page"
    return json.loads(match.group(1))


@pytest.fixture
def scene(client, owner):
    """A detection dataset of 5 rows (no bytes needed) with two labels, the owner signed in."""
    dataset = make_dataset(owner, name="Street")
    ids = insert_images(dataset, 5)
    db.session.execute(db.update(Image).where(Image.id.in_([ids[1], ids[3]])).values(split=Split.train))
    db.session.commit()
    car = add_label(dataset, "car", shortcut="1", position=1)
    person = add_label(dataset, "person", shortcut="2", position=0, shape="polygon")
    return dataset, ids, car, person


def url(dataset, image_id, rest="") -> str:
    return f"/datasets/{dataset.id}/images/{image_id}{rest}"


def box(label, x=1, y=2, w=10, h=8) -> dict:
    return {"label_id": label.id, "shape": "box", "geometry": {"x": x, "y": y, "width": w, "height": h}, "attributes": {}, "text": None}


def test_labeling_page_has_the_canvas_palette_in_label_order_and_the_allowed_shapes(client, scene):
    dataset, ids, *_ = scene
    response = client.get(url(dataset, ids[0], "/label"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="lb-svg"' in html and "js/labeling/main.js" in html and 'id="save-status"' in html
    config = config_of(html)
    assert [label["name"] for label in config["labels"]] == ["person", "car"]  # by position
    assert config["labels"][1]["shortcut"] == "1" and config["labels"][1]["color"]
    assert config["shapes"] == ["box", "polygon", "polyline", "points", "circle"]
    assert config["shapes_by_type"]["classification"] == ["tag"]
    assert config["width"] == 64 and config["height"] == 48 and config["can_annotate"] is True
    assert config["urls"]["annotations"] == url(dataset, ids[0], "/annotations")
    assert html.index(">person<") < html.index(">car<")
    assert 'id="lb-submit"' in html and 'id="lb-skip"' in html


def test_next_and_previous_follow_the_grid_filter_by_id(client, scene):
    dataset, ids, *_ = scene
    config = config_of(client.get(url(dataset, ids[2], "/label")).get_data(as_text=True))
    assert config["urls"]["next"] == url(dataset, ids[3], "/label")
    assert config["urls"]["previous"] == url(dataset, ids[1], "/label")
    # In the train split (ids[1] and ids[3]) the neighbours skip the others, and keep the filter.
    config = config_of(client.get(url(dataset, ids[1], "/label?split=train")).get_data(as_text=True))
    assert config["urls"]["next"] == url(dataset, ids[3], "/label?split=train")
    assert config["urls"]["previous"] is None
    assert config["urls"]["grid"] == f"/datasets/{dataset.id}/images/?split=train"
    last = config_of(client.get(url(dataset, ids[4], "/label")).get_data(as_text=True))
    assert last["urls"]["next"] is None


def test_a_bad_filter_on_the_labeling_page_is_refused(client, scene):
    dataset, ids, *_ = scene
    assert client.get(url(dataset, ids[0], "/label?split=nonsense")).status_code == 422


def test_save_then_read_back_with_the_new_revision_and_state(client, scene):
    dataset, ids, car, person = scene
    target = url(dataset, ids[0], "/annotations")
    assert client.get(target).get_json() == {"revision": 0, "state": "unlabeled", "annotations": []}
    polygon = {"label_id": person.id, "shape": "polygon", "geometry": {"points": [[1, 1], [20, 1], [10, 15]]}}
    response = client.put(target, json={"revision": 0, "annotations": [box(car), polygon]})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["revision"] == 1 and body["state"] == "in_progress"
    again = client.get(target).get_json()
    assert [(a["shape"], a["label_id"]) for a in again["annotations"]] == [("box", car.id), ("polygon", person.id)]
    assert again["annotations"][0]["geometry"] == {"x": 1, "y": 2, "width": 10, "height": 8}


def test_a_save_based_on_an_old_revision_gets_a_conflict_with_the_current_annotations(client, scene):
    dataset, ids, car, _ = scene
    target = url(dataset, ids[0], "/annotations")
    client.put(target, json={"revision": 0, "annotations": [box(car)]})
    response = client.put(target, json={"revision": 0, "annotations": [box(car, x=30)]}, headers=JSON)
    assert response.status_code == 409
    details = response.get_json()["error"]["details"]
    assert details["current_revision"] == 1
    assert details["annotations"][0]["geometry"]["x"] == 1
    # "Keep mine": send again based on their revision.
    assert client.put(target, json={"revision": 1, "annotations": [box(car, x=30)]}).get_json()["revision"] == 2


@pytest.mark.parametrize(
    "body",
    [None, [], {"annotations": []}, {"revision": 0}, {"revision": "x", "annotations": []}, {"revision": 0, "annotations": "nope"}],
)
def test_a_malformed_save_is_refused_and_changes_nothing(client, scene, body):
    dataset, ids, *_ = scene
    kwargs = {"data": "not json", "content_type": "application/json"} if body is None else {"json": body}
    response = client.put(url(dataset, ids[0], "/annotations"), headers=JSON, **kwargs)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "invalid"
    assert db.session.get(Image, ids[0]).revision == 0


def test_a_shape_the_dataset_type_does_not_allow_is_refused(client, owner):
    dataset = make_dataset(owner, type="classification")
    image_id = insert_images(dataset, 1)[0]
    cat = add_label(dataset, "cat", shortcut="c", shape="tag")
    response = client.put(url(dataset, image_id, "/annotations"), json={"revision": 0, "annotations": [box(cat)]})
    assert response.status_code == 422
    tag = {"label_id": cat.id, "shape": "tag", "geometry": {}}
    assert client.put(url(dataset, image_id, "/annotations"), json={"revision": 0, "annotations": [tag]}).status_code == 200


def test_submit_hands_the_image_in_and_skip_submits_it_empty(client, scene):
    dataset, ids, car, _ = scene
    client.put(url(dataset, ids[0], "/annotations"), json={"revision": 0, "annotations": [box(car)]})
    response = client.post(url(dataset, ids[0], "/submit"), json={"revision": 1})
    assert response.status_code == 200
    assert response.get_json()["state"] == "accepted"  # no task asks for review
    assert client.post(url(dataset, ids[0], "/submit"), json={}).status_code == 409  # already accepted

    client.put(url(dataset, ids[1], "/annotations"), json={"revision": 0, "annotations": [box(car)]})
    response = client.post(url(dataset, ids[1], "/skip"))
    assert response.status_code == 200
    assert response.get_json()["annotations"] == []
    assert db.session.get(Image, ids[1]).state == ImageState.accepted


def test_submit_based_on_a_stale_revision_is_a_conflict(client, scene):
    dataset, ids, car, _ = scene
    client.put(url(dataset, ids[0], "/annotations"), json={"revision": 0, "annotations": [box(car)]})
    assert client.post(url(dataset, ids[0], "/submit"), json={"revision": 0}).status_code == 409
    assert db.session.get(Image, ids[0]).state == ImageState.in_progress


def test_history_lists_revisions_and_restore_brings_one_back(client, scene):
    dataset, ids, car, _ = scene
    target = url(dataset, ids[0], "/annotations")
    client.put(target, json={"revision": 0, "annotations": [box(car)]})
    client.put(target, json={"revision": 1, "annotations": []})
    html = client.get(url(dataset, ids[0], "/history"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'id="history-list"' in html and "<html" not in html
    assert re.findall(r'<li class="[^"]*" data-revision="(\d+)"', html) == ["2", "1"]
    assert "1 annotation" in html and "0 annotations" in html and "Test User" in html
    assert "/history/1/restore" in html and "/history/2/restore" not in html  # the current one has no button

    response = client.post(url(dataset, ids[0], "/history/1/restore"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "annotationsRestored"
    assert 'data-revision="3"' in response.get_data(as_text=True)
    assert len(client.get(target).get_json()["annotations"]) == 1
    assert client.post(url(dataset, ids[0], "/history/99/restore")).status_code == 404


def test_a_reviewer_annotates_and_an_unassigned_labeler_sees_nothing(client, new_client, scene):
    dataset, ids, car, _ = scene
    reviewer, labeler = new_client(), new_client()
    sign_in(reviewer, member(dataset, "reviewer"))
    labeler_user = member(dataset, "labeler")
    sign_in(labeler, labeler_user)
    assert reviewer.put(url(dataset, ids[0], "/annotations"), json={"revision": 0, "annotations": [box(car)]}).status_code == 200
    assert labeler.get(url(dataset, ids[0], "/label")).status_code == 404
    assert labeler.put(url(dataset, ids[0], "/annotations"), json={"revision": 1, "annotations": []}).status_code == 404
    assign(dataset, ids[0], labeler_user)
    assert labeler.put(url(dataset, ids[0], "/annotations"), json={"revision": 1, "annotations": []}).status_code == 200
    # Labeler navigation only walks their own images.
    config = config_of(labeler.get(url(dataset, ids[0], "/label")).get_data(as_text=True))
    assert config["urls"]["next"] is None and config["urls"]["previous"] is None


def test_an_outsider_of_a_public_dataset_sees_the_page_read_only(client, new_client, scene):
    dataset, ids, car, _ = scene
    dataset.public = True
    db.session.commit()
    outsider = new_client()
    sign_in(outsider, make_user())
    html = outsider.get(url(dataset, ids[0], "/label")).get_data(as_text=True)
    assert config_of(html)["can_annotate"] is False and 'id="lb-submit"' not in html
    assert outsider.get(url(dataset, ids[0], "/annotations")).status_code == 200
    assert outsider.put(url(dataset, ids[0], "/annotations"), json={"revision": 0, "annotations": [box(car)]}).status_code == 403
    assert outsider.post(url(dataset, ids[0], "/submit")).status_code == 403
    assert db.session.scalar(db.select(db.func.count(Annotation.id))) == 0


def test_grid_tiles_and_the_image_page_link_to_the_labeling_page(client, scene):
    dataset, ids, *_ = scene
    grid = client.get(f"/datasets/{dataset.id}/images/?split=train").get_data(as_text=True)
    assert f'href="{url(dataset, ids[1], "/label?split=train")}"' in grid
    details = client.get(url(dataset, ids[0])).get_data(as_text=True)
    assert f'href="{url(dataset, ids[0], "/label")}"' in details


def test_the_canvas_saves_with_the_csrf_header_from_the_page_and_not_without(app_ctx, backend, owner):
    dataset = make_dataset(owner)
    image_id = insert_images(dataset, 1)[0]
    car = add_label(dataset, "car")
    app = make_app(backend, WTF_CSRF_ENABLED=True, REDIS_URL=app_ctx.config["REDIS_URL"])
    browser = IsolatedClient(app, app.response_class, use_cookies=True)
    token = hidden_csrf(browser.get("/login").get_data(as_text=True))
    assert browser.post("/login", data={"email": owner.email, "password": PASSWORD, "csrf_token": token}).status_code == 303
    page = browser.get(url(dataset, image_id, "/label")).get_data(as_text=True)
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))
    body = {"revision": 0, "annotations": [box(car)]}
    refused = browser.put(url(dataset, image_id, "/annotations"), json=body, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    assert browser.put(url(dataset, image_id, "/annotations"), json=body, headers=headers).status_code == 200
