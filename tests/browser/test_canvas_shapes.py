"""The labeling canvas in a real browser: lines, points and circles; attributes and OCR text; delete, undo, redo.

Every check reads what the server stored, not only what the page shows.
"""

import pytest

from core.extensions import db
from models import Label
from tests.browser.test_labeling import add_images, add_label, click, drag, server_annotations, wait_saved
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser


def open_canvas(page, user, dataset, image_id) -> list[str]:
    """Sign in, open the image on the canvas and wait for its annotations; the page's errors land in the list."""
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/images/{image_id}/label")
    wait_saved(page, 0)
    return errors


def wait_pending(page) -> None:
    """The indicator owns up to an edit the server does not have yet."""
    page.wait_for_function("() => ['pending', 'saving'].includes(document.getElementById('save-status').dataset.status)")


def flat(points: list[list[float]]) -> list[float]:
    return [v for point in points for v in point]


def wait_all_saved(page) -> int:
    """Every edit so far is on the server (however many saves that took); its revision."""
    page.wait_for_function(
        "() => { const s = window.loupeLabeling.saving; return s.changeSeq === s.savedSeq && !s.inflight && !s.timer"
        " && document.getElementById('save-status').dataset.status === 'saved'; }"
    )
    return page.evaluate("() => window.loupeLabeling.revision")


def test_polyline_points_and_circle_drawn_labelled_by_key_and_reloaded(page):
    user = make_user()
    dataset = make_dataset(user, name="Roads", type="detection")
    (image_id,) = add_images(dataset, 1)
    lane = add_label(dataset, "lane", "1", "polyline", "#1971c2", 0)
    light = add_label(dataset, "light", "2", "points", "#f08c00", 1)
    wheel = add_label(dataset, "wheel", "3", "circle", "#2f9e44", 2)
    errors = open_canvas(page, user, dataset, image_id)

    # A label's key with nothing selected picks the label and its default shape's tool.
    page.keyboard.press("1")
    assert page.evaluate("() => window.loupeLabeling.tool") == "polyline"
    click(page, 20, 280)
    click(page, 200, 230)
    click(page, 390, 260)
    page.keyboard.press("Backspace")  # takes back the last point while drawing
    page.keyboard.press("Enter")
    wait_pending(page)
    assert page.locator("#save-status").inner_text() in ("Unsaved changes", "Saving…")
    wait_saved(page, 1)
    (line,) = server_annotations(image_id)
    assert (line["shape"], line["label_id"]) == ("polyline", lane.id)
    assert flat(line["geometry"]["points"]) == pytest.approx([20, 280, 200, 230], abs=1.0)

    page.keyboard.press("Escape")  # deselect, or the next key would relabel the line
    page.keyboard.press("2")
    assert page.evaluate("() => window.loupeLabeling.tool") == "points"
    for x, y in ((270, 50), (290, 60), (300, 90)):
        click(page, x, y)
    page.keyboard.press("Enter")
    wait_saved(page, 2)

    page.keyboard.press("Escape")
    page.keyboard.press("3")
    assert page.evaluate("() => window.loupeLabeling.tool") == "circle"
    drag(page, (120, 215), (150, 215))  # from the centre, 30 px out
    wait_saved(page, 3)

    page.reload()
    wait_saved(page, 3)
    assert page.locator("#lb-shapes polyline").count() == 1
    assert page.locator("#lb-shapes .shape-points .pt").count() == 3
    assert page.locator("#lb-shapes circle.shape:not(.pt)").count() == 1
    stored = server_annotations(image_id)
    assert [(a["shape"], a["label_id"]) for a in stored] == [("polyline", lane.id), ("points", light.id), ("circle", wheel.id)]
    assert flat(stored[1]["geometry"]["points"]) == pytest.approx([270, 50, 290, 60, 300, 90], abs=1.0)
    circle = stored[2]["geometry"]
    assert (circle["cx"], circle["cy"], circle["r"]) == pytest.approx((120, 215, 30), abs=1.0)
    # The canvas sends back each row's id, so the server keeps the author of what a save leaves alone.
    assert page.evaluate("() => window.loupeLabeling.annotations") == [
        {k: a[k] for k in ("id", "label_id", "shape", "geometry", "attributes", "text")} for a in stored
    ]
    assert errors == []


def test_attributes_and_ocr_text_of_the_selected_shape_are_saved(page):
    user = make_user()
    dataset = make_dataset(user, name="Plates", type="detection")
    (image_id,) = add_images(dataset, 1)
    plate = Label(
        dataset_id=dataset.id, name="plate", shortcut="p", default_shape="box", color="#e03131", position=0, with_text=True,
        attributes=[
            {"name": "colour", "type": "text"},
            {"name": "digits", "type": "number"},
            {"name": "occluded", "type": "checkbox"},
            {"name": "region", "type": "select", "values": ["eu", "us"]},
        ],
    )
    db.session.add(plate)
    db.session.commit()
    errors = open_canvas(page, user, dataset, image_id)

    drag(page, (60, 150), (180, 215))
    wait_saved(page, 1)
    assert page.locator("#lb-selection-shape").inner_text().startswith("box · ")
    # A field's change (leaving it, or picking a value) is one undoable edit, saved like any other.
    page.locator("#lb-f-colour").fill("white")
    page.keyboard.press("Tab")
    page.locator("#lb-f-digits").fill("4.5")
    page.keyboard.press("Tab")
    page.locator("#lb-f-occluded").check()
    page.locator("#lb-f-region").select_option("us")
    page.locator("#lb-f-text-ocr-").fill("AB 123")
    page.keyboard.press("Tab")
    page.wait_for_function("() => window.loupeLabeling.annotations[0].text === 'AB 123'")
    wait_all_saved(page)
    (stored,) = server_annotations(image_id)
    assert stored["attributes"] == {"colour": "white", "digits": 4.5, "occluded": True, "region": "us"}
    assert stored["text"] == "AB 123"

    # Emptying a field drops the attribute.
    page.locator("#lb-f-colour").fill("")
    page.keyboard.press("Tab")
    page.wait_for_function("() => !('colour' in window.loupeLabeling.annotations[0].attributes)")

    revision = wait_all_saved(page)
    page.reload()
    wait_saved(page, revision)
    (stored,) = server_annotations(image_id)
    assert stored["attributes"] == {"digits": 4.5, "occluded": True, "region": "us"} and stored["text"] == "AB 123"
    # Selected again, the panel shows the stored values.
    page.locator("#lb-tools [data-tool=select]").click()
    click(page, 120, 180)
    page.wait_for_function("() => window.loupeLabeling.selected === 0")
    assert page.locator("#lb-f-colour").input_value() == ""
    assert page.locator("#lb-f-digits").input_value() == "4.5"
    assert page.locator("#lb-f-occluded").is_checked()
    assert page.locator("#lb-f-region").input_value() == "us"
    assert page.locator("#lb-f-text-ocr-").input_value() == "AB 123"
    assert errors == []


def test_delete_by_key_then_undo_and_redo(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    errors = open_canvas(page, user, dataset, image_id)

    drag(page, (60, 150), (180, 215))
    wait_saved(page, 1)
    drag(page, (250, 40), (310, 100))
    wait_saved(page, 2)
    assert page.evaluate("() => window.loupeLabeling.selected") == 1  # a new shape is selected

    page.keyboard.press("Delete")
    wait_saved(page, 3)
    (left,) = server_annotations(image_id)
    assert left["geometry"] == pytest.approx({"x": 60, "y": 150, "width": 120, "height": 65}, abs=1.0)
    assert page.locator("#lb-shapes rect").count() == 1
    assert page.locator("#lb-selection-body").inner_text() == "Nothing selected."
    page.keyboard.press("Delete")  # nothing selected: nothing happens
    assert page.evaluate("() => window.loupeLabeling.annotations.length") == 1

    page.keyboard.press("Control+z")
    wait_saved(page, 4)
    assert [a["geometry"] for a in server_annotations(image_id)] == pytest.approx(
        [{"x": 60, "y": 150, "width": 120, "height": 65}, {"x": 250, "y": 40, "width": 60, "height": 60}], abs=1.0
    )
    page.keyboard.press("Control+y")
    wait_saved(page, 5)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("box", car.id)]
    assert page.locator("#lb-shapes rect").count() == 1
    assert errors == []


def test_a_new_shape_takes_its_labels_attribute_defaults_and_a_new_label_keeps_only_what_it_defines(page):
    user = make_user()
    dataset = make_dataset(user, name="Shelves", type="detection")
    (image_id,) = add_images(dataset, 1)
    can = Label(
        dataset_id=dataset.id, name="can", shortcut="c", default_shape="box", color="#e03131", position=0, with_text=True,
        attributes=[{"name": "dented", "type": "checkbox", "default": False}, {"name": "brand", "type": "select", "values": ["a", "b"], "default": "a"}],
    )
    box = Label(
        dataset_id=dataset.id, name="box", shortcut="b", default_shape="box", color="#1971c2", position=1,
        attributes=[{"name": "brand", "type": "select", "values": ["a", "b", "c"]}, {"name": "layers", "type": "number", "default": 2}],
    )
    db.session.add_all([can, box])
    db.session.commit()
    errors = open_canvas(page, user, dataset, image_id)

    page.keyboard.press("c")
    drag(page, (60, 150), (180, 215))
    wait_saved(page, 1)
    (stored,) = server_annotations(image_id)
    assert (stored["label_id"], stored["attributes"]) == (can.id, {"dented": False, "brand": "a"})
    page.locator("#lb-f-brand").select_option("b")
    page.locator("#lb-f-text-ocr-").fill("COLA")
    page.keyboard.press("Tab")
    page.wait_for_function("() => window.loupeLabeling.annotations[0].text === 'COLA'")
    wait_all_saved(page)

    # The box label defines brand (kept) and layers (its default), not dented, and takes no text:
    # the server would refuse those, so the save must not be stuck on them.
    page.locator("#lb-selection select").first.select_option(str(box.id))
    page.wait_for_function(f"() => window.loupeLabeling.annotations[0].label_id === {box.id}")
    wait_all_saved(page)
    (stored,) = server_annotations(image_id)
    assert (stored["label_id"], stored["attributes"], stored["text"]) == (box.id, {"brand": "b", "layers": 2}, None)
    assert errors == []


def test_saving_keeps_authors_and_untouched_predictions_and_drops_values_a_label_no_longer_takes(page):
    from models import Annotation

    author, editor = make_user(name="Ann Author"), make_user(name="Ed Editor")
    dataset = make_dataset(editor, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    sign = add_label(dataset, "sign", "2", "box", "#1971c2", 1)

    def box(x, y):
        return {"x": x, "y": y, "width": 40, "height": 30}

    # As left by an older label set (car had an attribute and OCR text then) and a model's import.
    db.session.add_all([
        Annotation(image_id=image_id, label_id=car.id, shape="box", geometry=box(20, 20), attributes={"gone": "x"}, text="AB1", author_id=author.id),
        Annotation(image_id=image_id, label_id=sign.id, shape="box", geometry=box(120, 20), source="prediction", score=0.9),
        Annotation(image_id=image_id, label_id=car.id, shape="box", geometry=box(220, 20), author_id=author.id),
    ])
    db.session.commit()
    errors = open_canvas(page, editor, dataset, image_id)

    def stored():
        return [(a["label_id"], a["geometry"]["x"], a["author_id"], a["source"], a["score"], a["attributes"], a["text"]) for a in server_annotations(image_id)]

    drag(page, (60, 150), (180, 215))  # a new box: the save must not be refused over the old values
    wait_saved(page, 1)
    assert stored()[:3] == [
        (car.id, 20, editor.id, "human", None, {}, None),  # cleaned, so changed: now the editor's
        (sign.id, 120, None, "prediction", 0.9, {}, None),  # untouched prediction stays one
        (car.id, 220, author.id, "human", None, {}, None),  # untouched: still the author's
    ]
    drag(page, (60, 240), (100, 280))  # a second save: the rows got new ids, the canvas follows
    wait_saved(page, 2)
    assert stored()[1:3] == [(sign.id, 120, None, "prediction", 0.9, {}, None), (car.id, 220, author.id, "human", None, {}, None)]

    page.get_by_role("button", name="Select").click()
    drag(page, (140, 35), (150, 45))  # moving the prediction makes it a person's work
    wait_saved(page, 3)
    assert stored()[1] == (sign.id, 130, editor.id, "human", None, {}, None)
    assert errors == []
