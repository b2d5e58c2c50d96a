"""Bad input: each gets a clear JSON error, and nothing stored before is lost (SPEC sections 7 and 9)."""

import io
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
    # No job was started for it and no half-open batch is left behind: only the mixed one.
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 1
    run_jobs()
    assert client.get(f"/api/v1/datasets/{world.dataset.id}", headers=headers).get_json()["image_count"] == 3


def test_a_png_declaring_30000_by_30000_pixels_is_refused_as_a_bomb(client, world, headers):
    bomb = png_declaring(30000, 30000)
    assert len(bomb) < 200
    response = post_files(client, world.dataset.id, headers, [(bomb, "bomb.png")])
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert "decompression bomb: 900,000,000 pixels, limit 200,000,000" in message
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


# ---- numbers, nesting and sizes a request cannot carry (issue 7: no input gives a 5xx) -----

HUGE_INTEGERS = [str(2**63), str(-(2**63) - 1), str(10**30), "9" * 5000, "-" + "9" * 5000]
BAD_BODIES = {
    **{f"integer of {len(n)} characters {n[:3]}": ('{"name": "x", "revision": %s}' % n, 422) for n in HUGE_INTEGERS},
    "1e400": ('{"revision": 1e400}', 422),
    "-1e400": ('{"score": -1e400}', 422),
    "NaN": ('{"revision": NaN}', 422),
    "Infinity": ('{"revision": Infinity}', 422),
    "-Infinity": ('{"revision": -Infinity}', 422),
    "nested 1,000": ('{"a": ' + "[" * 1000 + "]" * 1000 + "}", 400),
    "nested 100,000": ("[" * 100_000 + "]" * 100_000, 400),
    "nested objects 50": ('{"a": ' * 50 + "1" + "}" * 50, 400),
    "a million items": ('{"image_ids": [' + ",".join(["1"] * 1_000_000) + "]}", 422),
    # PostgreSQL cannot store NUL in text: refused as the body is read, whatever field holds it.
    "NUL in a value": ('{"name": "a\\u0000b", "tags": ["x\\u0000"], "email": "a\\u0000@b.c"}', 422),
    "NUL in a key": ('{"name\\u0000": "x"}', 422),
    "NUL deep in a list": ('{"annotations": [{"text": "\\u0000"}], "names": ["ok", "\\u0000"]}', 422),
}


def _api_json_routes(app):
    """(rule, method, whether the OpenAPI document declares a JSON body) for every API write."""
    import re

    from core.extensions import api

    paths = api.spec.to_dict()["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            operations = paths.get(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), {})
            for method in sorted(rule.methods & {"POST", "PUT", "PATCH"}):
                body = operations.get(method.lower(), {}).get("requestBody", {}).get("content", {})
                yield rule, method, "application/json" in body


def _fill(rule, world) -> str:
    import re

    real = {"dataset_id": world.dataset.id, "image_id": world.image.id}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(real.get(m.group(1), 1)), rule.rule)


@pytest.mark.parametrize("body, status", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_body_no_route_can_hold_is_refused_by_every_json_route(client, world, headers, app_ctx, body, status):
    routes = list(_api_json_routes(app_ctx))
    assert sum(takes_json for _, _, takes_json in routes) >= 15
    for rule, method, takes_json in routes:
        path = _fill(rule, world)
        response = client.open(path, method=method, data=body, headers=headers, content_type="application/json")
        assert response.status_code < 500, (method, path, response.status_code)
        if not takes_json or response.status_code == 404:
            continue  # a route that reads no JSON body, or on an object the world lacks (label 1)
        assert response.status_code == status, (method, path, response.status_code, response.get_data(as_text=True)[:200])
        error = response.get_json()["error"]
        assert error["code"] in ("invalid_json", "out_of_range", "too_many_items", "nul_character") and error["message"]
    assert_intact(client, world, headers)


def _query_texts(app):
    from core.extensions import api

    for path, operations in api.spec.to_dict()["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own parameters, not an operation
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and parameter.get("schema", {}).get("type") == "string":
                    yield path, method, parameter["name"]


@pytest.mark.parametrize("value", ["a\x00b", "\x00", "tag\x00" * 10])
def test_nul_in_any_text_query_parameter_is_a_422_never_a_5xx(client, world, headers, app_ctx, value):
    import re

    found = list(_query_texts(app_ctx))
    assert {name for _, _, name in found} >= {"search", "tag"}
    for path, method, name in found:
        real = {"dataset_id": world.dataset.id, "image_id": world.image.id}
        url = re.sub(r"\{([^}]+)\}", lambda m: str(real.get(m.group(1), 1)), path)
        response = client.open(url, method=method.upper(), query_string={name: value}, headers=headers)
        assert response.status_code == 422, (url, name, response.status_code, response.get_data(as_text=True)[:200])
        assert response.get_json()["error"]["code"] == "nul_character"
    assert_intact(client, world, headers)


@pytest.mark.parametrize("segment", ["a%00b", "%00", "x%00%00y"])
def test_nul_in_a_text_path_segment_names_nothing(client, world, headers, segment):
    base = f"/api/v1/datasets/{world.dataset.id}"
    for method, path in [("GET", f"{base}/images/external/{segment}"), ("DELETE", f"{base}/tags/{segment}"), ("POST", f"{base}/tags/{segment}/rename")]:
        response = client.open(path, method=method, headers=headers, json={"name": "new"} if method == "POST" else None)
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.get_json()["error"]["code"] == "not_found"
    assert_intact(client, world, headers)


@pytest.mark.parametrize(
    "placement",
    [
        lambda n: {"revision": 0, "annotations": [{"label_id": n, "shape": "tag", "geometry": {}}]},
        lambda n: {"revision": 0, "annotations": [{"label_id": 1, "shape": "box", "geometry": {"x": n, "y": 0, "width": 1, "height": 1}}]},
        lambda n: {"revision": 0, "annotations": [{"label_id": 1, "shape": "tag", "geometry": {}, "score": n}]},
        lambda n: {"revision": n, "annotations": []},
    ],
    ids=["label_id", "geometry", "score", "revision"],
)
@pytest.mark.parametrize("number", ["9223372036854775808", "1" + "0" * 4999, "1e400"], ids=["2^63", "5000-digits", "1e400"])
def test_a_number_beyond_64_bits_or_a_float_anywhere_in_an_annotation_set_is_a_422(client, world, headers, placement, number):
    import json

    body = json.dumps(placement("__N__")).replace('"__N__"', number)
    url = f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}/annotations"
    response = client.put(url, data=body, headers=headers, content_type="application/json")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "out_of_range" and "out of range" in error["message"] or "larger than a float" in error["message"]


def test_a_label_attribute_default_and_position_beyond_64_bits_are_a_422(client, world, headers):
    url = f"/api/v1/datasets/{world.dataset.id}/labels"
    for body in (
        '{"name": "Car", "position": %d}' % 2**64,
        '{"name": "Car", "attributes": [{"name": "n", "type": "number", "default": %s}]}' % ("7" * 5000),
    ):
        response = client.post(url, data=body, headers=headers, content_type="application/json")
        assert response.status_code == 422 and response.get_json()["error"]["code"] == "out_of_range"
    assert client.get(url, headers=headers).get_json() == []


def _query_numbers(app_ctx):
    """(path, method, parameter, type) for every integer or number query parameter the document declares."""
    from core.extensions import api

    spec = api.spec.to_dict()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for parameter in operation.get("parameters", []):
                kind = parameter.get("schema", {}).get("type")
                if parameter.get("in") == "query" and kind in ("integer", "number"):
                    yield path, method, parameter["name"], kind


@pytest.mark.parametrize(
    "value", [*HUGE_INTEGERS, "1e400", "nan", "inf", "-inf"], ids=["2^63", "-2^63-1", "10^30", "5000-digits", "-5000-digits", "1e400", "nan", "inf", "-inf"]
)
def test_every_numeric_query_parameter_refuses_what_no_column_holds(client, world, headers, app_ctx, value):
    import re

    found = list(_query_numbers(app_ctx))
    assert {name for _, _, name, _ in found} >= {"cursor", "offset", "limit", "x", "y", "width", "height", "scale"}
    for path, method, name, kind in found:
        real = {"dataset_id": world.dataset.id, "image_id": world.image.id}
        url = "/api/v1" + re.sub(r"\{([^}]+)\}", lambda m: str(real.get(m.group(1), 1)), path.removeprefix("/api/v1"))
        required = {"x": 0, "y": 0, "width": 1, "height": 1, "scale": 1} if url.endswith("/region") else {}
        response = client.open(url, method=method.upper(), query_string={**required, name: value}, headers=headers)
        assert response.status_code in (404, 422), (url, name, value, response.status_code, response.get_data(as_text=True)[:200])
        assert response.get_json()["error"]["message"]


def test_a_cursor_or_offset_just_beyond_64_bits_names_the_parameter(client, world, headers):
    images = client.get(f"/api/v1/datasets/{world.dataset.id}/images", query_string={"cursor": 2**63}, headers=headers)
    assert images.status_code == 422 and images.get_json()["error"]["details"] == {"field": "cursor"}
    datasets = client.get("/api/v1/datasets", query_string={"offset": 2**64}, headers=headers)
    assert datasets.status_code == 422 and datasets.get_json()["error"]["details"] == {"field": "offset"}


@pytest.mark.parametrize("token_id", [987654, 2**31, 2**63, 10**30, "someone-elses"], ids=["missing", "2^31", "2^63", "10^30", "someone-elses"])
def test_revoking_a_token_that_does_not_exist_is_a_json_404(client, world, headers, token_id):
    if token_id == "someone-elses":
        from services.accounts import create_token

        token_id = create_token(world.candidate, "theirs")[0].id
    response = client.delete(f"/api/v1/tokens/{token_id}", headers=headers)
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    assert len(client.get("/api/v1/tokens", headers=headers).get_json()) == 1


@pytest.mark.parametrize(
    "name", ["a\r\nb.jpg", "nul\x00.jpg", "esc\x1b[2J.jpg", "photo\u202egpj.jpg", "bell\x07\x85.jpg"],
    ids=["crlf", "nul", "escape", "rtl-override", "bell-nel"],
)
def test_an_api_upload_stores_a_name_without_control_characters_and_serves_it_safely(client, world, headers, run_jobs, name):
    from urllib.parse import quote

    boundary = "loupe-api-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename*=UTF-8''{quote(name, safe='')}\r\n\r\n"
    ).encode() + image_bytes(seed=77) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        f"/api/v1/datasets/{world.dataset.id}/images", data=body, headers=headers, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 202, response.get_json()
    [stored] = response.get_json()["stored"]
    assert stored["name"].isprintable()
    run_jobs()
    items = client.get(f"/api/v1/datasets/{world.dataset.id}/images", headers=headers).get_json()["items"]
    [image] = [i for i in items if i["file_name"] == stored["name"]]
    served = client.get(image["file_url"], headers=headers)
    assert served.status_code == 200 and served.data == image_bytes(seed=77)
    disposition = served.headers["Content-Disposition"]
    assert disposition.startswith("inline;") and disposition.isascii() and disposition.isprintable()


def test_a_405_names_the_allowed_methods(client, world, headers):
    for method, url in [("PUT", f"/api/v1/datasets/{world.dataset.id}"), ("DELETE", "/api/v1/me"), ("POST", "/api/v1/jobs/x")]:
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert method not in allowed and "GET" in allowed


# Within 64 bits, beyond PostgreSQL INTEGER (the column of every id but an image's, of positions and
# revision numbers): such a number matches nothing or is refused, and never fails the query.
BEYOND_INTEGER = [2**31, 2**40, 2**63 - 1, -(2**31) - 1]


@pytest.mark.parametrize("number", BEYOND_INTEGER, ids=["2^31", "2^40", "2^63-1", "-2^31-1"])
def test_a_number_beyond_an_integer_column_in_a_body_is_a_4xx(client, world, headers, number):
    ds, img = f"/api/v1/datasets/{world.dataset.id}", f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}"
    label = client.post(f"{ds}/labels", json={"name": "Car"}, headers=headers).get_json()
    requests = [
        ("PUT", f"{img}/annotations", {"revision": number, "annotations": []}),
        ("PUT", f"{img}/annotations", {"revision": 0, "annotations": [{"label_id": number, "shape": "tag", "geometry": {}}]}),
        ("POST", f"{img}/submit", {"revision": number}),
        ("POST", f"{img}/skip", {"revision": number}),
        ("POST", f"{ds}/labels", {"name": "Bus", "position": number}),
        ("PATCH", f"{ds}/labels/{label['id']}", {"position": number}),
        ("POST", f"{ds}/labels/merge", {"label_ids": [number], "name": "Merged"}),
        ("POST", f"{ds}/labels/reorder", {"label_ids": [number]}),
        ("POST", f"{ds}/labels/copy", {"from_dataset_id": number}),
        ("POST", f"{ds}/images/delete", {"image_ids": [number]}),
    ]
    for method, url, body in requests:
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code in (404, 409, 422), (method, url, body, response.status_code)
        assert response.get_json()["error"]["message"]
    assert [l["name"] for l in client.get(f"{ds}/labels", headers=headers).get_json()] == ["Car"]


@pytest.mark.parametrize("value", BEYOND_INTEGER, ids=["2^31", "2^40", "2^63-1", "-2^31-1"])
def test_a_query_number_beyond_an_integer_column_is_never_a_5xx(client, world, headers, app_ctx, value):
    import re

    for path, method, name, kind in _query_numbers(app_ctx):
        real = {"dataset_id": world.dataset.id, "image_id": world.image.id}
        url = "/api/v1" + re.sub(r"\{([^}]+)\}", lambda m: str(real.get(m.group(1), 1)), path.removeprefix("/api/v1"))
        required = {"x": 0, "y": 0, "width": 1, "height": 1, "scale": 1} if url.endswith("/region") else {}
        response = client.open(url, method=method.upper(), query_string={**required, name: value}, headers=headers)
        # 200: a cursor or offset past the end is an empty page, an image id is 64-bit; 204: the
        # review queue has nothing after that image.
        assert response.status_code in (200, 204, 404, 422), (url, name, value, response.status_code)


def test_a_json_body_over_its_own_limit_is_a_413_before_it_is_parsed(client, world, headers):
    from core.http import MAX_JSON_BYTES

    body = b'{"name": "' + b"x" * MAX_JSON_BYTES + b'", "type": "detection"}'
    for method, url in [("POST", "/api/v1/datasets"), ("PATCH", f"/api/v1/datasets/{world.dataset.id}")]:
        response = client.open(url, method=method, data=body, headers=headers, content_type="application/json")
        assert response.status_code == 413
        assert "limit of 16 MB" in response.get_json()["error"]["message"]
    # An upload keeps the app-wide limit: the same size as multipart is read.
    response = client.post(
        f"/api/v1/datasets/{world.dataset.id}/images", data={"files": [(io.BytesIO(body), "big.jpg")]}, headers=headers,
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "nothing_stored"  # read, then judged
    assert_intact(client, world, headers)
