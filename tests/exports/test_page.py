"""The Exports page without a browser: formats for the type, their options, starting, refusals."""

from sqlalchemy import func, select

from core.extensions import db
from models import Export
from tests.support import sign_in

HTMX = {"HX-Request": "true"}


def test_page_lists_the_formats_of_the_type_and_each_formats_own_options(client, export_world):
    sign_in(client, export_world.owner)
    base = f"/datasets/{export_world.dataset.id}/exports"
    page = client.get(f"{base}/").get_data(as_text=True)
    assert 'value="json"' in page and 'value="csv_training"' in page and "No exports yet." in page
    assert 'name="coordinates"' in page  # the first format's (Loupe JSON's) options
    options = client.get(f"{base}/options?format=csv_training", headers=HTMX).get_data(as_text=True)
    assert 'name="test"' in options and 'name="validation"' in options and 'name="coordinates"' not in options
    assert f'href="{base}/"' in client.get(f"/datasets/{export_world.dataset.id}/labels/").get_data(as_text=True)


def test_starting_an_export_from_the_form_and_a_refusal_shown_next_to_it(client, export_world, run_jobs):
    sign_in(client, export_world.owner)
    base = f"/datasets/{export_world.dataset.id}/exports"
    refused = client.post(f"{base}/", data={"format": "json", "tagmap": "cat"}, headers=HTMX)
    assert refused.status_code == 422 and "tagmap entry 1" in refused.get_data(as_text=True)
    # A field of another format left in the form does not count against this one.
    started = client.post(
        f"{base}/", headers=HTMX,
        data={"format": "json", "coordinates": "percent", "full_path": ["false", "true"], "test": "20", "split": ["train", "test"]},
    )
    assert started.status_code == 200 and started.headers["HX-Trigger"] == "exportsChanged"
    export = db.session.scalar(select(Export))
    assert export.options["coordinates"] == "percent" and export.options["full_path"] is True
    assert export.options["split"] == ["train", "test"] and export.options["test"] == 0
    listing = client.get(f"{base}/list", headers=HTMX).get_data(as_text=True)
    assert 'data-polling="yes"' in listing and "queued" in listing
    run_jobs()
    listing = client.get(f"{base}/list", headers=HTMX).get_data(as_text=True)
    assert 'data-polling="no"' in listing and f"/api/v1/exports/{export.id}/download" in listing and "3 images, 4 annotations" in listing
    assert client.post(f"{base}/", data={"format": "csv"}).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Export)) == 2
