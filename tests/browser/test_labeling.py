"""The labeling canvas in a real browser: draw, label by key, autosave, reload, undo, edit, next; classify."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core.extensions import db
from core.storage import get_storage
from models import Image, Label
from services.annotations import get_annotations
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.web.test_labeling import age_revisions

pytestmark = pytest.mark.browser


def picture(size=(400, 300), seed: int = 0) -> bytes:
    """A PNG with something to label on it: a sky, a road and a car-coloured block."""
    image = PILImage.new("RGB", size, (180 + seed, 210, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, size[1] * 2 // 3, size[0], size[1]], fill=(90, 90, 95))
    draw.rectangle([60, 150, 180, 215], fill=(200, 40, 40))
    draw.ellipse([250, 40, 310, 100], fill=(250, 210, 60))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def add_images(dataset, count: int, size=(400, 300)) -> list[int]:
    """Image rows whose bytes really are in storage (the canvas loads the original)."""
    ids = []
    for i in range(count):
        stored = get_storage().put_stream(io.BytesIO(picture(size, seed=i)))
        image = Image(
            dataset_id=dataset.id, file_name=f"street-{i + 1}.png", storage_key=stored.key, width=size[0], height=size[1],
            byte_size=stored.size, format="png",
        )
        db.session.add(image)
        dataset.image_count += 1  # as an upload keeps it ("n of N" reads it)
        db.session.commit()
        ids.append(image.id)
    return ids


def add_label(dataset, name, shortcut, shape, color, position) -> Label:
    label = Label(dataset_id=dataset.id, name=name, shortcut=shortcut, default_shape=shape, color=color, position=position)
    db.session.add(label)
    db.session.commit()
    return label


def server_annotations(image_id: int) -> list[dict]:
    db.session.commit()
    db.session.expire_all()
    return get_annotations(db.session.get(Image, image_id))["annotations"]


def wait_saved(page, revision: int) -> None:
    """The indicator says Saved and the editor holds the server's revision `revision`."""
    try:
        page.wait_for_function(
            "n => window.loupeLabeling && window.loupeLabeling.revision === n"
            " && document.getElementById('save-status').dataset.status === 'saved'",
            arg=revision,
        )
    except PlaywrightTimeout:
        state = page.evaluate("() => [window.loupeLabeling && window.loupeLabeling.revision, document.getElementById('save-status').textContent]")
        raise AssertionError(f"not saved at revision {revision}: {state}") from None
    assert page.locator("#save-status").inner_text() == "Saved"


def screen(page, x: float, y: float) -> tuple[float, float]:
    """Image pixel (x, y) → page coordinates, through the editor's current view."""
    box = page.locator("#lb-svg").bounding_box()
    view = page.evaluate("() => window.loupeLabeling.view")
    return box["x"] + view["tx"] + x * view["s"], box["y"] + view["ty"] + y * view["s"]


def drag(page, start, end) -> None:
    page.mouse.move(*screen(page, *start))
    page.mouse.down()
    page.mouse.move(*screen(page, *end), steps=8)
    page.mouse.up()


def click(page, x, y) -> None:
    page.mouse.click(*screen(page, x, y))


def shots_dir(tmp_path) -> Path:
    return Path(os.environ.get("LOUPE_SCREENSHOTS") or tmp_path)


def test_draw_label_autosave_reload_undo_edit_vertex_and_go_next(page, tmp_path):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    first, second = add_images(dataset, 2)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    person = add_label(dataset, "person", "2", "polygon", "#1971c2", 1)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)

    # The grid's tiles link to the canvas (keeping the grid's filter).
    page.goto(f"/datasets/{dataset.id}/images/?search=street")
    page.screenshot(path=str(shots_dir(tmp_path) / "grid.png"))
    assert page.locator(".tile").first.get_by_role("link", name="Label").get_attribute("href") == (
        f"/datasets/{dataset.id}/images/{first}/label?search=street"
    )
    # From the image page's Label button to the canvas.
    page.goto(f"/datasets/{dataset.id}/images/{first}")
    page.screenshot(path=str(shots_dir(tmp_path) / "details.png"))
    page.locator("#label-image").click()
    page.wait_for_url(f"**/images/{first}/label")
    page.wait_for_function("() => { const i = document.querySelector('#lb-svg image'); return i && i.getBBox().width === 400; }")
    wait_saved(page, 0)
    assert page.evaluate("() => window.loupeLabeling.tool") == "box"

    # A box by mouse drag, labelled by its shortcut.
    drag(page, (60, 150), (180, 215))
    page.wait_for_function("() => window.loupeLabeling.annotations.length === 1")
    page.keyboard.press("2")  # person first, then change my mind: car
    assert page.evaluate("() => window.loupeLabeling.annotations[0].label_id") == person.id
    page.keyboard.press("1")
    wait_saved(page, 1)
    (box,) = server_annotations(first)
    assert box["shape"] == "box" and box["label_id"] == car.id
    assert box["geometry"] == pytest.approx({"x": 60, "y": 150, "width": 120, "height": 65}, abs=1.0)

    # A polygon by clicks, closed by a double-click, labelled by its shortcut.
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert page.evaluate("() => window.loupeLabeling.tool") == "polygon"
    click(page, 250, 40)
    click(page, 320, 70)
    page.mouse.dblclick(*screen(page, 270, 110))
    page.wait_for_function("() => window.loupeLabeling.annotations.length === 2")
    page.keyboard.press("2")
    wait_saved(page, 2)
    page.screenshot(path=str(shots_dir(tmp_path) / "labeling.png"))
    shapes = server_annotations(first)
    assert [(a["shape"], a["label_id"]) for a in shapes] == [("box", car.id), ("polygon", person.id)]
    flat = [v for point in shapes[1]["geometry"]["points"] for v in point]
    assert flat == pytest.approx([250, 40, 320, 70, 270, 110], abs=1.0)

    # Reload: both are there, drawn on the canvas.
    page.reload()
    wait_saved(page, 2)
    assert page.locator("#lb-shapes rect").count() == 1 and page.locator("#lb-shapes polygon").count() == 1
    assert "#2" in page.locator("#history-list li").first.inner_text()

    # Edit a vertex: select the polygon, drag its second vertex.
    page.locator("#lb-tools [data-tool=select]").click()
    click(page, 280, 72)  # inside the triangle
    page.wait_for_function("() => window.loupeLabeling.selected === 1")
    assert page.locator("#lb-handles .handle").count() == 3
    drag(page, (320, 70), (350, 90))
    wait_saved(page, 3)
    assert server_annotations(first)[1]["geometry"]["points"][1] == pytest.approx([350, 90], abs=1.0)

    # Undo puts the vertex back (and saves that).
    page.keyboard.press("Control+z")
    wait_saved(page, 4)
    assert server_annotations(first)[1]["geometry"]["points"][1] == pytest.approx([320, 70], abs=1.0)
    page.keyboard.press("Control+Shift+z")  # redo
    wait_saved(page, 5)
    assert server_annotations(first)[1]["geometry"]["points"][1] == pytest.approx([350, 90], abs=1.0)

    # "?" lists the shortcuts, labels' keys included.
    page.keyboard.press("?")
    assert page.locator("#lb-help").is_visible()
    assert "Label: person" in page.locator("#lb-help-table").inner_text()
    page.keyboard.press("?")
    assert page.locator("#lb-help").is_hidden()

    # The wheel zooms around the pointer: the image point under it stays put; F fits again.
    fitted = page.evaluate("() => window.loupeLabeling.view.s")
    x, y = screen(page, 120, 180)
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    page.wait_for_function("s => window.loupeLabeling.view.s > s * 1.5", arg=fitted)
    assert screen(page, 120, 180) == pytest.approx((x, y), abs=1.5)
    # A trackpad: a sideways swipe pans without zooming; a pinch (ctrl+wheel, small deltas) zooms
    # around the pointer too, further per unit than a wheel.
    before = page.evaluate("() => window.loupeLabeling.view")
    page.mouse.wheel(40, 0)
    page.wait_for_function("tx => window.loupeLabeling.view.tx < tx - 30", arg=before["tx"])
    assert page.evaluate("() => window.loupeLabeling.view.s") == pytest.approx(before["s"])
    x, y = screen(page, 120, 180)
    page.mouse.move(x, y)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -20)
    page.keyboard.up("Control")
    page.wait_for_function("s => window.loupeLabeling.view.s > s * 1.2", arg=before["s"])
    assert screen(page, 120, 180) == pytest.approx((x, y), abs=1.5)
    page.keyboard.press("f")
    assert page.evaluate("() => window.loupeLabeling.view.s") == pytest.approx(fitted)

    # The next image of the filter.
    page.keyboard.press("ArrowRight")
    page.wait_for_url(f"**/images/{second}/label")
    wait_saved(page, 0)
    assert page.locator("#lb-file-name").inner_text() == "street-2.png"

    # Shift+S skips: the image is handed in with no annotations, even one just drawn.
    drag(page, (10, 10), (60, 50))
    page.keyboard.press("Shift+S")
    page.wait_for_function("() => document.getElementById('save-status').textContent === 'Skipped'")
    assert server_annotations(second) == []
    assert page.locator("#lb-state").inner_text() == "accepted"
    assert errors == []


def test_classify_an_image_with_one_key_press(page, tmp_path):
    user = make_user()
    dataset = make_dataset(user, name="Pets", type="classification")
    (image_id,) = add_images(dataset, 1, size=(120, 90))
    cat = add_label(dataset, "cat", "c", "tag", "#f08c00", 0)
    dog = add_label(dataset, "dog", "d", "tag", "#2f9e44", 1)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/images/{image_id}/label")
    wait_saved(page, 0)
    assert page.locator("#lb-tools [data-tool]").count() == 1  # only "select": nothing to draw here

    page.keyboard.press("d")
    wait_saved(page, 1)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("tag", dog.id)]
    assert page.locator("#lb-tags .lb-tag").inner_text().startswith("dog")
    page.screenshot(path=str(shots_dir(tmp_path) / "classify.png"))
    # One class per image: another key replaces it. (Minutes later: a change within the fold
    # window would fold into the same revision, and there would be no "dog" revision to restore.)
    age_revisions(image_id, 600)
    page.keyboard.press("c")
    wait_saved(page, 2)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("tag", cat.id)]

    # Enter submits (no review asked for: accepted); the history panel follows.
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('lb-state').textContent === 'accepted'")
    page.wait_for_selector("#history-list li[data-revision='3']")
    # Only earlier saves can be brought back: not the current revision, and not a submit (its
    # annotations are those of the save before it).
    restorable = page.locator("#history-list li:has(button:text('Restore'))")
    assert [restorable.nth(i).get_attribute("data-revision") for i in range(restorable.count())] == ["2", "1"]
    assert page.locator("#history-list li.current").get_attribute("data-revision") == "3"

    # Restore the first revision from the history panel: the canvas shows dog again.
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#history-list li[data-revision='1']").get_by_role("button", name="Restore").click()
    page.wait_for_function("() => window.loupeLabeling.revision === 4")
    assert page.locator("#lb-tags .lb-tag").inner_text().startswith("dog")
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("tag", dog.id)]
    assert errors == []


def test_unsaved_work_survives_a_reload_and_a_conflict_offers_theirs_or_mine(page):
    user = make_user()
    dataset = make_dataset(user, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    car = add_label(dataset, "car", "1", "box", "#e03131", 0)
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/images/{image_id}/label")
    wait_saved(page, 0)

    # The network drops: the box stays in localStorage and the page says it is retrying.
    page.route("**/annotations", lambda route: route.abort() if route.request.method == "PUT" else route.continue_())
    drag(page, (10, 10), (60, 50))
    page.wait_for_function("() => document.getElementById('save-status').dataset.status === 'offline'")
    assert page.locator("#save-status").inner_text().startswith("Offline — retrying")
    assert server_annotations(image_id) == []
    page.unroute("**/annotations")

    # Meanwhile someone else saves the image.
    from services.annotations import replace_annotations

    other = {"label_id": car.id, "shape": "box", "geometry": {"x": 200, "y": 200, "width": 20, "height": 20}}
    replace_annotations(db.session.get(Image, image_id), user, [other], 0)

    # Reloading restores my box from localStorage and re-sends it: a conflict, not an overwrite.
    page.reload()
    page.wait_for_selector("#conflict-bar:not([hidden])")
    assert "Someone else saved this image" in page.locator("#conflict-bar").inner_text()
    assert page.evaluate("() => window.loupeLabeling.annotations[0].geometry.x") == pytest.approx(10, abs=1)
    page.get_by_role("button", name="Keep mine").click()
    wait_saved(page, 2)
    assert [a["geometry"]["x"] for a in server_annotations(image_id)] == pytest.approx([10], abs=1)
