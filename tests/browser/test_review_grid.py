"""The grid review mode in a real browser: keyboard selection, accept, reject with a comment, the
outcomes shown on the tiles in place, and the states in the database."""

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Image, ImageState, Review, Verdict
from tests.browser.test_upload_flow import sign_in
from tests.reviews.conftest import make_desk

pytestmark = pytest.mark.browser


def states(ids: list[int]) -> list[ImageState]:
    db.session.commit()  # see what the server committed
    db.session.expire_all()
    return [db.session.get(Image, image_id).state for image_id in ids]


def test_a_reviewer_accepts_two_images_and_rejects_one_by_keyboard(page):
    desk = make_desk(images=4)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, desk.reviewer)
    page.goto(f"/datasets/{desk.dataset.id}")
    page.get_by_role("link", name="Review", exact=True).click()
    page.get_by_role("link", name="Review in a grid").click()
    page.wait_for_url(f"**/datasets/{desk.dataset.id}/review/grid")
    page.evaluate("window.__samePage = true")  # a page load would lose this
    assert page.locator("#review-grid .tile").count() == 4
    assert page.locator("#review-grid .tile .overlay rect.ov-box").count() == 4, "the boxes are drawn on the thumbnails"

    # The mouse selects too (a click on a thumbnail does not open it here); Escape clears.
    page.locator(f"#tile-{desk.ids[3]} a.thumb").click()
    assert page.locator("#review-selected").inner_text() == "1 selected"
    page.keyboard.press("Escape")
    assert page.locator("#review-selected").inner_text() == "0 selected"

    # Two thumbnails by keyboard (the click left the focus on the fourth), then a: accepted.
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    assert "focused" in page.locator(f"#tile-{desk.ids[0]}").get_attribute("class")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert page.locator("#review-selected").inner_text() == "2 selected"
    page.keyboard.press("a")
    page.wait_for_selector("#review-status:has-text('Accepted 2 images')")
    for image_id in desk.ids[:2]:
        assert "outcome-accepted" in page.locator(f"#tile-{image_id}").get_attribute("class")
        assert page.locator(f"#tile-{image_id} .review-outcome").inner_text() == "accepted"
    assert page.locator("#review-selected").inner_text() == "0 selected"

    # One more by keyboard, then r: the comment prompt, then rejected.
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.keyboard.press("r")
    dialog = page.locator("#reject-dialog")
    dialog.wait_for(state="visible")
    assert dialog.locator("#reject-count").inner_text() == "1 image"
    assert dialog.locator("textarea").input_value() == "", "the key that opened the prompt is not typed into it"
    dialog.locator("textarea").fill("The van on the right has no box")
    dialog.get_by_role("button", name="Reject").click()
    page.wait_for_selector("#review-status:has-text('Rejected 1 image')")
    assert "outcome-rejected" in page.locator(f"#tile-{desk.ids[2]}").get_attribute("class")
    assert page.locator("#review-waiting").inner_text() == "1 waiting for review"
    outcomes = page.locator("#review-outcomes li").all_inner_texts()
    assert outcomes[0] == "img_00002.jpg: rejected" and sorted(outcomes[1:]) == ["img_00000.jpg: accepted", "img_00001.jpg: accepted"]

    # A reviewed tile cannot be selected again: Ctrl+A takes only the one left.
    page.keyboard.press("Control+a")
    assert page.locator("#review-selected").inner_text() == "1 selected"
    assert page.evaluate("window.__samePage") is True, "no page load"
    assert errors == []

    assert states(desk.ids) == [ImageState.accepted, ImageState.accepted, ImageState.rejected, ImageState.to_review]
    rows = db.session.execute(select(Review.image_id, Review.verdict, Review.comment, Review.reviewer_id).order_by(Review.image_id)).all()
    assert rows == [
        (desk.ids[0], Verdict.accept, "", desk.reviewer.id), (desk.ids[1], Verdict.accept, "", desk.reviewer.id),
        (desk.ids[2], Verdict.reject, "The van on the right has no box", desk.reviewer.id),
    ]


def test_an_image_another_reviewer_judged_first_shows_as_refused(page):
    from services.reviews import give_verdict

    desk = make_desk(images=2)
    sign_in(page, desk.reviewer)
    page.goto(f"/datasets/{desk.dataset.id}/review/grid")
    page.locator("#review-grid .tile").first.wait_for()
    give_verdict(db.session.get(Image, desk.ids[0]), desk.owner, "accept")  # meanwhile, in another browser
    page.keyboard.press("Control+a")
    page.get_by_role("button", name="Reject…").click()
    page.locator("#reject-dialog textarea").fill("Both need work")
    page.locator("#reject-dialog").get_by_role("button", name="Reject").click()
    page.wait_for_selector("#review-status:has-text('Rejected 1 image; 1 image refused')")
    assert "outcome-refused" in page.locator(f"#tile-{desk.ids[0]}").get_attribute("class")
    assert "this one is accepted" in page.locator("#review-outcomes").inner_text()
    assert states(desk.ids) == [ImageState.accepted, ImageState.rejected]
