"""Repetition in real browsers: two labelers label the same image, each a version of their own on
the canvas; the reviewer sees both side by side with their agreement, merges them and accepts."""

import pytest
import requests

from core.extensions import db
from models import Image
from tests.browser.test_labeling import add_images, add_label, drag, server_annotations, wait_saved
from tests.browser.test_task_queue import open_canvas, signed_in_page
from tests.factories import make_dataset, make_user, token_for
from tests.support import member

pytestmark = pytest.mark.browser


def test_two_versions_labeled_apart_then_merged_by_the_reviewer(browser, live_server):
    owner = make_user(name="Olga")
    dataset = make_dataset(owner, name="Street", type="detection")
    (image_id,) = add_images(dataset, 1)
    add_label(dataset, "car", "1", "box", "#e03131", 0)
    ana, ben = member(dataset, "labeler", name="Ana"), member(dataset, "labeler", name="Ben")
    task = requests.post(
        f"{live_server}/api/v1/datasets/{dataset.id}/tasks", json={"name": "Twice", "image_ids": [image_id], "member_ids": [ana.id, ben.id], "repetition": 2},
        headers=token_for(owner), timeout=30,
    ).json()
    errors = []

    def label_version(page, start, end):
        page.goto("/work")
        page.locator("#my-tasks tr[data-task=Twice] a.button").click()  # Start, once the task is built
        page.wait_for_url(f"**/images/{image_id}/label?task_id={task['id']}")
        open_canvas(page)
        assert page.locator("#lb-own-version").is_visible()
        wait_saved(page, 0)
        drag(page, start, end)
        page.keyboard.press("1")
        wait_saved(page, 1)
        page.locator("#lb-submit").click()
        page.wait_for_url("**/tasks/*/start")

    labeler = signed_in_page(browser, live_server, ana, errors)
    for _ in range(360):  # the worker deals the task out (its process may still be starting)
        if requests.get(f"{live_server}/api/v1/tasks/{task['id']}", headers=token_for(owner), timeout=30).json()["complete"]:
            break
        labeler.wait_for_timeout(250)
    label_version(labeler, (60, 150), (180, 215))
    assert server_annotations(image_id) == [], "a version is not the image's annotations"
    assert db.session.get(Image, image_id).state.value == "unlabeled"
    label_version(signed_in_page(browser, live_server, ben, errors), (250, 40), (310, 100))
    db.session.expire_all()
    assert db.session.get(Image, image_id).state.value == "to_review"

    reviewer = signed_in_page(browser, live_server, owner, errors)
    reviewer.goto(f"/datasets/{dataset.id}/images/{image_id}/label?review=1")
    open_canvas(reviewer)
    versions = reviewer.locator("#lb-versions")
    assert versions.locator(".version").count() == 2
    assert "agreement 0 %" in versions.inner_text()  # two different cars
    assert versions.locator(".version .ov-box").count() == 2
    reviewer.locator("#lb-merge").click()
    reviewer.wait_for_function("() => window.loupeLabeling.annotations.length === 2")
    assert sorted(a["geometry"]["x"] for a in server_annotations(image_id)) == [60, 250]
    reviewer.keyboard.press("Shift+A")
    reviewer.wait_for_url("**/review/?*empty=1*")
    db.session.expire_all()
    assert db.session.get(Image, image_id).state.value == "accepted"
    assert errors == []
