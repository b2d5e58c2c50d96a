"""The acceptance sampling page: the owner draws a sample of a task's accepted images, rejects
enough to fail it, reads the estimate with its interval and the outcome, and the lot goes back to review."""

import pytest

from core.extensions import db
from models import Image
from services.annotations import replace_annotations
from services.labels import create_label
from tests.browser.test_upload_flow import sign_in
from tests.factories import image_bytes, imported_image, make_dataset, make_user
from tests.team_stats.support import accepted_task

pytestmark = pytest.mark.browser


def test_owner_fails_a_sample_on_the_page_and_the_lot_goes_back_to_review(page):
    owner = make_user(name="Olga")
    dataset = make_dataset(owner, name="Parts")
    crack = create_label(dataset, name="crack", default_shape="box")
    images = [imported_image(dataset, f"part-{i}.jpg", image_bytes(size=(120, 90), seed=40 + i), owner=owner) for i in range(6)]
    ids = [image.id for image in images]
    for image in images:
        replace_annotations(image, owner, [{"label_id": crack.id, "shape": "box", "geometry": {"x": 10, "y": 10, "width": 40, "height": 30}}])
    task = accepted_task(dataset, owner, ids, name="Cracks", sampling_rate=0.5)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}")
    page.click("a.sampling-link >> text=Cracks")
    assert page.locator("#sample-rate").input_value() == "0.5"
    page.fill("#sample-seed", "7")
    page.click("#sample-start")
    page.locator("#sample-work").wait_for()
    assert page.locator("#sample-position").inner_text().startswith("Image 1 of 3")
    assert page.locator(".sample-overlay rect.ov-box").count() == 1  # the box drawn over the large preview
    assert page.locator(".sample-strip .strip-item").count() == 3

    page.click("#sample-reject")
    page.locator("#sample-position >> text=Image 2 of 3").wait_for()
    assert page.locator("#sample-decided").inner_text() == "1 of 3"
    page.keyboard.press("r")  # the key does what the button does
    page.locator("#sample-position >> text=Image 3 of 3").wait_for()
    assert page.locator("#sample-interval").inner_text() == "0.0% – 65.8%"
    page.keyboard.press("a")
    outcome = page.locator("#sample-outcome[data-outcome=failed]")
    outcome.wait_for()
    assert page.locator("#sample-accuracy").inner_text() == "33.3%"
    assert page.locator("#sample-interval").inner_text() == "6.1% – 79.2%"
    assert page.locator("#sample-outcome-badge").inner_text() == "failed"
    assert page.locator("#sample-accept").count() == 0  # no more verdicts once decided
    # The worker sends the lot back; the outcome panel polls until it has.
    page.locator("#send-back-status >> text=finished").wait_for(timeout=30000)
    assert page.locator("#lot-remaining").inner_text() == "0"
    db.session.commit()
    db.session.expire_all()
    assert [db.session.get(Image, image_id).state.value for image_id in ids] == ["to_review"] * 6

    page.goto(f"/datasets/{dataset.id}/tasks/{task.id}/sampling")
    row = page.locator("#samples-table tbody tr")
    assert row.count() == 1 and "failed" in row.inner_text() and "3 of 6" in row.inner_text()
    assert page.locator("#sample-form").is_visible()  # a new sample may be drawn
    assert errors == []
