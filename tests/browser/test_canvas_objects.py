"""The labeling canvas in a real browser: the object list (select, hide, lock, delete), label names on
the shapes, the tools' own keys, "n of N" and "next unlabeled", and defect regions in anomaly datasets.

Every check of an edit reads what the server stored, not only what the page shows.
"""

import pytest

from core.extensions import db
from models import Image
from services.annotations import replace_annotations
from tests.browser.test_canvas_shapes import open_canvas, wait_all_saved
from tests.browser.test_labeling import add_images, add_label, click, drag, server_annotations, wait_saved
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/canvas.png"


def rows(page) -> list[str]:
    """The object list's rows as their label names."""
    return page.locator("#lb-objects .lb-object .name").all_inner_texts()


def names_on_canvas(page) -> list[str]:
    return page.locator("#lb-names text").all_text_contents()


def test_the_object_list_selects_hides_locks_and_deletes_and_shapes_carry_their_label_names(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    person = add_label(dataset, "person", "2", "polygon", "#1971c2", 1)
    errors = open_canvas(page, user, dataset, image_id)
    assert page.locator("#lb-objects").inner_text() == "No shapes yet: draw one on the image."

    # Two boxes: the first takes the box label, the second is relabelled to person by its key.
    drag(page, (60, 150), (180, 215))
    page.keyboard.press("Escape")
    drag(page, (230, 30), (330, 110))
    page.keyboard.press("2")
    revision = wait_all_saved(page)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("box", car.id), ("box", person.id)]
    assert rows(page) == ["car", "person"]
    assert page.locator("#lb-objects-count").inner_text() == "(2)"
    assert names_on_canvas(page) == ["car", "person"]
    assert page.locator("#lb-names text").first.get_attribute("stroke") == "#e03131"
    page.screenshot(path=SCREENSHOT)

    # A click on a row selects its shape on the canvas.
    page.locator("#lb-objects .lb-object").first.click()
    page.wait_for_function("() => window.loupeLabeling.selected === 0")
    assert "selected" in page.locator("#lb-objects .lb-object").first.get_attribute("class")
    assert page.locator("#lb-shapes rect.selected").count() == 1

    # Hide person: not drawn, not named, not hit by the pointer; no edit, so nothing is saved.
    page.get_by_role("button", name="Hide person 2", exact=True).click()
    assert page.evaluate("() => window.loupeLabeling.hidden") == [1]
    assert page.locator("#lb-shapes rect").count() == 1 and names_on_canvas(page) == ["car"]
    page.locator("#lb-tools [data-tool=select]").click()
    click(page, 280, 70)  # where person is
    assert page.evaluate("() => window.loupeLabeling.selected") == -1
    assert page.evaluate("() => window.loupeLabeling.saving.changeSeq === window.loupeLabeling.saving.savedSeq")
    assert page.evaluate("() => window.loupeLabeling.revision") == revision
    page.get_by_role("button", name="Show person 2", exact=True).click()
    assert page.locator("#lb-shapes rect").count() == 2 and page.evaluate("() => window.loupeLabeling.hidden") == []

    # Lock car: dragging it leaves it where it was, no handles to grab, the Delete key and the
    # row's delete button refuse, and its label key does not relabel it.
    page.get_by_role("button", name="Lock car 1", exact=True).click()
    assert page.evaluate("() => window.loupeLabeling.locked") == [0]
    drag(page, (120, 180), (200, 250))
    assert page.evaluate("() => window.loupeLabeling.selected") == 0
    assert page.locator("#lb-handles .handle").count() == 0
    assert page.evaluate("() => window.loupeLabeling.annotations[0].geometry") == pytest.approx(
        {"x": 60, "y": 150, "width": 120, "height": 65}, abs=1.0
    )
    page.keyboard.press("Delete")
    page.keyboard.press("2")
    assert page.locator("#toast").inner_text().startswith("This shape is locked")
    assert page.get_by_role("button", name="Delete car 1", exact=True).is_disabled()
    assert page.evaluate("() => window.loupeLabeling.annotations.map((a) => a.label_id)") == [car.id, person.id]
    assert page.evaluate("() => window.loupeLabeling.revision") == revision
    assert page.locator("#lb-selection-body select").is_disabled()

    # Delete person from its row: saved, and the list follows.
    page.get_by_role("button", name="Delete person 2", exact=True).click()
    wait_saved(page, revision + 1)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("box", car.id)]
    assert rows(page) == ["car"] and names_on_canvas(page) == ["car"]
    assert page.evaluate("() => window.loupeLabeling.locked") == [0]  # car stays locked
    assert errors == []


def test_each_tool_has_its_own_key_and_a_label_on_the_same_key_keeps_it(page):
    user = make_user()
    dataset = make_dataset(user, name="Roads", type="detection")
    (image_id,) = add_images(dataset, 1)
    # "b" is the box tool's key, but this label has it: the label wins, the box tool moves to Shift+B.
    bus = add_label(dataset, "bus", "b", "circle", "#f08c00", 0)
    errors = open_canvas(page, user, dataset, image_id)
    tool = lambda: page.evaluate("() => window.loupeLabeling.tool")  # noqa: E731

    for key, expected in (("p", "polygon"), ("l", "polyline"), ("o", "points"), ("c", "circle"), ("v", "select"), ("Shift+B", "box")):
        page.keyboard.press(key)
        assert tool() == expected, key
    page.keyboard.press("b")  # the label's key: picks bus, and its default shape's tool
    assert tool() == "circle" and page.locator(".lb-label.active").inner_text().startswith("bus")
    for key, expected in (("Shift+P", "polygon"), ("Shift+O", "points"), ("Shift+V", "select")):
        page.keyboard.press(key)
        assert tool() == expected, key

    # Escape steps back: the shape being drawn, then the selection, then the select tool.
    page.keyboard.press("o")
    click(page, 100, 100)
    page.keyboard.press("Escape")
    assert page.evaluate("() => window.loupeLabeling.annotations.length") == 0 and tool() == "points"
    click(page, 100, 100)
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.loupeLabeling.selected === 0")
    page.keyboard.press("Escape")
    assert page.evaluate("() => window.loupeLabeling.selected") == -1 and tool() == "points"
    page.keyboard.press("Escape")
    assert tool() == "select"
    wait_saved(page, 1)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("points", bus.id)]

    # The "?" list names every tool's key, and the clash.
    page.keyboard.press("?")
    help_text = page.locator("#lb-help-table").inner_text()
    for line in ("Shift+B\tBox tool", "P\tPolygon tool", "L\tLine tool", "O\tPoints tool", "C\tCircle tool", "V\tSelect tool"):
        assert line in help_text, line
    assert "Label: bus (the Box tool is on Shift+B)" in help_text
    assert page.locator("#lb-tools [data-tool=box]").get_attribute("title").startswith("Box (Shift+B")
    page.keyboard.press("?")
    assert errors == []


def test_n_of_n_and_next_unlabeled_walk_the_grid_filter(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    ids = add_images(dataset, 4)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    box = {"label_id": car.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 9, "height": 9}}
    replace_annotations(db.session.get(Image, ids[1]), user, [box], 0)  # the second is labeled already
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    from tests.browser.test_upload_flow import sign_in

    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/images/{ids[0]}/label?search=street")
    wait_saved(page, 0)
    assert page.locator("#lb-position").inner_text() == "1 of 4"

    # Drawn here, then "next unlabeled": saved first, then the third image (the second is labeled).
    drag(page, (60, 150), (180, 215))
    page.get_by_role("link", name="Next unlabeled").click()
    page.wait_for_url(f"**/images/{ids[2]}/label?search=street")
    wait_saved(page, 0)
    assert page.locator("#lb-position").inner_text() == "3 of 4"
    assert [a["label_id"] for a in server_annotations(ids[0])] == [car.id]

    # Shift+→ does the same, and wraps round to the first unlabeled one (the first is labeled now).
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_url(f"**/images/{ids[3]}/label?search=street")
    wait_saved(page, 0)
    assert page.locator("#lb-position").inner_text() == "4 of 4"
    page.keyboard.press("Shift+ArrowRight")
    page.wait_for_url(f"**/images/{ids[2]}/label?search=street")
    wait_saved(page, 0)

    # → is still the next image, labeled or not.
    page.goto(f"/datasets/{dataset.id}/images/{ids[0]}/label?search=street")
    wait_saved(page, 1)
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/images/{ids[1]}/label?search=street")
    assert page.locator("#lb-position").inner_text() == "2 of 4"
    assert errors == []


def test_a_defect_region_in_an_anomaly_dataset_takes_a_defect_label_not_the_normal_class(page):
    user = make_user()
    dataset = make_dataset(user, name="Parts", type="anomaly")
    (image_id,) = add_images(dataset, 1)
    normal = add_label(dataset, "normal", "n", "tag", "#2f9e44", 0)
    anomalous = add_label(dataset, "anomalous", "a", "tag", "#e03131", 1)
    scratch = add_label(dataset, "scratch", "s", "box", "#f08c00", 2)
    dent = add_label(dataset, "dent", "d", "polygon", "#7048e8", 3)
    errors = open_canvas(page, user, dataset, image_id)

    page.keyboard.press("n")  # the image's class, first in the list
    wait_all_saved(page)
    drag(page, (60, 150), (180, 215))  # a box: the defect label whose default shape is a box
    wait_all_saved(page)
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    drag(page, (280, 70), (300, 70))  # a circle: no defect label has it as default, so the first defect label
    wait_all_saved(page)
    # A polygon while "normal" was the last key pressed: still a defect label.
    page.keyboard.press("Escape")
    page.keyboard.press("p")
    for x, y in ((250, 200), (300, 200), (280, 260)):
        click(page, x, y)
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    wait_all_saved(page)
    stored = server_annotations(image_id)
    assert sorted((a["shape"], a["label_id"]) for a in stored) == sorted(
        [("tag", normal.id), ("box", scratch.id), ("circle", scratch.id), ("polygon", dent.id)]
    )

    # A class key with a region selected sets the image's class and leaves the region's label alone.
    page.locator("#lb-objects .lb-object").first.click()
    page.wait_for_function("() => window.loupeLabeling.selected >= 0")
    page.keyboard.press("a")
    wait_all_saved(page)
    stored = server_annotations(image_id)
    assert [a["label_id"] for a in stored if a["shape"] == "tag"] == [anomalous.id]
    assert sorted(a["label_id"] for a in stored if a["shape"] != "tag") == sorted([scratch.id, scratch.id, dent.id])
    # A selected region's label list offers the defect labels only.
    page.locator("#lb-objects .lb-object").first.click()
    page.wait_for_function("() => window.loupeLabeling.selected >= 0")
    options = page.locator("#lb-selection-body select option").all_inner_texts()
    assert options == ["scratch (s)", "dent (d)"]
    assert rows(page) == ["scratch", "scratch", "dent"]
    page.screenshot(path="/tmp/canvas-anomaly.png")
    assert errors == []


def test_an_anomaly_dataset_without_defect_labels_says_so_instead_of_drawing_a_normal_region(page):
    user = make_user()
    dataset = make_dataset(user, name="Parts", type="anomaly")
    (image_id,) = add_images(dataset, 1)
    add_label(dataset, "normal", "n", "tag", "#2f9e44", 0)
    add_label(dataset, "anomalous", "a", "tag", "#e03131", 1)
    errors = open_canvas(page, user, dataset, image_id)
    drag(page, (60, 150), (180, 215))
    page.wait_for_function("() => document.getElementById('toast').textContent.startsWith('Create a defect label')")
    assert page.evaluate("() => window.loupeLabeling.annotations.length") == 0
    assert page.locator("#lb-draft *").count() == 0
    assert server_annotations(image_id) == []
    assert errors == []


def test_undo_and_redo_never_change_a_locked_shape_and_locks_outlive_saves(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    add_label(dataset, "car", "1", "box", "#e03131", 0)
    errors = open_canvas(page, user, dataset, image_id)
    geometries = lambda: page.evaluate("() => window.loupeLabeling.annotations.map((a) => a.geometry)")  # noqa: E731
    locked = lambda: page.evaluate("() => window.loupeLabeling.locked")  # noqa: E731
    drawn = {"x": 60, "y": 150, "width": 120, "height": 65}
    moved = {**drawn, "x": 140, "y": 220}

    # Drawn, moved, locked: undoing the move would move a locked shape, so neither Ctrl+Z nor the
    # Undo button does anything but say why.
    drag(page, (60, 150), (180, 215))
    drag(page, (120, 180), (200, 250))
    revision = wait_all_saved(page)
    assert geometries() == [pytest.approx(moved, abs=1.0)]
    page.get_by_role("button", name="Lock car 1", exact=True).click()
    page.keyboard.press("Control+z")
    assert page.locator("#toast").inner_text().startswith("This step would change a locked shape")
    page.locator("#lb-tools button", has_text="Undo").click()
    assert geometries() == [pytest.approx(moved, abs=1.0)] and locked() == [0]
    assert page.evaluate("() => window.loupeLabeling.saving.changeSeq === window.loupeLabeling.saving.savedSeq")

    # A second shape, hidden: saving it keeps both the lock and the hiding; undo may take the
    # second shape away (it is not locked) and redo bring it back, still hidden.
    page.keyboard.press("Escape")
    drag(page, (250, 30), (330, 110))
    wait_all_saved(page)
    page.get_by_role("button", name="Hide car 2", exact=True).click()
    assert locked() == [0] and page.evaluate("() => window.loupeLabeling.hidden") == [1]
    page.keyboard.press("Control+z")
    wait_all_saved(page)
    assert [a["geometry"] for a in server_annotations(image_id)] == [pytest.approx(moved, abs=1.0)]
    page.keyboard.press("Control+z")
    assert geometries() == [pytest.approx(moved, abs=1.0)]
    page.keyboard.press("Control+Shift+z")
    wait_all_saved(page)
    assert len(server_annotations(image_id)) == 2
    assert locked() == [0] and page.evaluate("() => window.loupeLabeling.hidden") == [1]

    # Unlocked, the steps refused before go through: the second shape goes, then the move.
    page.get_by_role("button", name="Unlock car 1", exact=True).click()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+z")
    wait_all_saved(page)
    assert [a["geometry"] for a in server_annotations(image_id)] == [pytest.approx(drawn, abs=1.0)]

    # Locked again and submitted, the editor reloads the server's copy: the same shape, still locked.
    page.get_by_role("button", name="Lock car 1", exact=True).click()
    page.locator("#lb-submit").click()
    page.wait_for_function("() => document.getElementById('save-status').textContent === 'Submitted'")
    assert locked() == [0] and page.evaluate("() => window.loupeLabeling.revision") > revision
    assert errors == []
