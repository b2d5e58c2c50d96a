"""Whole-image classes on the canvas in a real browser: multilabel toggles, anomaly with a defect region, one class.

Every check reads what the server stored, not only what the page shows.
"""

import pytest

from tests.browser.test_canvas_shapes import open_canvas, wait_all_saved
from tests.browser.test_labeling import add_images, add_label, drag, server_annotations, wait_saved
from tests.factories import make_dataset, make_user

pytestmark = pytest.mark.browser


def tags_of(image_id: int) -> set[int]:
    return {a["label_id"] for a in server_annotations(image_id) if a["shape"] == "tag"}


def chips(page) -> list[str]:
    return page.eval_on_selector_all("#lb-tags .lb-tag", "tags => tags.map((t) => t.firstChild.textContent)")


def test_multilabel_keys_toggle_several_classes(page):
    user = make_user()
    dataset = make_dataset(user, name="Scenes", type="multilabel")
    (image_id,) = add_images(dataset, 1)
    indoor = add_label(dataset, "indoor", "i", "tag", "#e03131", 0)
    night = add_label(dataset, "night", "n", "tag", "#1971c2", 1)
    people = add_label(dataset, "people", "p", "tag", "#2f9e44", 2)
    errors = open_canvas(page, user, dataset, image_id)

    for key in "inp":
        page.keyboard.press(key)
    page.wait_for_function("() => window.loupeLabeling.annotations.length === 3")
    wait_all_saved(page)
    assert tags_of(image_id) == {indoor.id, night.id, people.id}
    assert page.locator("#lb-palette .lb-label.on").count() == 3

    page.keyboard.press("n")  # a second press takes the class off again
    page.wait_for_function("() => window.loupeLabeling.annotations.length === 2")
    revision = wait_all_saved(page)
    assert tags_of(image_id) == {indoor.id, people.id}

    page.reload()
    wait_saved(page, revision)
    assert sorted(chips(page)) == ["indoor", "people"]
    assert errors == []


def test_anomaly_class_and_a_defect_region(page):
    user = make_user()
    dataset = make_dataset(user, name="Parts", type="anomaly")
    (image_id,) = add_images(dataset, 1)
    normal = add_label(dataset, "normal", "n", "tag", "#2f9e44", 0)
    anomaly = add_label(dataset, "anomaly", "a", "tag", "#e03131", 1)
    scratch = add_label(dataset, "scratch", "x", "box", "#f08c00", 2)
    errors = open_canvas(page, user, dataset, image_id)

    page.keyboard.press("n")
    wait_saved(page, 1)
    assert tags_of(image_id) == {normal.id}
    page.keyboard.press("a")  # one class per image: anomaly replaces normal
    wait_saved(page, 2)
    assert tags_of(image_id) == {anomaly.id}

    page.keyboard.press("x")  # a region label: picks it and its box tool, adds no class
    assert page.evaluate("() => window.loupeLabeling.tool") == "box"
    drag(page, (60, 150), (180, 215))
    wait_saved(page, 3)
    stored = server_annotations(image_id)
    assert [(a["shape"], a["label_id"]) for a in stored] == [("tag", anomaly.id), ("box", scratch.id)]
    assert stored[1]["geometry"] == pytest.approx({"x": 60, "y": 150, "width": 120, "height": 65}, abs=1.0)

    page.reload()
    wait_saved(page, 3)
    assert chips(page) == ["anomaly"]
    assert page.locator("#lb-shapes rect").count() == 1
    assert errors == []


def test_classification_keeps_one_class_and_the_chip_removes_it(page):
    user = make_user()
    dataset = make_dataset(user, name="Pets", type="classification")
    (image_id,) = add_images(dataset, 1, size=(120, 90))
    add_label(dataset, "cat", "c", "tag", "#f08c00", 0)
    dog = add_label(dataset, "dog", "d", "tag", "#2f9e44", 1)
    bird = add_label(dataset, "bird", "b", "tag", "#1971c2", 2)
    errors = open_canvas(page, user, dataset, image_id)

    page.keyboard.press("c")
    wait_saved(page, 1)
    page.locator("#lb-palette .lb-label", has_text="bird").click()  # the palette does what the key does
    wait_saved(page, 2)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("tag", bird.id)]
    page.keyboard.press("b")  # already the class: no change, nothing to save
    assert page.evaluate("() => window.loupeLabeling.saving.changeSeq") == 2
    page.keyboard.press("d")
    wait_saved(page, 3)
    assert [(a["shape"], a["label_id"]) for a in server_annotations(image_id)] == [("tag", dog.id)]
    assert chips(page) == ["dog"]

    page.get_by_role("button", name="Remove dog").click()
    wait_saved(page, 4)
    assert server_annotations(image_id) == []
    assert page.locator("#lb-tags").inner_text() == "None yet: press a label's key."
    assert errors == []
