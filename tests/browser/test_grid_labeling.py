"""Grid labeling in a real browser: select with click, shift-click and keys, classify by shortcut, undo; overlays."""

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Annotation, Image, Label
from services.annotations import replace_annotations
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser


def add_label(dataset, name, shortcut, color, shape="tag") -> Label:
    label = Label(dataset_id=dataset.id, name=name, shortcut=shortcut, color=color, default_shape=shape)
    db.session.add(label)
    db.session.commit()
    return label


def chips(page) -> list[str]:
    return page.eval_on_selector_all(".tile", "tiles => tiles.map((t) => [...t.querySelectorAll('.chip')].map((c) => c.textContent).join(','))")


def wait_chips(page, expected: list[str]) -> None:
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('.tile')].map((t) => [...t.querySelectorAll('.chip')]"
        ".map((c) => c.textContent).join(','))) === JSON.stringify(expected)",
        arg=expected,
    )


def test_select_classify_by_key_and_undo_without_page_loads(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Pets", type="classification")
    ids = insert_images(dataset, 6)
    cat = add_label(dataset, "cat", "c", "#e6194b")
    dog = add_label(dataset, "dog", "d", "#4363d8")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    palette = page.locator("#label-palette")
    assert palette.get_by_role("button", name="c cat").is_visible()
    page.evaluate("window.__samePage = true")  # a page load would lose this

    # Click and shift-click select a range of three; the shortcut classifies all of them.
    page.get_by_label("Select img_00000.jpg").click()
    page.get_by_label("Select img_00002.jpg").click(modifiers=["Shift"])
    assert page.locator("#selected-count").inner_text() == "3 selected"
    page.keyboard.press("c")
    wait_chips(page, ["cat", "cat", "cat", "", "", ""])
    assert page.locator("#selected-count").inner_text() == "3 selected", "the selection survives the swap"

    # Keys only: clear, move right from the last clicked tile, Space, Shift+Right, shortcut.
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowRight")
    assert page.locator(".tile.focused").get_attribute("data-image-id") == str(ids[3])
    page.keyboard.press("Space")
    page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#selected-count").inner_text() == "2 selected"
    page.keyboard.press("d")
    wait_chips(page, ["cat", "cat", "cat", "dog", "dog", ""])
    # Re-classify one of them: the class is replaced, not added.
    page.keyboard.press("Escape")
    page.keyboard.press("c")  # nothing selected: the focused tile (img 4)
    wait_chips(page, ["cat", "cat", "cat", "dog", "cat", ""])

    # Ctrl+Z walks back, one classification at a time.
    page.keyboard.press("Control+z")
    wait_chips(page, ["cat", "cat", "cat", "dog", "dog", ""])
    page.keyboard.press("Control+z")
    wait_chips(page, ["cat", "cat", "cat", "", "", ""])
    page.keyboard.press("Control+z")
    wait_chips(page, ["", "", "", "", "", ""])

    # Typing in a field never classifies.
    page.get_by_label("Tag name").fill("cd")
    page.get_by_label("Tag name").press("c")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+a")
    assert page.locator("#selected-count").inner_text() == "6 selected"
    page.keyboard.press("d")
    wait_chips(page, ["dog"] * 6)
    assert page.evaluate("window.__samePage") is True
    db.session.expire_all()
    labels = db.session.scalars(select(Annotation.label_id).join(Image, Image.id == Annotation.image_id).where(Image.dataset_id == dataset.id)).all()
    assert labels == [dog.id] * 6
    assert db.session.get(Label, cat.id).image_count == 0 and db.session.get(Label, dog.id).image_count == 6
    assert errors == []


def test_overlays_draw_boxes_over_the_thumbnail(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Street", type="detection")
    [image_id] = insert_images(dataset, 1, width=200, height=100)
    car = add_label(dataset, "car", "c", "#f58231", shape="box")
    replace_annotations(db.session.get(Image, image_id), owner, [
        {"label_id": car.id, "shape": "box", "geometry": {"x": 100, "y": 0, "width": 100, "height": 50}},
    ], 0)
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    box = page.locator(".tile svg.overlay rect")
    assert box.is_visible()
    frame = page.locator(".tile .thumb").bounding_box()
    drawn = box.bounding_box()
    # object-fit: contain centres a 2:1 image in the thumbnail box; the box is its top-right quarter.
    scale = min(frame["width"] / 200, frame["height"] / 100)
    left = frame["x"] + (frame["width"] - 200 * scale) / 2
    top = frame["y"] + (frame["height"] - 100 * scale) / 2
    assert abs(drawn["x"] - (left + 100 * scale)) < 3 and abs(drawn["y"] - top) < 3
    assert abs(drawn["width"] - 100 * scale) < 4 and abs(drawn["height"] - 50 * scale) < 4
    assert page.locator("#label-palette").count() == 0, "no palette in a detection dataset"
