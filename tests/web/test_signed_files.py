"""Signed image links (GET /files/<token>): the exact bytes without signing in until they expire;
tampered, expired and orphaned links refused in the error shape."""

import time
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeSerializer

from core.extensions import db
from models import Dataset, Image
from services import signed_urls
from services.datasets import request_delete
from services.images import delete_images
from tests.factories import image_bytes, make_dataset, make_user
from tests.workers.helpers import upload_files

JSON = {"Accept": "application/json"}


@pytest.fixture
def stored(app_ctx, run_jobs):
    """A dataset with one imported JPEG named with a non-ASCII character."""
    owner = make_user()
    dataset = make_dataset(owner, type="classification")
    data = image_bytes((16, 12), seed=7)
    upload_files(dataset, owner, [("café.jpg", data)])
    run_jobs()
    image = db.session.scalar(db.select(Image).where(Image.dataset_id == dataset.id))
    return owner, dataset, image, data


def link(image, expires_in_s: int = 600) -> str:
    return urlsplit(signed_urls.image_url(image.dataset_id, image.storage_key, image.file_name, expires_in_s)).path


def test_a_link_downloads_the_exact_bytes_without_a_session(client, stored):
    _, _, image, data = stored
    response = client.get(link(image))
    assert response.status_code == 200
    assert response.data == data and response.mimetype == "image/jpeg"
    assert response.headers["Content-Disposition"] == "inline; filename=\"cafe.jpg\"; filename*=UTF-8''caf%C3%A9.jpg"
    max_age = int(response.headers["Cache-Control"].split("max-age=")[1])
    assert response.headers["Cache-Control"].startswith("private") and 590 <= max_age <= 600
    assert client.get(link(image), headers={"If-None-Match": response.headers["ETag"]}).status_code == 304


def test_links_are_absolute_without_a_request_from_the_configured_base_url(app_ctx, stored, monkeypatch):
    app = app_ctx
    _, _, image, _ = stored
    monkeypatch.setitem(app.config, "LOUPE_BASE_URL", "https://labels.example.com/")
    assert signed_urls.image_url(image.dataset_id, image.storage_key, image.file_name, 60).startswith("https://labels.example.com/files/")
    monkeypatch.setitem(app.config, "LOUPE_BASE_URL", "")
    assert signed_urls.image_url(image.dataset_id, image.storage_key, image.file_name, 60).startswith("http://localhost:5000/files/")
    monkeypatch.setitem(app.config, "SERVER_NAME", "loupe.internal:8080")
    monkeypatch.setitem(app.config, "PREFERRED_URL_SCHEME", "https")
    assert signed_urls.image_url(image.dataset_id, image.storage_key, image.file_name, 60).startswith("https://loupe.internal:8080/files/")


def test_an_expired_link_is_gone(client, stored):
    _, _, image, _ = stored
    response = client.get(link(image, expires_in_s=-1), headers=JSON)
    assert response.status_code == 410
    assert response.get_json()["error"]["code"] == "link_expired"
    page = client.get(link(image, expires_in_s=-1))
    assert page.status_code == 410 and 'data-code="link_expired"' in page.get_data(as_text=True)


def forged(payload: dict, secret: str = "test-secret", salt: str = "loupe.signed-file") -> str:
    return "/files/" + URLSafeSerializer(secret, salt=salt).dumps(payload)


def tampered_links(image) -> dict[str, str]:
    good = link(image)
    token = good.rsplit("/", 1)[1]
    payload = {"d": image.dataset_id, "k": image.storage_key, "n": image.file_name, "e": int(time.time()) + 600}
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return {
        "signature changed": "/files/" + flipped,
        "cut short": "/files/" + token[: len(token) // 2],
        "not a token": "/files/not-a-token",
        "another secret": forged(payload, secret="someone-else"),
        "another salt": forged(payload, salt="loupe.grid-undo"),
        "wrong types": forged({**payload, "d": str(image.dataset_id)}),
        "missing expiry": forged({key: value for key, value in payload.items() if key != "e"}),
        "not an object": forged([image.dataset_id, image.storage_key]),
    }


@pytest.mark.parametrize("kind", ["signature changed", "cut short", "not a token", "another secret", "another salt",
                                  "wrong types", "missing expiry", "not an object"])
def test_a_tampered_link_is_refused(client, stored, kind):
    _, _, image, _ = stored
    response = client.get(tampered_links(image)[kind], headers=JSON)
    assert response.status_code == 403
    assert response.get_json()["error"] == {"code": "bad_link", "message": "This download link is not valid: it was changed or cut short"}


def test_a_link_cannot_be_pointed_at_another_datasets_file(client, stored):
    owner, dataset, image, _ = stored
    other = make_dataset(owner, name="Other")
    response = client.get(link_for(other.id, image), headers=JSON)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def link_for(dataset_id: int, image) -> str:
    return urlsplit(signed_urls.image_url(dataset_id, image.storage_key, image.file_name, 600)).path


def test_a_link_stops_working_when_its_image_is_deleted_unless_a_version_keeps_it(client, stored, run_jobs):
    from services.versions import release_version

    owner, dataset, image, data = stored
    url = link(image)
    release_version(dataset, owner)
    run_jobs()
    delete_images(dataset, [image.id])
    assert client.get(url).data == data  # version V001 still holds the file

    other = make_dataset(owner, name="No versions")
    upload_files(other, owner, [("b.jpg", image_bytes((16, 12), seed=8))])
    run_jobs()
    lone = db.session.scalar(db.select(Image).where(Image.dataset_id == other.id))
    lone_url = link(lone)
    delete_images(other, [lone.id])
    response = client.get(lone_url, headers=JSON)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_a_deleted_datasets_links_stop_working(client, stored, run_jobs):
    owner, dataset, image, _ = stored
    url = link(image)
    request_delete(dataset, owner)
    # While the delete job waits, the dataset is already on its way out.
    assert client.get(url, headers=JSON).status_code == 404
    run_jobs()
    assert db.session.get(Dataset, dataset.id) is None
    assert client.get(url, headers=JSON).status_code == 404
