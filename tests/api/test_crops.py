"""GET /api/v1/datasets/{ds}/labels/{lbl}/crops: WebP data URIs of a label's regions, paged, for the
roles that may export; bad input refused in the error shape."""

import base64
import io

import pytest
from PIL import Image as PILImage

from core.extensions import db
from core.storage import get_storage
from models import Annotation
from services.annotations import replace_annotations
from services.labels import create_label
from tests.factories import assign, image_bytes, imported_image, make_dataset, make_user, token_for
from tests.support import actor


def decode(uri: str) -> PILImage.Image:
    prefix = "data:image/webp;base64,"
    assert uri.startswith(prefix)
    image = PILImage.open(io.BytesIO(base64.b64decode(uri[len(prefix):])))
    assert image.format == "WEBP"
    return image


def geometry_box(x, y, w, h) -> dict:
    return {"x": x, "y": y, "width": w, "height": h}


@pytest.fixture
def labeled(app_ctx):
    """A detection dataset of two imported 16x12 images: cat has two boxes and a polygon, dog one box.

    The images are made as an import leaves them, not uploaded: crops read stored files, and the
    upload path (tested in tests/workers) was most of each test's time."""
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    cat = create_label(dataset, name="cat", default_shape="box")
    dog = create_label(dataset, name="dog", default_shape="box")
    first = imported_image(dataset, "a.jpg", image_bytes((16, 12), seed=1), owner=owner)
    second = imported_image(dataset, "b.jpg", image_bytes((16, 12), seed=2), owner=owner)
    replace_annotations(first, owner, [
        {"label_id": cat.id, "shape": "box", "geometry": geometry_box(1, 2, 6, 5)},
        {"label_id": dog.id, "shape": "box", "geometry": geometry_box(0, 0, 3, 3)},
    ])
    replace_annotations(second, owner, [
        {"label_id": cat.id, "shape": "polygon", "geometry": {"points": [[2, 2], [10, 3], [6, 11]]}},
        {"label_id": cat.id, "shape": "polyline", "geometry": {"points": [[1, 1], [5, 5]]}},  # no area: no crop
    ])
    # Saved after the second image's: the first image's second crop comes last in annotation order.
    replace_annotations(first, owner, [
        {"label_id": cat.id, "shape": "box", "geometry": geometry_box(1, 2, 6, 5)},
        {"label_id": dog.id, "shape": "box", "geometry": geometry_box(0, 0, 3, 3)},
        {"label_id": cat.id, "shape": "box", "geometry": geometry_box(8, 4, 8, 8)},
    ])
    return owner, dataset, cat, dog, first, second


def crops_url(dataset, label, **query) -> str:
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return f"/api/v1/datasets/{dataset.id}/labels/{label.id}/crops" + (f"?{params}" if params else "")


def test_crops_are_webp_data_uris_of_the_bounding_boxes(client, labeled):
    owner, dataset, cat, _, first, second = labeled
    body = client.get(crops_url(dataset, cat), headers=token_for(owner)).get_json()

    assert body["total"] == 3 and body["next_cursor"] is None
    polygon_id, first_box_id, second_box_id = _ordered(cat, first, second)
    assert [(item["id"], item["image_id"], item["index"]) for item in body["items"]] == [
        (polygon_id, second.id, 0), (first_box_id, first.id, 0), (second_box_id, first.id, 1),
    ]
    assert [decode(item["crop_uri"]).size for item in body["items"]] == [(8, 9), (6, 5), (8, 8)]


def _ordered(cat, first, second) -> tuple[int, int, int]:
    """The polygon's id, then the first image's two cat boxes (annotation order)."""
    rows = db.session.execute(db.select(Annotation.id, Annotation.image_id, Annotation.shape).where(Annotation.label_id == cat.id).order_by(Annotation.id)).all()
    polygon = next(r.id for r in rows if r.shape == "polygon")
    boxes = [r.id for r in rows if r.image_id == first.id]
    return polygon, boxes[0], boxes[1]


def test_pages_follow_the_cursor_and_index_counts_the_images_earlier_crops(client, labeled):
    owner, dataset, cat, *_ = labeled
    headers = token_for(owner)
    whole = client.get(crops_url(dataset, cat, limit=100), headers=headers).get_json()["items"]
    seen, cursor = [], 0
    while True:
        page = client.get(crops_url(dataset, cat, limit=1, cursor=cursor), headers=headers).get_json()
        assert page["total"] == 3 and len(page["items"]) == 1
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == whole
    assert seen[-1]["index"] == 1  # the first image's second crop, alone on its page


def test_the_default_page_is_twenty_crops(client, app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, type="detection")
    cat = create_label(dataset, name="cat", default_shape="box")
    image = imported_image(dataset, "many.jpg", image_bytes((16, 12), seed=3), owner=owner)
    replace_annotations(image, owner, [{"label_id": cat.id, "shape": "box", "geometry": geometry_box(i % 8, 0, 8, 12)} for i in range(21)])
    headers = token_for(owner)

    first = client.get(crops_url(dataset, cat), headers=headers).get_json()
    rest = client.get(crops_url(dataset, cat, cursor=first["next_cursor"]), headers=headers).get_json()

    assert len(first["items"]) == 20 and first["total"] == 21 and first["next_cursor"] == first["items"][-1]["id"]
    assert [item["index"] for item in first["items"] + rest["items"]] == list(range(21)) and rest["next_cursor"] is None


def test_a_missing_file_gives_a_null_crop_not_an_error(client, labeled):
    owner, dataset, cat, _, first, _ = labeled
    get_storage().delete(first.storage_key)
    items = client.get(crops_url(dataset, cat), headers=token_for(owner)).get_json()["items"]
    assert [item["crop_uri"] is None for item in items] == [False, True, True]


def test_a_label_without_regions_has_no_crops(client, labeled):
    owner, dataset, *_ = labeled
    empty = create_label(dataset, name="empty", default_shape="box")
    assert client.get(crops_url(dataset, empty), headers=token_for(owner)).get_json() == {"items": [], "total": 0, "next_cursor": None}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "cursor=-1", "cursor=x", f"cursor={2**64}"])
def test_a_bad_limit_or_cursor_is_a_422(client, labeled, query):
    owner, dataset, cat, *_ = labeled
    response = client.get(crops_url(dataset, cat) + "?" + query, headers=token_for(owner))
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] in ("invalid", "out_of_range") and error["message"]


def test_a_label_of_another_dataset_or_none_is_a_404(client, labeled):
    owner, dataset, *_ = labeled
    elsewhere = create_label(make_dataset(owner, name="Other"), name="cat", default_shape="box")
    headers = token_for(owner)
    for label_id in (elsewhere.id, 999_999):
        response = client.get(f"/api/v1/datasets/{dataset.id}/labels/{label_id}/crops", headers=headers)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


ROLES = {"admin": 200, "owner": 200, "manager": 200, "reviewer": 403, "labeler": 403, "outsider": 404}


@pytest.mark.parametrize("role", list(ROLES) + ["anonymous", "outsider of a public dataset"])
def test_only_those_who_may_export_get_crops(client, labeled, role):
    """Crops are the dataset's pixels in bulk: an export (SPEC section 4), not a view."""
    _, dataset, cat, _, first, _ = labeled
    if role == "outsider of a public dataset":
        dataset.public = True
        db.session.commit()
    user = actor(dataset, "outsider" if role.startswith("outsider") else role)
    if role == "labeler":
        assign(dataset, first.id, user)
    response = client.get(crops_url(dataset, cat), headers=token_for(user) if user else {})
    expected = {"anonymous": 401, "outsider of a public dataset": 403}.get(role) or ROLES[role]
    assert response.status_code == expected
    if expected != 200:
        assert response.get_json()["error"]["code"] in ("unauthorized", "forbidden", "not_found")
    else:
        assert response.get_json()["total"] == 3
