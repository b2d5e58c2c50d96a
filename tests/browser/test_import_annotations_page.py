"""The Import annotations page: send a COCO file of predictions from the page, watch the job end,
and find the pre-labels on the image."""

import json

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Annotation, Image
from tests.browser.test_upload_flow import sign_in
from tests.factories import image_bytes, make_dataset, make_user
from tests.workers.helpers import upload_files

pytestmark = pytest.mark.browser


def test_import_coco_predictions_from_the_page(page, run_jobs, tmp_path):
    owner = make_user()
    dataset = make_dataset(owner)
    upload_files(dataset, owner, [("a.jpg", image_bytes((64, 48), seed=1)), ("b.jpg", image_bytes((64, 48), seed=2))])
    run_jobs()
    document = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}, {"id": 2, "file_name": "nowhere.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 10], "score": 0.8, "iscrowd": 0, "area": 200}],
        "categories": [{"id": 1, "name": "cat"}],
    }
    file = tmp_path / "predictions.json"
    file.write_text(json.dumps(document))
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, owner)
    page.goto(f"/datasets/{dataset.id}/images/")
    page.get_by_role("link", name="Import annotations").click()
    page.wait_for_url(f"**/datasets/{dataset.id}/imports/")
    page.select_option("#import-format", "coco")
    page.set_input_files("#import-file", str(file))
    page.click("#import-submit")
    page.wait_for_url("**/jobs/**")
    page.wait_for_selector("[data-job-status=finished]", timeout=30000)  # the page polls the job
    assert "Imported 1 annotations on 1 images" in page.locator("#job-message").inner_text()
    assert "nowhere.jpg" in page.locator("#job-errors").inner_text()
    image = db.session.scalar(select(Image).where(Image.dataset_id == dataset.id, Image.file_name == "a.jpg"))
    db.session.refresh(image)
    assert image.state.value == "prelabeled"
    assert [a.source for a in db.session.scalars(select(Annotation).where(Annotation.image_id == image.id))] == ["prediction"]

    page.goto(f"/datasets/{dataset.id}/imports/")
    assert "Imported 1 annotations" in page.locator("#import-jobs").inner_text()
    assert errors == []
