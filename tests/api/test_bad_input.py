"""Bad input: each gets a clear JSON error, and nothing stored before is lost (SPEC sections 7 and 9)."""

import struct
import zlib

import pytest

from core.extensions import db
from models import Upload
from tests.api.support import assert_intact, jpegs, post_files
from tests.factories import image_bytes, token_for


@pytest.fixture
def headers(world):
    return token_for(world.owner)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (the pixel data is a few bytes, not a real image)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _job(client, body, headers):
    return client.get(f"/api/v1/jobs/{body['job']['id']}", headers=headers).get_json()


def test_a_truncated_jpeg_is_stored_then_failed_by_the_job_as_corrupt(client, world, headers, run_jobs):
    whole = image_bytes(size=(640, 480), seed=5, quality=95)
    response = post_files(client, world.dataset.id, headers, [(whole[: len(whole) // 2], "half.jpg"), *jpegs(1)])
    assert response.status_code == 202 and len(response.get_json()["stored"]) == 2  # the header alone looks fine
    run_jobs()
    job = _job(client, response.get_json(), headers)
    assert job["status"] == "finished" and job["result"]["imported"] == 1 and job["result"]["failed"] == 1
    assert job["errors"][0]["item"] == "half.jpg" and "corrupt" in job["errors"][0]["reason"]
    assert client.get(f"/api/v1/datasets/{world.dataset.id}/images?search=half", headers=headers).get_json()["total"] == 0
    client.delete(f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id + 2}", headers=headers)  # the good one
    assert_intact(client, world, headers)


def test_a_text_file_named_jpg_is_refused_at_once(client, world, headers, run_jobs):
    text = (b"this is not a picture\n", "notes.jpg")
    mixed = post_files(client, world.dataset.id, headers, [text, *jpegs(1)])
    assert mixed.status_code == 202
    assert mixed.get_json()["failed"] == [{"name": "notes.jpg", "reason": "not an image, or an image format Loupe does not read"}]
    alone = post_files(client, world.dataset.id, headers, [text])
    assert alone.status_code == 422
    error = alone.get_json()["error"]
    assert error["code"] == "nothing_stored" and "notes.jpg: not an image" in error["message"]
    assert error["details"]["failed"] == [{"name": "notes.jpg", "reason": "not an image, or an image format Loupe does not read"}]
    # No job was started for it and no half-open batch is left behind (the world's upload, the mixed one).
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 2
    run_jobs()
    assert client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()["image_count"] == 3


def test_a_png_declaring_30000_by_30000_pixels_is_refused_as_a_bomb(client, world, headers):
    bomb = png_declaring(30000, 30000)
    assert len(bomb) < 200
    response = post_files(client, world.dataset.id, headers, [(bomb, "bomb.png")])
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert "30000x30000" in message and "limit" in message
    assert_intact(client, world, headers)


@pytest.mark.parametrize("form", [{}, {"split": "train"}, {"files": []}])
def test_an_empty_upload_is_refused_with_a_clear_message(client, world, headers, form):
    response = client.post(f"/api/v1/datasets/{world.dataset.id}/images", data=form, headers=headers, content_type="multipart/form-data")
    assert response.status_code == 422
    assert "at least one file in the multipart field 'files'" in response.get_json()["error"]["message"]
    assert client.get(f"/api/v1/jobs/{world.queued_job.id}", headers=headers).status_code == 200
    assert_intact(client, world, headers)


def test_a_file_part_without_a_name_counts_as_no_file(client, world, headers):
    response = post_files(client, world.dataset.id, headers, [(b"", "")])
    assert response.status_code == 422 and "'files'" in response.get_json()["error"]["message"]


def test_an_upload_as_json_is_refused(client, world, headers):
    response = client.post(f"/api/v1/datasets/{world.dataset.id}/images", json={"files": ["a.jpg"]}, headers=headers)
    assert response.status_code == 422 and "'files'" in response.get_json()["error"]["message"]


def test_an_unknown_split_stores_nothing(client, world, headers):
    response = post_files(client, world.dataset.id, headers, jpegs(1), split="holdout")
    assert response.status_code == 422 and "use one of train" in response.get_json()["error"]["message"]
    assert_intact(client, world, headers)


def test_unicode_and_overlong_file_names(client, world, headers, run_jobs):
    long_name = "x" * 296 + ".jpg"
    response = post_files(client, world.dataset.id, headers, [(image_bytes(seed=31), "臉書.jpg"), (image_bytes(seed=32), long_name)])
    assert response.status_code == 202
    body = response.get_json()
    assert [f["name"] for f in body["stored"]] == ["臉書.jpg"]
    assert len(body["failed"]) == 1 and "longer than 255 characters" in body["failed"][0]["reason"]
    run_jobs()
    found = client.get(f"/api/v1/datasets/{world.dataset.id}/images", query_string={"search": "臉書"}, headers=headers).get_json()
    assert [i["file_name"] for i in found["items"]] == ["臉書.jpg"]
    assert client.get(found["items"][0]["file_url"], headers=headers).data == image_bytes(seed=31)


def test_the_same_file_twice_is_imported_once(client, world, headers, run_jobs):
    content = image_bytes(seed=40)
    response = post_files(client, world.dataset.id, headers, [(content, "one.jpg"), (content, "two.jpg")])
    assert response.status_code == 202 and len(response.get_json()["stored"]) == 2
    run_jobs()
    job = _job(client, response.get_json(), headers)
    assert job["result"]["imported"] == 1 and job["result"]["duplicates"] == 1
    assert job["errors"][0]["item"] == "two.jpg" and "same content as one.jpg" in job["errors"][0]["reason"]
    assert client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()["image_count"] == 3
    again = post_files(client, world.dataset.id, headers, [(world.originals["a.jpg"], "copy-of-a.jpg")])
    run_jobs()
    assert "same content as a.jpg" in _job(client, again.get_json(), headers)["errors"][0]["reason"]
    assert client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()["image_count"] == 3


@pytest.mark.parametrize("body", ['{"name": "Dogs", "type": ', "{'name': 'Dogs'}", "\xff\xfe"])
def test_malformed_json_is_a_400_saying_so(client, world, headers, body):
    response = client.post("/api/v1/datasets", data=body.encode("latin-1"), headers=headers, content_type="application/json")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_json" and error["message"].startswith("The request body is not valid JSON")
    assert_intact(client, world, headers)
    assert client.get("/api/v1/datasets", headers=headers).get_json()["total"] == 1


def test_a_form_encoded_body_is_refused_rather_than_ignored(client, world, headers):
    response = client.patch(f"/api/v1/datasets/{world.dataset.id}", data={"name": "Renamed"}, headers=headers)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]["message"]
    assert_intact(client, world, headers)


@pytest.mark.parametrize(
    "body, says",
    [
        ({"name": "Dogs", "type": "boxes"}, "use one of classification, multilabel, detection, segmentation, anomaly"),
        ({"type": "detection"}, "name: Missing data for required field"),
        ({"name": "  ", "type": "detection"}, "needs a name"),
        ({"name": "Dogs", "type": "detection", "owner_id": 1}, "owner_id: Unknown field"),
        (["Dogs"], "Invalid input"),
    ],
)
def test_invalid_dataset_fields_are_a_422_naming_the_problem(client, world, headers, body, says):
    response = client.post("/api/v1/datasets", json=body, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid" and says in response.get_json()["error"]["message"]
    assert client.get("/api/v1/datasets", headers=headers).get_json()["total"] == 1


def test_patch_with_a_wrong_type_changes_nothing(client, world, headers):
    response = client.patch(f"/api/v1/datasets/{world.dataset.id}", json={"name": "Renamed", "archived": "maybe"}, headers=headers)
    assert response.status_code == 422 and "archived" in response.get_json()["error"]["message"]
    assert_intact(client, world, headers)


@pytest.mark.parametrize(
    "path, query",
    [
        ("images", {"limit": 0}), ("images", {"limit": 101}), ("images", {"limit": "ten"}),
        ("images", {"cursor": "abc"}), ("images", {"cursor": -1}), ("images", {"state": "done"}),
        ("", {"limit": 1000}), ("", {"offset": -5}), ("", {"sort": "size"}), ("", {"order": "up"}), ("", {"type": "boxes"}),
    ],
)
def test_bad_paging_and_filters_are_a_422(client, world, headers, path, query):
    url = f"/api/v1/datasets/{world.dataset.id}/images" if path else "/api/v1/datasets"
    response = client.get(url, query_string=query, headers=headers)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and next(iter(query)) in error["message"]


def test_a_wrong_token_is_a_401_and_changes_nothing(client, world, headers):
    bad = {"Authorization": "Token loupe_wrong"}
    assert post_files(client, world.dataset.id, bad, jpegs(1)).status_code == 401
    response = client.delete(f"/api/v1/datasets/{world.dataset.id}", headers=bad)
    assert response.status_code == 401 and "invalid or was revoked" in response.get_json()["error"]["message"]
    assert_intact(client, world, headers)


def test_unknown_api_paths_and_methods_answer_json(client, world, headers):
    missing = client.get("/api/v1/nothing-here", headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong_method = client.put(f"/api/v1/datasets/{world.dataset.id}", json={}, headers=headers)
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["message"]
