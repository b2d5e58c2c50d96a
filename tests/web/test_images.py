"""The image grid: filters, keyset paging with an infinite-scroll sentinel, bulk actions, details,
and how files and thumbnails are served."""

import html
import io
import re

import pytest

from core.extensions import db
from models import Dataset, Image, ImageState, Split
from services.images import folder_for
from tests.factories import image_bytes, make_dataset, make_user
from tests.support import insert_images, sign_in, tile_ids, upload

HX = {"HX-Request": "true"}


@pytest.fixture
def owner(client):
    user = make_user("owner@example.com", name="Olive Owner")
    sign_in(client, user)
    return user


@pytest.fixture
def dataset(owner):
    return make_dataset(owner, name="Grid")


def grid(client, dataset, query: str = "", headers=HX) -> str:
    response = client.get(f"/datasets/{dataset.id}/images/{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def sentinel_url(body: str) -> str | None:
    match = re.search(r'class="sentinel" hx-get="([^"]+)"', body)
    return html.unescape(match.group(1)) if match else None


# ---- filters -------------------------------------------------------------------------------


def test_grid_filters_by_split(client, dataset):
    ids = insert_images(dataset, 4)
    db.session.execute(db.update(Image).where(Image.id.in_(ids[:2])).values(split=Split.train))
    db.session.commit()
    assert tile_ids(grid(client, dataset, "?split=train")) == ids[:2]
    assert tile_ids(grid(client, dataset, "?split=unassigned")) == ids[2:]
    assert client.get(f"/datasets/{dataset.id}/images/?split=holdout", headers=HX).status_code == 422


def test_grid_filters_by_state(client, dataset):
    ids = insert_images(dataset, 3)
    db.session.execute(db.update(Image).where(Image.id == ids[1]).values(state=ImageState.to_review))
    db.session.commit()
    assert tile_ids(grid(client, dataset, "?state=to_review")) == [ids[1]]
    assert tile_ids(grid(client, dataset, "?state=unlabeled")) == [ids[0], ids[2]]


def test_grid_filters_by_folder(client, dataset):
    ids = insert_images(dataset, 3)
    folder_id = folder_for(dataset.id, "cats/indoor")
    db.session.execute(db.update(Image).where(Image.id == ids[0]).values(folder_id=folder_id))
    db.session.commit()
    page = grid(client, dataset, headers={})
    assert 'value="cats/indoor"' in page, "the folder filter lists the dataset's folders"
    assert tile_ids(grid(client, dataset, "?folder=cats/indoor")) == [ids[0]]
    assert tile_ids(grid(client, dataset, "?folder=dogs")) == []


def test_grid_searches_file_names(client, dataset):
    ids = insert_images(dataset, 3)
    db.session.execute(db.update(Image).where(Image.id == ids[2]).values(file_name="Tabby_cat.png"))
    db.session.commit()
    body = grid(client, dataset, "?search=tabby")
    assert tile_ids(body) == [ids[2]]
    assert tile_ids(grid(client, dataset, "?search=_cat")) == [ids[2]], "_ is matched literally"
    assert "No images match these filters." in grid(client, dataset, "?search=zebra")


def test_grid_is_a_page_normally_and_the_grid_partial_for_htmx(client, dataset):
    insert_images(dataset, 2)
    page = client.get(f"/datasets/{dataset.id}/images/")
    partial = client.get(f"/datasets/{dataset.id}/images/", headers=HX)
    assert "<html" in page.get_data(as_text=True)
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="grid"' in body
    assert "HX-Request" in partial.headers["Vary"]


# ---- keyset paging -------------------------------------------------------------------------


def test_grid_pages_250_images_by_100_with_a_sentinel_carrying_the_cursor(client, dataset):
    ids = insert_images(dataset, 250)
    first = grid(client, dataset, headers={})
    assert tile_ids(first) == ids[:100]
    assert "250 images" in first
    url = sentinel_url(first)
    assert url and f"cursor={ids[99]}" in url and 'hx-trigger="revealed"' in first

    assert url.startswith(f"/datasets/{dataset.id}/images/?")
    second = grid(client, dataset, "?" + url.split("?", 1)[1])
    assert "<html" not in second and 'id="grid"' not in second, "scrolling appends tiles, not a new grid"
    assert tile_ids(second) == ids[100:200]
    url = sentinel_url(second)
    assert f"cursor={ids[199]}" in url

    third = grid(client, dataset, "?" + url.split("?", 1)[1])
    assert tile_ids(third) == ids[200:]
    assert sentinel_url(third) is None


@pytest.mark.parametrize("position", [0, 99, 249])
def test_a_full_page_opened_at_a_cursor_shows_the_grid_bar_with_its_count(client, dataset, position):
    ids = insert_images(dataset, 250)
    response = client.get(f"/datasets/{dataset.id}/images/?cursor={ids[position]}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<html" in page and "250 images" in page
    assert tile_ids(page) == ids[position + 1:position + 101]


def test_grid_sentinel_keeps_the_filters(client, dataset):
    ids = insert_images(dataset, 150, split=Split.train)
    insert_images(dataset, 5, start=1000)
    first = grid(client, dataset, "?split=train")
    url = sentinel_url(first)
    assert "split=train" in url
    assert tile_ids(grid(client, dataset, "?" + url.split("?", 1)[1])) == ids[100:150]


def test_grid_refuses_a_bad_cursor(client, dataset):
    assert client.get(f"/datasets/{dataset.id}/images/?cursor=abc", headers=HX).status_code == 422
    assert client.get(f"/datasets/{dataset.id}/images/?cursor=-5", headers=HX).status_code == 422
    assert client.get(f"/datasets/{dataset.id}/images/?limit=5000", headers=HX).status_code == 422


# ---- bulk actions --------------------------------------------------------------------------


def test_bulk_set_split_moves_the_selected_images(client, dataset):
    ids = insert_images(dataset, 4)
    response = client.post(
        f"/datasets/{dataset.id}/images/bulk", data={"action": "set_split", "split": "validation", "image_ids": [str(i) for i in ids[:3]]},
        headers=HX,
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "imagesChanged"
    assert "Moved 3 images to validation" in response.get_data(as_text=True)
    splits = dict(db.session.execute(db.select(Image.id, Image.split)).all())
    assert [splits[i] for i in ids] == [Split.validation] * 3 + [Split.unassigned]


def test_bulk_set_split_to_an_unknown_split_changes_nothing(client, dataset):
    ids = insert_images(dataset, 2)
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": "set_split", "split": "bogus", "image_ids": [str(ids[0])]}, headers=HX)
    assert response.status_code == 422
    assert "Unknown split" in response.get_data(as_text=True)
    assert set(db.session.scalars(db.select(Image.split))) == {Split.unassigned}


def test_bulk_delete_removes_the_images_their_files_and_updates_the_counters(client, dataset, run_jobs):
    upload(client, dataset, [(image_bytes(seed=s), f"{s}.jpg") for s in (1, 2, 3)])
    run_jobs()
    from core.storage import get_storage

    images = db.session.scalars(db.select(Image).order_by(Image.id)).all()
    doomed = [images[0], images[1]]
    keys = [i.storage_key for i in doomed]
    shown = [i.id for i in images]
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": "delete", "image_ids": [str(i.id) for i in doomed]}, headers=HX)
    assert response.status_code == 200
    assert "Deleted 2 images" in response.get_data(as_text=True)
    assert 'id="grid-total" class="muted" data-total="1">1 image<' in response.get_data(as_text=True)
    # The grid redraws the tiles it showed: the deleted ones are left out.
    redrawn = client.post(f"/datasets/{dataset.id}/images/tiles", data={"image_ids": [str(i) for i in shown]}, headers=HX)
    assert tile_ids(redrawn.get_data(as_text=True)) == shown[2:]
    assert db.session.scalar(db.select(db.func.count(Image.id))) == 1
    refreshed = db.session.get(Dataset, dataset.id)
    assert refreshed.image_count == 1 and refreshed.total_bytes == images[2].byte_size
    assert not any(get_storage().exists(k) for k in keys)


def test_bulk_action_on_an_image_of_another_dataset_is_refused(client, owner, dataset):
    other = make_dataset(owner, name="Other")
    foreign = insert_images(other, 1)
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": "delete", "image_ids": [str(foreign[0])]}, headers=HX)
    assert response.status_code == 404
    assert db.session.scalar(db.select(db.func.count(Image.id))) == 1


def test_bulk_action_without_a_selection_says_so(client, dataset):
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": "delete"}, headers=HX)
    assert response.status_code == 422
    assert "Select at least one image" in response.get_data(as_text=True)


def test_unknown_bulk_action_is_refused(client, dataset):
    ids = insert_images(dataset, 1)
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": "explode", "image_ids": [str(ids[0])]}, headers=HX)
    assert response.status_code == 422


# ---- details and files ---------------------------------------------------------------------


def test_image_detail_shows_size_resolution_format_hash_and_uploader(client, dataset, run_jobs):
    content = image_bytes(size=(120, 80), fmt="PNG", seed=5)
    upload(client, dataset, [(content, "wide.png")])
    run_jobs()
    image = db.session.scalar(db.select(Image))
    body = client.get(f"/datasets/{dataset.id}/images/{image.id}").get_data(as_text=True)
    assert re.search(r'id="meta-resolution">120 × 80<', body)
    assert 'id="meta-format">PNG' in body
    assert f"{len(content):,} bytes" in body
    import hashlib

    assert f'id="meta-hash">{hashlib.sha256(content).hexdigest()}<' in body
    assert 'id="meta-uploader">Olive Owner<' in body
    assert 'id="meta-name">wide.png<' in body
    partial = client.get(f"/datasets/{dataset.id}/images/{image.id}", headers=HX).get_data(as_text=True)
    assert "<html" not in partial and 'id="image-detail"' in partial


def test_image_of_another_dataset_is_not_found_under_this_dataset(client, owner, dataset):
    other = make_dataset(owner, name="Other")
    foreign = insert_images(other, 1)[0]
    assert client.get(f"/datasets/{dataset.id}/images/{foreign}").status_code == 404


def test_original_file_is_served_with_its_type_and_as_a_download_on_request(client, dataset, run_jobs):
    content = image_bytes(seed=6)
    upload(client, dataset, [(content, "photo.jpg")])
    run_jobs()
    image = db.session.scalar(db.select(Image))
    response = client.get(f"/datasets/{dataset.id}/images/{image.id}/file")
    assert response.data == content and response.mimetype == "image/jpeg"
    download = client.get(f"/datasets/{dataset.id}/images/{image.id}/file?download=1")
    assert "attachment" in download.headers["Content-Disposition"] and "photo.jpg" in download.headers["Content-Disposition"]


def test_thumbnail_has_an_etag_immutable_caching_and_answers_304_when_unchanged(client, dataset, run_jobs):
    upload(client, dataset, [(image_bytes(size=(600, 400), seed=7), "big.jpg")])
    run_jobs()
    image = db.session.scalar(db.select(Image))
    url = f"/datasets/{dataset.id}/images/{image.id}/thumbnail"
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    etag = response.headers["ETag"]
    assert etag and image.storage_key in etag
    cache = response.headers["Cache-Control"]
    assert "immutable" in cache and "max-age=31536000" in cache and "private" in cache
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(url, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_missing_thumbnail_file_is_a_clean_404(client, dataset):
    image_id = insert_images(dataset, 1)[0]
    response = client.get(f"/datasets/{dataset.id}/images/{image_id}/thumbnail")
    assert response.status_code == 404
    assert "missing from storage" in response.get_data(as_text=True)


def test_a_lost_thumbnail_is_made_again_from_the_original(client, dataset, run_jobs):
    from PIL import Image as PILImage

    from core.storage import get_storage

    upload(client, dataset, [(image_bytes(size=(600, 400), seed=3), "lost.jpg")])
    run_jobs()
    image = db.session.scalar(db.select(Image))
    made_at_import = get_storage().read(image.thumbnail_key)
    get_storage().delete(image.thumbnail_key)
    response = client.get(f"/datasets/{dataset.id}/images/{image.id}/thumbnail")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == made_at_import == get_storage().read(image.thumbnail_key)
    assert PILImage.open(io.BytesIO(response.data)).size == (256, 171)


def test_a_lost_thumbnail_of_an_undecodable_original_is_a_clean_error(client, dataset):
    from core.storage import get_storage

    stored = get_storage().put_stream(io.BytesIO(b"not an image at all"))
    image_id = insert_images(dataset, 1)[0]
    db.session.execute(db.update(Image).where(Image.id == image_id).values(storage_key=stored.key))
    db.session.commit()
    response = client.get(f"/datasets/{dataset.id}/images/{image_id}/thumbnail", headers={"Accept": "application/json"})
    assert response.status_code == 422
    assert "cannot be decoded" in response.get_json()["error"]["message"]


def test_file_names_render_escaped_in_the_grid(client, dataset):
    ids = insert_images(dataset, 1)
    db.session.execute(db.update(Image).where(Image.id == ids[0]).values(file_name='"><img src=x onerror=alert(1)>.jpg'))
    db.session.commit()
    body = grid(client, dataset)
    assert "<img src=x onerror" not in body


def _lose_thumbnail(dataset, original: str) -> int:
    """An image whose thumbnail was lost and whose original is a real image, missing, or not an image."""
    from core.storage import get_storage

    image_id = insert_images(dataset, 1, start=90)[0]
    if original != "missing":
        content = image_bytes(size=(300, 200), seed=9) if original == "decodable" else b"not an image at all"
        stored = get_storage().put_stream(io.BytesIO(content))
        db.session.execute(db.update(Image).where(Image.id == image_id).values(storage_key=stored.key))
        db.session.commit()
    return image_id


@pytest.mark.parametrize("original,status", [("decodable", 200), ("missing", 404), ("undecodable", 422)])
def test_the_web_page_and_the_api_answer_a_lost_thumbnail_alike(client, owner, dataset, original, status):
    from core.storage import get_storage
    from tests.factories import token_for

    image_id = _lose_thumbnail(dataset, original)
    web = client.get(f"/datasets/{dataset.id}/images/{image_id}/thumbnail", headers={"Accept": "application/json"})
    key = db.session.get(Image, image_id).thumbnail_key
    made = get_storage().read(key) if status == 200 else None
    if made:
        get_storage().delete(key)
    api = client.get(f"/api/v1/datasets/{dataset.id}/images/{image_id}/thumbnail", headers=token_for(owner))
    assert (web.status_code, api.status_code) == (status, status)
    if status == 200:
        assert web.data == api.data == made and web.mimetype == api.mimetype == "image/jpeg"
    else:
        assert api.get_json()["error"]["message"] == web.get_json()["error"]["message"]
