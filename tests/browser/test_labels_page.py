"""The Labels page in a real browser: create with attributes, inline edit, reorder (drag and buttons), merge and delete jobs."""

import pytest
from sqlalchemy import func, insert, select

from core.extensions import db
from models import Annotation, Job, JobStatus, Label
from services import labels as service
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser


def stored(dataset) -> list[Label]:
    """The dataset's labels as the server committed them, in display order."""
    db.session.commit()
    db.session.expire_all()
    return service.list_labels(dataset)


def names(dataset) -> list[str]:
    return [label.name for label in stored(dataset)]


def row(page, name: str):
    return page.locator(f"#labels-table tbody tr[data-label-name='{name}']")


def shown_order(page) -> list[str]:
    return page.eval_on_selector_all("#labels-table tbody tr[data-label-id]", "rows => rows.map(r => r.dataset.labelName)")


def open_labels(page, user, dataset) -> list[str]:
    """Sign in and open the Labels page; returns the list that collects the page's script errors."""
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/labels/")
    page.wait_for_function("() => window.htmx !== undefined")
    return errors


def test_create_a_label_with_a_select_attribute_then_edit_it_inline_and_a_duplicate_shortcut_changes_nothing(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    service.create_label(dataset, name="bus", shortcut="b", color="#2f9e44")
    errors = open_labels(page, user, dataset)

    form = page.locator("#create-label")
    form.get_by_label("Name").fill("car")
    form.get_by_label("Color").fill("#1971c2")
    form.get_by_label("Shortcut").fill("c")
    form.get_by_label("Default shape").select_option("polygon")
    form.get_by_role("button", name="Add attribute").click()
    form.get_by_label("Attribute name").fill("make")
    form.get_by_label("Attribute type").select_option("select")
    form.get_by_label("Attribute values").fill("ford, fiat, volvo")
    form.get_by_label("Attribute default").fill("fiat")
    form.get_by_role("button", name="Add label").click()
    row(page, "car").wait_for()
    assert shown_order(page) == ["bus", "car"]
    assert row(page, "car").locator("kbd").inner_text() == "c"
    assert "make · select" in row(page, "car").inner_text()
    # The new form is empty again.
    assert page.locator("#create-label").get_by_label("Name").input_value() == ""

    car = stored(dataset)[1]
    assert (car.name, car.color, car.shortcut, car.default_shape, car.position) == ("car", "#1971c2", "c", "polygon", 1)
    assert car.attributes == [{"name": "make", "type": "select", "values": ["ford", "fiat", "volvo"], "default": "fiat"}]

    # Inline edit: rename and change the shortcut; the attribute row comes back as it was stored.
    row(page, "car").get_by_role("link", name="Edit").click()
    editing = page.locator(f"#label-{car.id}.editing")
    editing.wait_for()
    assert editing.get_by_label("Attribute values").input_value() == "ford, fiat, volvo"
    editing.get_by_label("Name", exact=True).fill("automobile")
    editing.get_by_label("Shortcut").fill("a")
    editing.get_by_role("button", name="Save").click()
    row(page, "automobile").wait_for()
    assert row(page, "automobile").locator("kbd").inner_text() == "a"
    car = next(label for label in stored(dataset) if label.id == car.id)
    assert (car.name, car.shortcut, car.default_shape, car.color) == ("automobile", "a", "polygon", "#1971c2")
    assert car.attributes[0]["values"] == ["ford", "fiat", "volvo"]

    # A shortcut another label uses: a clear error in the row, and nothing is stored.
    row(page, "automobile").get_by_role("link", name="Edit").click()
    editing.wait_for()
    editing.get_by_label("Name", exact=True).fill("auto")
    editing.get_by_label("Shortcut").fill("b")
    editing.get_by_role("button", name="Save").click()
    alert = editing.get_by_role("alert")
    alert.wait_for()
    assert "The shortcut 'b' is already used by 'bus'" in alert.inner_text()
    assert editing.get_by_label("Name", exact=True).input_value() == "auto"  # what they typed is kept to fix
    labels = stored(dataset)
    assert [(label.name, label.shortcut) for label in labels] == [("bus", "b"), ("automobile", "a")]
    # Cancel shows the stored row again.
    editing.get_by_role("button", name="Cancel").click()
    row(page, "automobile").wait_for()
    assert errors == []


def drag_row(page, name: str, onto: str, where: str) -> None:
    """Drag the row `name` onto the upper or lower edge of the row `onto`, and wait for the saved list."""
    target = row(page, onto)
    height = target.bounding_box()["height"]
    with page.expect_response(lambda r: r.url.endswith("/labels/reorder") and r.request.method == "POST") as response:
        row(page, name).drag_to(target, source_position={"x": 40, "y": 8}, target_position={"x": 40, "y": 3 if where == "above" else height - 3})
    assert response.value.status == 200


def test_reorder_by_drag_and_drop_and_by_the_buttons_stores_the_order(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    for i, name in enumerate(["car", "bus", "truck", "bike"]):
        service.create_label(dataset, name=name, shortcut=str(i + 1))
    errors = open_labels(page, user, dataset)
    assert page.locator("#labels-table tbody[data-reorder] tr[draggable='true']").count() == 4

    # Drag the last row to the top.
    drag_row(page, "bike", onto="car", where="above")
    page.wait_for_function("() => document.querySelector('#labels-table tbody tr').dataset.labelName === 'bike'")
    assert shown_order(page) == ["bike", "car", "bus", "truck"]
    assert names(dataset) == ["bike", "car", "bus", "truck"]
    assert [label.position for label in stored(dataset)] == [0, 1, 2, 3]

    # Drag the first row below the third.
    drag_row(page, "bike", onto="bus", where="below")
    page.wait_for_function("() => document.querySelectorAll('#labels-table tbody tr')[2].dataset.labelName === 'bike'")
    assert shown_order(page) == ["car", "bus", "bike", "truck"]
    assert names(dataset) == ["car", "bus", "bike", "truck"]

    # A drag that ends where it started sends nothing and changes nothing.
    requests = []
    page.on("request", lambda r: requests.append(r.url) if r.url.endswith("/reorder") else None)
    row(page, "bus").drag_to(row(page, "bus"), source_position={"x": 40, "y": 8}, target_position={"x": 60, "y": 10})
    page.wait_for_timeout(300)
    assert requests == [] and shown_order(page) == ["car", "bus", "bike", "truck"]
    # Dropped outside the table: the rows it passed go back where they were, and nothing is sent.
    row(page, "car").drag_to(page.get_by_role("heading", name="New label"), source_position={"x": 40, "y": 8})
    page.wait_for_timeout(300)
    assert requests == [] and shown_order(page) == ["car", "bus", "bike", "truck"]
    assert names(dataset) == ["car", "bus", "bike", "truck"]

    # The buttons (for keyboard users) still work, and the first row's "up" is disabled.
    assert row(page, "car").get_by_role("button", name="Move car up").is_disabled()
    with page.expect_response(lambda r: r.url.endswith("/labels/reorder")):
        row(page, "truck").get_by_role("button", name="Move truck up").click()
    page.wait_for_function("() => document.querySelectorAll('#labels-table tbody tr')[2].dataset.labelName === 'truck'")
    assert names(dataset) == ["car", "bus", "truck", "bike"]
    # Keyboard: focus a button and press Enter.
    row(page, "car").get_by_role("button", name="Move car down").focus()
    with page.expect_response(lambda r: r.url.endswith("/labels/reorder")):
        page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#labels-table tbody tr').dataset.labelName === 'bus'")
    assert names(dataset) == ["bus", "car", "truck", "bike"]

    # And dragging still works on the list the buttons swapped in.
    drag_row(page, "bike", onto="bus", where="above")
    page.wait_for_function("() => document.querySelector('#labels-table tbody tr').dataset.labelName === 'bike'")
    assert names(dataset) == ["bike", "bus", "car", "truck"]
    assert errors == []


def annotate(dataset, image_ids: list[int], label: Label) -> None:
    db.session.execute(insert(Annotation), [
        {"image_id": i, "label_id": label.id, "shape": "box", "geometry": {"x": 1, "y": 1, "w": 5, "h": 5}, "attributes": {}, "source": "human"}
        for i in image_ids
    ])
    db.session.commit()


def wait_job_done(page, kind: str) -> Job:
    """The job card shows up, polls itself to finished with a full bar; returns the stored job."""
    # The card replaces an earlier job's card in #label-jobs; wait for this kind's.
    card = page.locator("#label-jobs .job").filter(has_text=kind.replace("_", " ").capitalize())
    card.wait_for()
    job_id = card.get_attribute("id").removeprefix("label-job-")
    page.wait_for_selector(f"[id='label-job-{job_id}'][data-job-status=finished]", timeout=30000)
    done = page.locator(f"[id='label-job-{job_id}']")
    assert done.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    assert done.locator(".progress > span").evaluate("e => e.style.width") == "100%"
    db.session.commit()
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert (job.kind, job.status) == (kind, JobStatus.finished)
    return job


def test_merge_two_labels_and_delete_one_through_jobs_a_worker_runs(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    car, truck, bus = (service.create_label(dataset, name=n) for n in ("car", "truck", "bus"))
    images = insert_images(dataset, 8)
    annotate(dataset, images[:5], car)  # images 0-4
    annotate(dataset, images[3:], truck)  # images 3-7: two images have both
    annotate(dataset, images[:6], bus)
    service.recount_labels(dataset.id)
    db.session.commit()
    car_id, truck_id, bus_id, car_color = car.id, truck.id, bus.id, car.color  # the rows go away
    errors = open_labels(page, user, dataset)
    assert row(page, "car").locator("[data-counter=annotations]").inner_text() == "5"

    row(page, "car").get_by_label("Select car to merge").check()
    row(page, "truck").get_by_label("Select truck to merge").check()
    page.locator("#merge-form").get_by_label("Into").fill("vehicle")
    page.locator("#merge-button").click()
    job = wait_job_done(page, "merge_labels")
    assert (job.done, job.total) == (8, 8)
    # The finished job tells the list to reload: the merged labels are gone, the counters are new.
    row(page, "vehicle").wait_for()
    assert shown_order(page) == ["vehicle", "bus"]
    assert row(page, "vehicle").locator("[data-counter=images]").inner_text() == "8"
    assert row(page, "vehicle").locator("[data-counter=annotations]").inner_text() == "10"

    labels = stored(dataset)
    assert [label.name for label in labels] == ["vehicle", "bus"]
    vehicle = labels[0]
    assert (vehicle.image_count, vehicle.annotation_count, vehicle.color) == (8, 10, car_color)
    assert (labels[1].image_count, labels[1].annotation_count) == (6, 6)
    count = lambda label_id: db.session.scalar(select(func.count(Annotation.id)).where(Annotation.label_id == label_id))  # noqa: E731
    assert (count(vehicle.id), count(car_id), count(truck_id), count(bus_id)) == (10, 0, 0, 6)
    assert db.session.get(Label, car_id) is None and db.session.get(Label, truck_id) is None

    # Delete bus through its job (the confirm dialog is accepted).
    row(page, "bus").get_by_role("button", name="Delete").click()
    wait_job_done(page, "delete_label")
    row(page, "bus").wait_for(state="detached")
    assert shown_order(page) == ["vehicle"]
    labels = stored(dataset)
    assert [label.name for label in labels] == ["vehicle"]
    assert count(bus_id) == 0 and db.session.get(Label, bus_id) is None
    assert (labels[0].image_count, labels[0].annotation_count) == (8, 10)
    assert row(page, "vehicle").locator("[data-counter=annotations]").inner_text() == "10"
    assert errors == []
