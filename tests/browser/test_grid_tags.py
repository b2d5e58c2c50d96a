"""The grid page's tag manager in a real browser: rename a tag the grid is filtered by, then delete it."""

import pytest

from services import images as image_service
from tests.browser.test_upload_flow import sign_in
from tests.factories import make_dataset, make_user
from tests.support import insert_images

pytestmark = pytest.mark.browser


def tile_tags(page) -> list[str]:
    return page.eval_on_selector_all(
        ".tile", "tiles => tiles.map((t) => [...t.querySelectorAll('.tag-chip')].map((c) => c.textContent).join(','))"
    )


def wait_tile_tags(page, expected: list[str]) -> None:
    page.wait_for_function(
        "expected => JSON.stringify([...document.querySelectorAll('.tile')].map((t) => [...t.querySelectorAll('.tag-chip')]"
        ".map((c) => c.textContent).join(','))) === JSON.stringify(expected)",
        arg=expected,
    )


def filter_options(page) -> list[str]:
    return page.eval_on_selector_all("#tag-filter option", "options => options.map((o) => o.textContent)")


def test_rename_and_delete_a_tag_from_the_grid_page_without_page_loads(page):
    owner = make_user()
    dataset = make_dataset(owner, name="Street")
    ids = insert_images(dataset, 4)
    image_service.add_tag_to_images(dataset, ids[:2], "night")
    image_service.add_tag_to_images(dataset, ids[1:3], "blurry")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/?tag=night")
    assert tile_tags(page) == ["night", "blurry,night"]
    page.evaluate("window.__samePage = true")  # a page load would lose this

    page.locator("#tag-manager summary").click()
    rows = page.locator("#tag-list .tag-row")
    assert rows.count() == 2

    # A blank name says why and keeps what was typed; nothing is renamed.
    field = page.get_by_label("New name for the tag night")
    field.fill("   ")
    field.press("Enter")
    page.wait_for_selector("#tag-error:has-text('1 to 100 characters')")
    assert field.input_value() == "   " and tile_tags(page) == ["night", "blurry,night"]
    assert rows.count() == 2
    field.fill("x" * 101)
    assert field.input_value() == "x" * 100, "maxlength stops the 101st character in the browser"
    field.fill("dusk")

    # Rename the tag the grid is filtered by: the filter follows it and the chips show the new name.
    page.get_by_label("New name for the tag night").press("Enter")
    page.wait_for_selector("#tag-notice:has-text('Renamed the tag')")
    wait_tile_tags(page, ["dusk", "blurry,dusk"])
    assert page.locator("#tag-filter select").input_value() == "dusk"
    page.wait_for_function("() => location.search.includes('tag=dusk')")
    assert filter_options(page) == ["All tags", "blurry (2)", "dusk (2)"]
    assert page.evaluate("window.__samePage") is True

    # Renaming onto an existing tag merges the two.
    page.get_by_label("New name for the tag dusk").fill("blurry")
    page.get_by_label("New name for the tag dusk").press("Enter")
    page.wait_for_selector("#tag-notice:has-text('Merged the tag')")
    wait_tile_tags(page, ["blurry", "blurry", "blurry"])
    assert filter_options(page) == ["All tags", "blurry (3)"]
    assert page.locator("#tag-filter select").input_value() == "blurry"

    # Delete it, confirming the dialog: the filter empties and the grid shows every image untagged.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete the tag blurry").click()
    page.wait_for_selector("#tag-notice:has-text('Deleted the tag')")
    wait_tile_tags(page, ["", "", "", ""])
    assert page.locator("#tag-filter select").count() == 0
    assert "No tags yet" in page.locator("#tag-list").inner_text()
    page.wait_for_function("() => !location.search.includes('tag=')")
    assert page.evaluate("window.__samePage") is True
    assert errors == []
