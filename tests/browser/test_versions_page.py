"""The Versions page: release a version, watch it listed with its counts, compare it with the next."""

import pytest

from core.extensions import db
from models import Image
from services.annotations import replace_annotations
from services.images import update_image
from services.labels import create_label
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser


def test_release_a_version_on_the_page_and_compare_it_with_the_next(page):
    user = make_user()
    dataset = make_dataset(user, name="Parts")
    insert_images(dataset, 3)
    crack = create_label(dataset, name="crack", default_shape="box")
    first = db.session.scalar(db.select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id))
    replace_annotations(first, user, [{"label_id": crack.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 8, "height": 6}}])
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/images/")
    page.click("nav.tabs >> text=Versions")
    assert page.locator("#releases .empty").inner_text() == "No version released yet."

    page.fill("#release-note", "baseline")
    page.click("#release-button")
    row = page.locator("#versions-table tr[data-version=V001]")
    row.wait_for(timeout=30000)  # the list polls until the worker has released it
    assert row.locator(".version-images").inner_text() == "3"
    assert row.locator(".version-annotations").inner_text() == "1"
    assert "baseline" in row.inner_text() and "unassigned 3" in row.inner_text()
    row.locator("summary").click()
    assert "crack" in row.inner_text()
    assert page.locator("#release-note").input_value() == ""

    update_image(db.session.get(Image, first.id), split="train")
    page.click("#release-button")
    page.locator("#versions-table tr[data-version=V002]").wait_for(timeout=30000)
    page.reload()  # the compare form appears once there are two versions
    page.click("#compare-form button")
    summary = page.locator("#compare-summary")
    summary.wait_for()
    assert summary.inner_text() == "0 added · 0 removed · 1 changed"
    assert "img_00000.jpg" in page.locator("#compare-changed").inner_text() and "unassigned → train" in page.locator("#compare-changed").inner_text()
    assert errors == []
