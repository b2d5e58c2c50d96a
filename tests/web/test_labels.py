"""The Labels page: inline create and edit with attribute rows, errors inline, reorder, copy, merge, delete, counters."""

import re

import pytest
from sqlalchemy import insert, select

from core.extensions import db
from models import Annotation, Job, JobStatus, Label
from services import labels as service
from tests.factories import make_dataset, make_user
from tests.support import insert_images, member, sign_in

HX = {"HX-Request": "true"}


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Street", type="detection")


def _url(dataset, rest: str = "") -> str:
    return f"/datasets/{dataset.id}/labels/{rest}"


def _form(**overrides) -> dict:
    form = {"name": "car", "color": "#ff0000", "shortcut": "c", "default_shape": "box",
            "attr_name": [], "attr_type": [], "attr_values": [], "attr_default": []}
    form.update(overrides)
    return form


def _labels(dataset) -> list[Label]:
    return service.list_labels(dataset)


def _row_order(html: str) -> list[str]:
    return re.findall(r'data-label-name="([^"]+)"', html)


def test_the_page_lists_labels_with_counters_and_shows_the_forms_to_a_manager(client, owner, dataset):
    service.create_label(dataset, name="car", shortcut="c")
    make_dataset(owner, name="Another")
    label = _labels(dataset)[0]
    label.image_count, label.annotation_count = 7, 19
    db.session.commit()
    page = client.get(_url(dataset)).get_data(as_text=True)
    assert 'id="labels-table"' in page and 'data-label-name="car"' in page
    assert 'data-counter="images">7<' in page and 'data-counter="annotations">19<' in page
    assert "built-in" not in page and "Undefined" not in page
    for marker in ('id="create-label"', 'id="copy-form"', 'id="refresh-label-counters"', ">Edit<", "data-add-attribute", 'name="attr_type"'):
        assert marker in page, marker
    assert "Labels</a>" in client.get(f"/datasets/{dataset.id}").get_data(as_text=True), "the dataset tabs link the page"


@pytest.mark.parametrize("role", ["reviewer", "labeler"])
def test_readers_see_the_list_read_only(client, app_ctx, role):
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    service.create_label(dataset, name="car")
    sign_in(client, member(dataset, role))
    page = client.get(_url(dataset)).get_data(as_text=True)
    assert 'data-label-name="car"' in page
    for marker in ('id="create-label"', 'id="copy-form"', 'id="merge-form"', ">Edit<", ">Delete<", "Refresh counters", 'name="label_ids"'):
        assert marker not in page, marker


def test_an_outsider_sees_a_public_datasets_labels_read_only(client, app_ctx):
    dataset = make_dataset(make_user(), type="detection", public=True)
    service.create_label(dataset, name="car")
    sign_in(client, make_user())
    page = client.get(_url(dataset)).get_data(as_text=True)
    assert 'data-label-name="car"' in page and 'id="create-label"' not in page
    assert client.post(_url(dataset), data=_form(name="mine")).status_code == 403


def test_create_inline_with_attribute_rows(client, owner, dataset):
    response = client.post(_url(dataset), headers=HX, data=_form(
        with_text="1",
        attr_name=["size", "occluded", "speed", "note", ""], attr_type=["select", "checkbox", "number", "text", "text"],
        attr_values=["s, m, l", "", "", "", ""], attr_default=["m", "yes", "2.5", "hello", ""],
    ))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="labels"') and "<html" not in html
    label = _labels(dataset)[0]
    assert (label.name, label.color, label.shortcut, label.default_shape, label.with_text) == ("car", "#ff0000", "c", "box", True)
    assert label.attributes == [
        {"name": "size", "type": "select", "values": ["s", "m", "l"], "default": "m"},
        {"name": "occluded", "type": "checkbox", "default": True},
        {"name": "speed", "type": "number", "default": 2.5},
        {"name": "note", "type": "text", "default": "hello"},
    ]


WEB_BAD = [
    ({"name": ""}, "needs a name"),
    ({"name": "x" * 201}, "longer than 200"),
    ({"name": "CAR"}, "already has a label named"),
    ({"color": "red"}, "#rrggbb"),
    ({"shortcut": "ab"}, "single key"),
    ({"shortcut": "C"}, "already used by"),
    ({"default_shape": "tag"}, "not allowed in a detection dataset"),
    ({"attr_name": ["size"], "attr_type": ["select"], "attr_values": [""], "attr_default": [""]}, "needs a non-empty list of values"),
    ({"attr_name": ["size"], "attr_type": ["select"], "attr_values": ["s, s"], "attr_default": [""]}, "must be distinct"),
    ({"attr_name": ["size"], "attr_type": ["select"], "attr_values": ["s, m"], "attr_default": ["xl"]}, "is not one of the values"),
    ({"attr_name": ["speed"], "attr_type": ["number"], "attr_values": [""], "attr_default": ["fast"]}, "finite number"),
    ({"attr_name": ["ok"], "attr_type": ["checkbox"], "attr_values": [""], "attr_default": ["maybe"]}, "true or false"),
    ({"attr_name": ["a", "A"], "attr_type": ["text", "text"], "attr_values": ["", ""], "attr_default": ["", ""]}, "must be unique"),
    ({"attr_name": ["a"], "attr_type": ["date"], "attr_values": [""], "attr_default": [""]}, "type must be one of"),
    ({"attr_name": ["a"], "attr_type": ["text"], "attr_values": ["x, y"], "attr_default": [""]}, "only select attributes have values"),
    ({"attr_name": [""], "attr_type": ["text"], "attr_values": [""], "attr_default": ["orphan"]}, "must be 1 to 100 characters"),
]


@pytest.mark.parametrize("changes,message", WEB_BAD, ids=[m for _, m in WEB_BAD])
def test_a_bad_create_shows_the_error_inline_with_422_and_stores_nothing(client, owner, dataset, changes, message):
    service.create_label(dataset, name="car", shortcut="c")
    response = client.post(_url(dataset), headers=HX, data=_form(**{"name": "bus", "shortcut": "", **changes}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html.replace("&#39;", "'") and 'role="alert"' in html and 'id="create-label"' in html
    assert [label.name for label in _labels(dataset)] == ["car"]


@pytest.mark.parametrize("changes,message", WEB_BAD, ids=[m for _, m in WEB_BAD])
def test_a_bad_inline_edit_shows_the_error_in_the_row_and_changes_nothing(client, owner, dataset, changes, message):
    service.create_label(dataset, name="car", shortcut="c")
    bus = service.create_label(dataset, name="bus", shortcut="b", attributes=[{"name": "kept", "type": "text"}])
    snapshot = {f: getattr(bus, f) for f in service.FIELDS}
    response = client.post(_url(dataset, f"{bus.id}"), headers=HX, data=_form(**{"name": "bus", "shortcut": "b", **changes}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith(f'<tr id="label-{bus.id}" class="editing"')
    assert message in html.replace("&#39;", "'")
    db.session.expire_all()
    assert {f: getattr(db.session.get(Label, bus.id), f) for f in service.FIELDS} == snapshot


def test_inline_edit_shows_the_current_values_then_saves_every_field(client, owner, dataset):
    label = service.create_label(dataset, name="car", shortcut="c", attributes=[
        {"name": "size", "type": "select", "values": ["s", "m"], "default": "s"}, {"name": "ok", "type": "checkbox", "default": False},
    ])
    form = client.get(_url(dataset, f"{label.id}/edit"), headers=HX).get_data(as_text=True)
    assert form.lstrip().startswith(f'<tr id="label-{label.id}" class="editing"')
    assert 'value="s, m"' in form and 'value="false"' in form and 'name="shortcut" value="c"' in form
    response = client.post(_url(dataset, f"{label.id}"), headers=HX, data=_form(
        name="Auto", color="#00ff00", shortcut="a", default_shape="polygon", unclassified="1", with_text="1",
        attr_name=["size"], attr_type=["select"], attr_values=["s,m,xl"], attr_default=["xl"],
    ))
    assert response.status_code == 200
    assert response.get_data(as_text=True).lstrip().startswith(f'<tr id="label-{label.id}" data-label-id')
    db.session.expire_all()
    label = db.session.get(Label, label.id)
    assert (label.name, label.color, label.shortcut, label.default_shape, label.unclassified, label.with_text) == (
        "Auto", "#00ff00", "a", "polygon", True, True)
    assert label.attributes == [{"name": "size", "type": "select", "values": ["s", "m", "xl"], "default": "xl"}]
    cancel = client.get(_url(dataset, f"{label.id}"), headers=HX)
    assert cancel.status_code == 200 and 'data-label-name="Auto"' in cancel.get_data(as_text=True)


def test_without_htmx_the_forms_redirect_back_to_the_page(client, owner, dataset):
    response = client.post(_url(dataset), data=_form())
    assert response.status_code == 303 and response.headers["Location"].endswith(_url(dataset))
    label = _labels(dataset)[0]
    page = client.get(_url(dataset, f"{label.id}/edit"))
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True) and 'class="editing"' in page.get_data(as_text=True)
    error = client.post(_url(dataset, f"{label.id}"), data=_form(color="nope"))
    assert error.status_code == 422 and "<html" in error.get_data(as_text=True) and "#rrggbb" in error.get_data(as_text=True)


def test_up_and_down_buttons_reorder(client, owner, dataset):
    a, b, c = (service.create_label(dataset, name=n) for n in "abc")
    response = client.post(_url(dataset, "reorder"), headers=HX, data={"label_id": c.id, "direction": "up"})
    assert _row_order(response.get_data(as_text=True)) == ["a", "c", "b"]
    client.post(_url(dataset, "reorder"), headers=HX, data={"label_id": a.id, "direction": "up"})  # already first
    client.post(_url(dataset, "reorder"), headers=HX, data={"label_id": a.id, "direction": "down"})
    assert [label.name for label in _labels(dataset)] == ["c", "a", "b"]
    response = client.post(_url(dataset, "reorder"), headers=HX, data={"label_ids": [str(b.id), str(a.id), str(c.id)]})
    assert _row_order(response.get_data(as_text=True)) == ["b", "a", "c"]
    assert client.post(_url(dataset, "reorder"), headers=HX, data={"label_id": a.id, "direction": "sideways"}).status_code == 422
    assert client.post(_url(dataset, "reorder"), headers=HX, data={"label_ids": [str(a.id)]}).status_code == 422


def test_the_table_offers_drag_and_drop_reorder_to_managers_only(client, app_ctx, owner, dataset):
    a, b = (service.create_label(dataset, name=n) for n in "ab")
    html = client.get(_url(dataset)).get_data(as_text=True)
    assert "<tbody data-reorder>" in html and html.count('draggable="true"') == 2
    assert 'id="reorder-form"' in html and f'hx-post="{_url(dataset, "reorder")}"' in html
    sign_in(client, member(dataset, "reviewer"))
    html = client.get(_url(dataset)).get_data(as_text=True)
    assert "data-reorder" not in html and "draggable" not in html and "reorder-form" not in html


def test_a_stale_drag_and_drop_order_keeps_the_stored_order_and_says_why(client, owner, dataset):
    a, b, c = (service.create_label(dataset, name=n) for n in "abc")
    response = client.post(_url(dataset, "reorder"), headers=HX, data={"label_ids": [str(c.id), str(a.id)]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="reorder-error"' in html and "every label" in html
    assert _row_order(html) == ["a", "b", "c"] and [label.name for label in _labels(dataset)] == ["a", "b", "c"]
    response = client.post(_url(dataset, "reorder"), headers=HX, data={"label_ids": ["x"]})
    assert response.status_code == 422 and 'id="reorder-error"' in response.get_data(as_text=True)
    # Moving a label someone deleted meanwhile: the stored list, and why nothing moved.
    response = client.post(_url(dataset, "reorder"), headers=HX, data={"label_id": str(c.id + 100), "direction": "up"})
    assert response.status_code == 409 and "not found" in response.get_data(as_text=True)
    assert _row_order(response.get_data(as_text=True)) == ["a", "b", "c"]


def test_copy_labels_from_another_dataset_says_what_was_skipped_and_dropped(client, owner, dataset):
    source = make_dataset(owner, name="Source", type="detection")
    service.create_label(source, name="Car", shortcut="c")
    service.create_label(source, name="Truck", shortcut="t")
    service.create_label(dataset, name="car")
    service.create_label(dataset, name="tram", shortcut="t")
    page = client.get(_url(dataset)).get_data(as_text=True)
    assert f'<option value="{source.id}">Source (detection)</option>' in page
    response = client.post(_url(dataset, "copy"), headers=HX, data={"from_dataset_id": source.id})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="labels-notice"' in html
    assert "Copied 1 label from Source" in html and "skipped Car" in html and "dropped the shortcut of Truck" in html
    assert [label.name for label in _labels(dataset)] == ["car", "tram", "Truck"]
    hidden = make_dataset(make_user(), name="Hidden")
    response = client.post(_url(dataset, "copy"), headers=HX, data={"from_dataset_id": hidden.id})
    assert response.status_code == 404 and "Hidden" not in response.get_data(as_text=True)
    assert client.post(_url(dataset, "copy"), headers=HX, data={"from_dataset_id": ""}).status_code == 422


def _annotated(dataset, labels, images: int = 30):
    ids = insert_images(dataset, images)
    db.session.execute(insert(Annotation), [
        {"image_id": i, "label_id": label.id, "shape": "box", "geometry": {}, "attributes": {}, "source": "human"}
        for i in ids for label in labels
    ])
    db.session.commit()
    return ids


def test_merge_runs_a_job_whose_progress_polls_and_then_reloads_the_list(client, owner, dataset, run_jobs):
    car, truck, bus = (service.create_label(dataset, name=n) for n in ("car", "truck", "bus"))
    _annotated(dataset, [car, truck, bus])
    response = client.post(_url(dataset, "merge"), headers=HX, data={"label_ids": [str(car.id), str(truck.id)], "name": "vehicle", "color": ""})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    job = db.session.scalar(select(Job).where(Job.kind == "merge_labels"))
    assert f'id="label-job-{job.id}"' in html and 'hx-trigger="every 1s"' in html
    run_jobs()
    polled = client.get(_url(dataset, f"jobs/{job.id}"), headers=HX)
    assert polled.headers["HX-Trigger"] == "labelsChanged"
    assert 'data-job-status="finished"' in polled.get_data(as_text=True) and "every 1s" not in polled.get_data(as_text=True)
    refreshed = client.get(_url(dataset), headers=HX).get_data(as_text=True)
    assert _row_order(refreshed) == ["vehicle", "bus"]
    vehicle = _labels(dataset)[0]
    assert (vehicle.image_count, vehicle.annotation_count, vehicle.color) == (30, 60, car.color)


def test_a_bad_merge_shows_the_error_and_starts_no_job(client, owner, dataset):
    car = service.create_label(dataset, name="car")
    service.create_label(dataset, name="bus")
    response = client.post(_url(dataset, "merge"), headers=HX, data={"label_ids": [str(car.id)], "name": "car"})
    assert response.status_code == 422 and "at least two labels" in response.get_data(as_text=True)
    response = client.post(_url(dataset, "merge"), headers=HX, data={"label_ids": [str(car.id)], "name": "x", "color": "green"})
    assert response.status_code == 422 and "#rrggbb" in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(Job.id))) == 0


def test_delete_and_refresh_counters_run_as_jobs(client, owner, dataset, run_jobs):
    car, bus = (service.create_label(dataset, name=n) for n in ("car", "bus"))
    _annotated(dataset, [car, bus], images=12)
    response = client.post(_url(dataset, f"{car.id}/delete"), headers=HX)
    assert response.status_code == 200 and "Delete label" in response.get_data(as_text=True)
    run_jobs()
    assert [label.name for label in _labels(dataset)] == ["bus"]
    bus = _labels(dataset)[0]
    assert (bus.image_count, bus.annotation_count) == (12, 12)
    bus.image_count = 0
    db.session.commit()
    response = client.post(_url(dataset, "refresh-counters"), headers=HX)
    job = db.session.scalar(select(Job).where(Job.kind == "refresh_label_counters"))
    assert f"label-job-{job.id}" in response.get_data(as_text=True)
    run_jobs()
    assert db.session.get(Job, job.id).status == JobStatus.finished
    db.session.expire_all()
    assert _labels(dataset)[0].image_count == 12


def test_the_job_partial_only_shows_this_datasets_jobs(client, owner, dataset):
    other = make_dataset(owner, name="Other")
    job = service.request_refresh_counters(other, owner)
    assert client.get(_url(dataset, f"jobs/{job.id}"), headers=HX).status_code == 404
