"""The Import annotations page: a bad submission is answered on the page, naming the problem."""

import io

import pytest

from tests.factories import make_dataset, make_user
from tests.support import sign_in


@pytest.mark.parametrize("form, message", [
    ({"kind": "annotations", "format": "coco"}, "Send the annotation file"),
    ({"kind": "annotations", "format": "pdf", "file": (io.BytesIO(b"{}"), "a.json")}, "format must be one of"),
    ({"kind": "annotations", "format": "coco", "score_threshold": "2", "file": (io.BytesIO(b"{}"), "a.json")}, "score_threshold must be"),
    ({"kind": "annotations", "format": "coco", "file": (io.BytesIO(b""), "a.json")}, "The sent file is empty"),
])
def test_a_bad_import_is_answered_on_the_page(app_ctx, client, form, message):
    owner = make_user()
    dataset = make_dataset(owner)
    sign_in(client, owner)
    response = client.post(f"/datasets/{dataset.id}/imports/", data=form, content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'id="import-form"' in page


def test_the_page_lists_every_import_format(app_ctx, client):
    owner = make_user()
    dataset = make_dataset(owner)
    sign_in(client, owner)
    page = client.get(f"/datasets/{dataset.id}/imports/").get_data(as_text=True)
    for key in ("coco", "voc", "yolo", "cvat", "label_studio", "csv", "json", "zip"):
        assert f'value="{key}"' in page
