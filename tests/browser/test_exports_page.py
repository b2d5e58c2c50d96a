"""The Exports page: choose Loupe JSON and its options, start, watch it finish, download the file."""

import json

import pytest

from tests.browser.test_upload_flow import sign_in
from tests.exports.conftest import make_export_world

pytestmark = pytest.mark.browser


def test_export_json_from_the_page_and_download_it(page):
    export_world = make_export_world()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, export_world.owner)
    page.goto(f"/datasets/{export_world.dataset.id}/images/")
    page.get_by_role("link", name="Exports").click()
    page.wait_for_url(f"**/datasets/{export_world.dataset.id}/exports/")
    assert page.locator("#exports").inner_text().strip() == "No exports yet."

    page.select_option("#export-format", "csv_training")
    page.wait_for_selector("#export-options input[name=test]")  # the format's own options replace the others
    page.select_option("#export-format", "json")
    page.wait_for_selector("#export-options select[name=coordinates]")
    page.select_option("#export-options select[name=coordinates]", "percent")
    page.check("input[name=split][value=train]")
    page.click("#export-start")
    page.wait_for_selector("#export-started-message")

    row = page.locator("#exports tbody tr").first
    row.locator("a.download").wait_for(timeout=30000)  # the list polls until the job is done
    assert row.get_attribute("data-status") == "ready"
    assert "2 images, 4 annotations" in row.inner_text()
    with page.expect_download() as download:
        row.locator("a.download").click()
    assert download.value.suggested_filename == "Cats-loupe.json"
    document = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert document["coordinates"] == "percent"
    assert sorted(image["file_name"] for image in document["images"]) == ["a.png", "b.png"]
    assert page.locator("#exports").get_attribute("data-polling") == "no"
    assert errors == []
