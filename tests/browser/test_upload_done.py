"""The upload page says when a batch is done, and how it went."""

import pytest

from tests.browser.test_upload_flow import sign_in
from tests.factories import image_bytes, make_dataset, make_user

pytestmark = pytest.mark.browser


def pick(page, files) -> None:
    page.set_input_files("#file-input", [{"name": name, "mimeType": "image/jpeg", "buffer": content} for content, name in files])


def test_the_upload_page_says_done_with_how_many_were_imported_and_how_many_failed(page):
    user = make_user()
    dataset = make_dataset(user, name="Cats")
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, user)
    page.goto(f"/datasets/{dataset.id}/upload/")
    state = page.locator("#upload-state")

    good = [(image_bytes(seed=s), f"cat-{s}.jpg") for s in (1, 2, 3)]
    pick(page, [*good, (b"not an image", "notes.jpg")])
    page.wait_for_selector("#upload-state.done", timeout=30000)
    assert state.inner_text() == "Done: 3 imported, 1 failed"
    assert page.locator("#job-status").inner_text() == "finished"

    # The next batch starts over, and a duplicate is counted apart from the failures.
    pick(page, [good[0], (image_bytes(seed=9), "cat-9.jpg")])
    page.wait_for_function(
        "() => document.getElementById('upload-state').textContent === 'Done: 1 imported, 0 failed, 1 duplicate skipped'", timeout=30000
    )
    assert state.get_attribute("class") == "done"
    assert errors == []
