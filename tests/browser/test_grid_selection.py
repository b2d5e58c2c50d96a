"""The grid's selection in a real browser: it survives bulk actions, "select all N matching" reaches
past the loaded pages (in the request, or as a job), and classifying the focused tile moves on."""

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Image, ImageTag, Split, Tag
from tests.browser.test_grid_labeling import add_label, wait_chips
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser


def load_every_page(page, count: int) -> None:
    """Scroll until infinite scroll has loaded `count` tiles."""
    while page.locator(".tile").count() < count:
        page.locator(".sentinel").scroll_into_view_if_needed()
        page.wait_for_function("n => document.querySelectorAll('.tile').length > n", arg=page.locator(".tile").count())


def checked(page) -> list[str]:
    return page.eval_on_selector_all("input[name=image_ids]:checked", "boxes => boxes.map((b) => b.value)")


def test_the_selection_and_the_scroll_survive_bulk_actions(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Street")
    ids = insert_images(dataset, 250)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    page.evaluate("window.__samePage = true")  # a page load would lose this
    load_every_page(page, 250)

    page.get_by_label("Select img_00180.jpg").check()
    page.get_by_label("Select img_00182.jpg").click(modifiers=["Shift"])
    page.get_by_label("Select img_00210.jpg").check()
    selected = [str(ids[i]) for i in (180, 181, 182, 210)]
    assert checked(page) == selected
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 2000

    page.get_by_label("Tag name").fill("dusk")
    page.locator("#bulk-tags").get_by_role("button", name="Add tag").click()
    page.wait_for_selector("#grid-notice:has-text(\"Tagged 4 images 'dusk'\")")
    page.wait_for_function("() => document.querySelectorAll('#tile-%s .tag-chip').length === 1" % ids[210])
    assert checked(page) == selected and page.locator("#selected-count").inner_text() == "4 selected"
    assert page.locator(".tile").count() == 250
    # Where it was, give or take the tag rows the changed tiles grew.
    assert abs(page.evaluate("window.scrollY") - scrolled) < 100
    assert page.locator("#tag-filter option", has_text="dusk (4)").count() == 1, "the tag filter learned the new tag"

    # A second action on the same selection, then a delete: the rest of the grid stays where it was.
    page.locator("#bulk-actions").get_by_label("Set split to").select_option("test")
    page.locator("#bulk-actions").get_by_role("button", name="Set split").click()
    page.wait_for_selector("#grid-notice:has-text('Moved 4 images to test')")
    page.wait_for_function("() => document.querySelector('#tile-%s .badge').textContent === 'test'" % ids[181])
    assert checked(page) == selected
    page.get_by_label("Select img_00210.jpg").uncheck()
    page.locator("#bulk-actions").get_by_role("button", name="Delete").click()
    page.wait_for_selector("#grid-notice:has-text('Deleted 3 images')")
    page.wait_for_function("() => document.querySelectorAll('.tile').length === 247")
    assert page.locator("#grid-total").inner_text() == "247 images"
    assert checked(page) == [] and page.locator("#tile-%s" % ids[210]).is_visible()
    assert abs(page.evaluate("window.scrollY") - scrolled) < 400, "only the three deleted tiles' rows went"
    assert page.evaluate("window.__samePage") is True
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Image).where(Image.dataset_id == dataset.id)) == 247
    assert errors == []


def test_select_all_matching_sets_the_split_of_every_match_not_only_the_loaded_ones(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Street")
    ids = insert_images(dataset, 260)
    db.session.execute(db.update(Image).where(Image.id.in_(ids[:10])).values(file_name="other.png"))
    db.session.commit()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/?search=img_")
    assert page.locator(".tile").count() == 100
    offer = page.locator("#select-matching")
    assert offer.is_hidden()
    page.get_by_role("button", name="Select all shown").click()
    assert offer.is_visible() and page.locator("#selected-count").inner_text() == "100 selected"
    page.get_by_role("button", name="Select all 250 matching the filter").click()
    assert page.locator("#selected-count").inner_text() == "All 250 images selected" and offer.is_hidden()

    page.locator("#bulk-actions").get_by_label("Set split to").select_option("validation")
    page.locator("#bulk-actions").get_by_role("button", name="Set split").click()
    page.wait_for_selector("#grid-notice:has-text('Moved 250 images to validation')")
    page.wait_for_function("() => [...document.querySelectorAll('.tile .badge')].every((b) => b.textContent === 'validation')")
    db.session.expire_all()
    splits = dict(db.session.execute(select(Image.id, Image.split)).all())
    assert [splits[i] for i in ids[10:]] == [Split.validation] * 250
    assert [splits[i] for i in ids[:10]] == [Split.unassigned] * 10, "outside the filter"
    # What is shown stays selected; "all matching" was for that one action.
    assert page.locator("#selected-count").inner_text() == "100 selected" and offer.is_visible()

    # Unselecting one tile leaves "all matching" too.
    page.get_by_role("button", name="Select all 250 matching the filter").click()
    page.get_by_label("Select img_00050.jpg").uncheck()
    assert page.locator("#selected-count").inner_text() == "99 selected"
    assert errors == []


def test_select_all_matching_over_a_thousand_images_runs_a_job_then_redraws_the_tiles(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Big")
    ids = insert_images(dataset, 1030)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    page.evaluate("window.__samePage = true")
    page.keyboard.press("Control+a")
    page.get_by_role("button", name="Select all 1,030 matching the filter").click()
    page.get_by_label("Tag name").fill("batch-7")
    page.locator("#bulk-tags").get_by_role("button", name="Add tag").click()
    page.wait_for_selector("#grid-notice:has-text('A job is going through the 1,030 matching images')")
    page.wait_for_selector("#bulk-job .job[data-job-status=finished]", timeout=30000)
    # The loaded tiles are redrawn once the job has ended, with the selection kept.
    page.wait_for_function("() => [...document.querySelectorAll('.tile')].every((t) => t.querySelector('.tag-chip')?.textContent === 'batch-7')")
    assert len(checked(page)) == 100
    assert page.evaluate("window.__samePage") is True
    db.session.expire_all()
    tag = db.session.scalar(select(Tag).where(Tag.dataset_id == dataset.id, Tag.name == "batch-7"))
    assert tag.image_count == 1030
    assert db.session.scalar(select(func.count()).select_from(ImageTag).where(ImageTag.tag_id == tag.id)) == len(ids)
    assert errors == []


def test_classifying_the_focused_tile_by_key_moves_the_focus_to_the_next_tile(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Pets", type="classification")
    ids = insert_images(dataset, 5)
    add_label(dataset, "cat", "c", "#e6194b")
    add_label(dataset, "dog", "d", "#4363d8")
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    page.keyboard.press("ArrowRight")  # focus the first tile
    assert page.locator(".tile.focused").get_attribute("data-image-id") == str(ids[0])

    for key in "cdcd":
        page.keyboard.press(key)
    wait_chips(page, ["cat", "dog", "cat", "dog", ""])
    assert page.locator(".tile.focused").get_attribute("data-image-id") == str(ids[4])
    page.keyboard.press("d")  # the last tile: classified, and the focus stays on it
    wait_chips(page, ["cat", "dog", "cat", "dog", "dog"])
    assert page.locator(".tile.focused").get_attribute("data-image-id") == str(ids[4])

    # A selection is classified as a whole and the focus stays where it is.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Space")
    page.keyboard.press("c")
    wait_chips(page, ["cat", "dog", "cat", "cat", "dog"])
    assert page.locator(".tile.focused").get_attribute("data-image-id") == str(ids[3])
