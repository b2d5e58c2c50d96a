"""The real thing in a real browser: sign in, create a dataset, upload (picker and drop), grid, delete; live search."""

import base64

import pytest

from tests.factories import PASSWORD, image_bytes, make_dataset, make_user

pytestmark = pytest.mark.browser


DROP = """async ({ selector, files }) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type }));
  }
  const zone = document.querySelector(selector);
  const fire = (type) => zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  fire("dragenter");
  fire("dragover");
  const highlighted = zone.classList.contains("over");
  fire("drop");
  return { highlighted, after: zone.classList.contains("over") };
}"""


def sign_in(page, user) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/datasets/")


def wait_for_import(page, count: int, previous_job: str | None = None) -> str:
    """Each file row says uploaded, then this batch's job partial polls itself to finished at 100%."""
    page.wait_for_function(
        "n => document.querySelectorAll('#upload-files li.ok').length === n", arg=count
    )
    states = page.locator("#upload-files li .state").all_inner_texts()
    assert states == ["uploaded"] * count, states
    job = page.wait_for_selector(f"#import-job .job:not([id='{previous_job}'])")
    job_id = job.get_attribute("id")
    page.wait_for_selector(f"[id='{job_id}'][data-job-status=finished]", timeout=30000)
    assert page.locator("#job-status").inner_text() == "finished"
    assert page.locator("#job-count").inner_text() == f"{count} / {count}"
    # Waited for, not read at once: htmx settles a swapped element's attributes (the bar's width
    # among them) a moment after its text.
    page.wait_for_function("() => document.getElementById('job-bar').style.width === '100%'")
    page.wait_for_function("() => document.getElementById('upload-bar').style.width === '100%'")
    return job_id


def test_upload_by_picker_and_drop_then_delete_from_the_grid(page, tmp_path):
    user = make_user()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, user)

    page.get_by_role("link", name="New dataset").click()
    page.get_by_label("Name").fill("Browser cats")
    page.get_by_label("Classification").check()
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url("**/images/")
    assert "Browser cats" in page.locator("#dataset-name").inner_text()

    page.locator(".tabs").get_by_role("link", name="Upload").click()
    page.wait_for_url("**/upload/")
    # The file picker: two files.
    page.set_input_files("#file-input", [
        {"name": "cat-1.jpg", "mimeType": "image/jpeg", "buffer": image_bytes((64, 48), "JPEG", seed=1)},
        {"name": "cat-2.png", "mimeType": "image/png", "buffer": image_bytes((48, 64), "PNG", seed=2)},
    ])
    first_job = wait_for_import(page, 2)

    # The drop zone: a real drop event carrying a DataTransfer of File objects.
    dropped = [{"name": "cat-3.webp", "type": "image/webp", "data": base64.b64encode(image_bytes((80, 40), "WEBP", seed=3)).decode()}]
    outcome = page.evaluate(DROP, {"selector": "#dropzone", "files": dropped})
    assert outcome == {"highlighted": True, "after": False}
    page.wait_for_selector("#upload-files li:has-text('cat-3.webp')")
    wait_for_import(page, 1, previous_job=first_job)

    page.locator(".tabs").get_by_role("link", name="Images").click()
    page.wait_for_url("**/images/")
    page.wait_for_function(
        "() => { const imgs = [...document.querySelectorAll('.tile img')];"
        " return imgs.length === 3 && imgs.every((i) => i.complete && i.naturalWidth > 0); }"
    )
    assert sorted(page.locator(".tile .name").all_inner_texts()) == ["cat-1.jpg", "cat-2.png", "cat-3.webp"]
    assert page.locator("#grid-total").inner_text() == "3 images"
    # Kept with the test's files for a person to look at when this test fails.
    page.screenshot(path=str(tmp_path / "grid.png"))

    delete = page.locator("#bulk-actions").get_by_role("button", name="Delete")
    assert delete.is_disabled()  # nothing selected yet
    page.get_by_label("Select cat-2.png").check()
    assert page.locator("#selected-count").inner_text() == "1 selected"
    assert delete.is_enabled()
    delete.click()  # hx-confirm opens a confirm() dialog; the handler above accepts it

    page.wait_for_function("() => document.querySelectorAll('.tile').length === 2")
    assert page.locator("#grid-total").inner_text() == "2 images"
    assert page.locator("#grid-notice").inner_text() == "Deleted 1 image"
    assert sorted(page.locator(".tile .name").all_inner_texts()) == ["cat-1.jpg", "cat-3.webp"]
    page.reload()
    assert page.locator(".tile").count() == 2
    assert errors == []


def test_dataset_list_live_search_filters_cards_as_you_type(page):
    user = make_user()
    for name in ("Cats", "Dogs", "Catfish"):
        make_dataset(user, name=name)
    sign_in(page, user)
    assert page.locator(".dataset-card").count() == 3

    page.get_by_label("Search datasets").press_sequentially("cat", delay=60)
    page.wait_for_function("() => document.querySelectorAll('.dataset-card').length === 2")
    assert sorted(page.locator(".dataset-card .name").all_inner_texts()) == ["Catfish", "Cats"]
    assert page.locator("#dataset-total").inner_text() == "2 datasets"
    assert "search=cat" in page.url  # hx-push-url keeps the filter in the address bar

    page.get_by_label("Search datasets").press_sequentially("f", delay=60)
    page.wait_for_function("() => document.querySelectorAll('.dataset-card').length === 1")
    assert page.locator(".dataset-card .name").inner_text() == "Catfish"

    page.get_by_label("Search datasets").fill("zebra")
    page.wait_for_selector("text=No datasets match these filters.")
    assert page.locator(".dataset-card").count() == 0

    page.get_by_label("Search datasets").fill("")
    page.wait_for_function("() => document.querySelectorAll('.dataset-card').length === 3")
