"""Images through the API with real files: upload, import job, list, get, update, delete, bytes."""

import io

import pytest
from PIL import Image as PILImage

from core.extensions import db
from models import Image
from tests.api.support import jpegs, post_files
from tests.factories import image_bytes, token_for


@pytest.fixture
def headers(world):
    return token_for(world.owner)


def test_upload_three_files_then_the_job_imports_them(client, world, headers, run_jobs):
    files = jpegs(3)
    response = post_files(client, world.dataset.id, headers, files, split="train", folder="line-3/2024")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert [f["name"] for f in body["stored"]] == [name for _, name in files]
    assert [f["size"] for f in body["stored"]] == [len(content) for content, _ in files]
    assert body["failed"] == [] and body["job"]["status"] == "queued" and body["job"]["kind"] == "import"
    run_jobs()
    job = client.get(f"/api/v1/jobs/{body['job']['id']}", headers=headers).get_json()
    assert job["status"] == "finished" and job["done"] == job["total"] == 3 and job["percent"] == 100
    assert job["result"]["imported"] == 3 and job["errors"] == [] and job["dataset_id"] == world.dataset.id
    assert job["started_at"] and job["finished_at"]
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images?folder=line-3/2024", headers=headers).get_json()
    assert listing["total"] == 3 and listing["next_cursor"] is None
    assert {(i["file_name"], i["split"], i["folder"], i["width"], i["height"]) for i in listing["items"]} == {
        (name, "train", "line-3/2024", 64, 48) for _, name in files
    }
    for (content, _), item in zip(files, listing["items"]):
        assert client.get(item["file_url"], headers=headers).data == content


def test_images_page_by_cursor(client, world, headers, run_jobs):
    post_files(client, world.dataset.id, headers, jpegs(3))
    run_jobs()
    url = f"/api/v1/datasets/{world.dataset.id}/images"
    seen, cursor = [], None
    while True:
        page = client.get(url, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=headers).get_json()
        assert page["total"] == 5 and len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(set(seen)) == 5


def test_image_list_filters_parse_like_the_grid(client, world, headers):
    """The API reads its filters with the grid's parser (ImageFilter.from_args): same trimming, same limits."""
    url = f"/api/v1/datasets/{world.dataset.id}/images"
    assert client.get(url, query_string={"search": "  a.jpg  "}, headers=headers).get_json()["total"] == 1
    too_many = client.get(url, query_string={"limit": 101}, headers=headers)
    assert too_many.status_code == 422 and "limit" in too_many.get_json()["error"]["message"]
    assert client.get(url, query_string={"split": "nonsense"}, headers=headers).status_code == 422


def test_get_an_image_by_id_and_by_external_id(client, world, headers):
    ds = f"/api/v1/datasets/{world.dataset.id}"
    by_id = client.get(f"{ds}/images/{world.image.id}", headers=headers).get_json()
    assert by_id["file_name"] == "a.jpg" and by_id["external_id"] == "ext-1" and by_id["format"] == "jpeg"
    assert by_id["tags"] == [] and by_id["folder"] is None and by_id["state"] == "unlabeled"
    assert client.get(f"{ds}/images/external/ext-1", headers=headers).get_json() == by_id
    missing = client.get(f"{ds}/images/external/nope", headers=headers)
    assert missing.status_code == 404 and "nope" in missing.get_json()["error"]["message"]


def test_patch_split_tags_and_folder(client, world, headers):
    url = f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}"
    response = client.patch(url, json={"split": "validation", "tags": ["night", "blurry", "night"], "folder": "cam/1"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["split"] == "validation" and body["tags"] == ["blurry", "night"] and body["folder"] == "cam/1"
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images?tag=night&split=validation", headers=headers).get_json()
    assert [i["id"] for i in listing["items"]] == [world.image.id]
    cleared = client.patch(url, json={"folder": None, "tags": []}, headers=headers).get_json()
    assert cleared["folder"] is None and cleared["tags"] == [] and cleared["split"] == "validation"
    bad = client.patch(url, json={"split": "holdout"}, headers=headers)
    assert bad.status_code == 422 and "train" in bad.get_json()["error"]["message"]
    assert client.get(url, headers=headers).get_json()["split"] == "validation"


def test_delete_one_image(client, world, headers):
    url = f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}"
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    dataset = client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()
    assert dataset["image_count"] == 1 and dataset["total_bytes"] == len(world.originals["b.jpg"])


def test_delete_many_by_ids_and_by_names(client, world, headers, run_jobs):
    post_files(client, world.dataset.id, headers, jpegs(3))
    run_jobs()
    ids = db.session.scalars(db.select(Image.id).where(Image.file_name.like("photo-%")).order_by(Image.id)).all()
    url = f"/api/v1/datasets/{world.dataset.id}/images/delete"
    assert client.post(url, json={"image_ids": ids[:2]}, headers=headers).get_json() == {"deleted": 2}
    assert client.post(url, json={"names": ["photo-12.jpg", "never.jpg"]}, headers=headers).get_json() == {"deleted": 1}
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images", headers=headers).get_json()
    assert sorted(i["file_name"] for i in listing["items"]) == ["a.jpg", "b.jpg"] and listing["total"] == 2
    nothing = client.post(url, json={}, headers=headers)
    assert nothing.status_code == 422 and "image_ids" in nothing.get_json()["error"]["message"]
    unknown = client.post(url, json={"image_ids": [world.image.id, 10**9]}, headers=headers)
    assert unknown.status_code == 404 and client.get(f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}", headers=headers).status_code == 200


def test_file_bytes_thumbnail_and_etag(client, world, headers):
    base = f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}"
    original = client.get(base + "/file", headers=headers)
    assert original.status_code == 200 and original.data == world.originals["a.jpg"] and original.mimetype == "image/jpeg"
    thumb = client.get(base + "/thumbnail", headers=headers)
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:2] == b"\xff\xd8"
    assert PILImage.open(io.BytesIO(thumb.data)).format == "JPEG"
    for response, path in ((original, "/file"), (thumb, "/thumbnail")):
        etag = response.headers["ETag"]
        again = client.get(base + path, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize(
    "name,fmt,size",
    [("wide.jpg", "JPEG", (600, 400)), ("tall.png", "PNG", (120, 300)), ("tiny.webp", "WEBP", (20, 10)), ("square.bmp", "BMP", (256, 256))],
)
def test_a_lost_thumbnail_is_made_again_from_the_original_as_the_web_page_does(client, world, headers, run_jobs, name, fmt, size):
    from core.storage import get_storage
    from tests.support import sign_in

    assert post_files(client, world.dataset.id, headers, [(image_bytes(size=size, fmt=fmt, seed=41), name)]).status_code == 202
    run_jobs()
    image = db.session.scalar(db.select(Image).where(Image.file_name == name))
    made_at_import = get_storage().read(image.thumbnail_key)
    get_storage().delete(image.thumbnail_key)  # storage restored without its derived files

    api = client.get(f"/api/v1/datasets/{world.dataset.id}/images/{image.id}/thumbnail", headers=headers)
    assert api.status_code == 200 and api.mimetype == "image/jpeg"
    assert api.data == made_at_import == get_storage().read(image.thumbnail_key)
    assert max(PILImage.open(io.BytesIO(api.data)).size) == min(256, max(size))

    get_storage().delete(image.thumbnail_key)
    sign_in(client, world.owner)
    assert client.get(f"/datasets/{world.dataset.id}/images/{image.id}/thumbnail").data == made_at_import
