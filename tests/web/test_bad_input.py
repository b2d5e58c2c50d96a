"""No input gives a 5xx: ids, numbers, JSON and file names the pages and the API cannot hold (SPEC section 10).

The route tests walk the whole URL map, so a route added later is covered without being listed.
"""

import io
import re
from urllib.parse import unquote

import pytest
from werkzeug.routing import IntegerConverter

from core.extensions import db
from core.storage import get_storage
from models import ApiToken, ImportItem, Label, Upload
from tests.factories import image_bytes, make_dataset, make_user, token_for
from tests.support import insert_images, sign_in

# Past PostgreSQL INTEGER (most ids), past BIGINT, far past it, and past what int() parses (4,300 digits).
HUGE_IDS = [str(2**31), str(2**63), str(10**30), "9" * 5000]


@pytest.fixture
def admin(client):
    user = make_user(is_admin=True)
    sign_in(client, user)
    return user


def _int_rules(app):
    for rule in app.url_map.iter_rules():
        ints = [name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)]
        if ints:
            yield rule, ints


def _path(rule, values: dict) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: str(values.get(m.group(1), "x")), rule.rule)


def _assert_not_found_in_its_shape(response, path: str, htmx: bool = False):
    assert response.status_code == 404, (path, response.status_code, response.get_data(as_text=True)[:200])
    if path.startswith("/api/"):
        assert response.get_json()["error"]["code"] == "not_found"
    elif htmx:
        body = response.get_data(as_text=True)
        assert 'data-code="not_found"' in body and "<html" not in body
    else:
        body = response.get_data(as_text=True)
        assert "<html" in body and 'data-code="not_found"' in body


def test_every_int_route_is_covered_by_the_bounded_converter(app_ctx):
    from core.http import IdConverter

    rules = list(_int_rules(app_ctx))
    assert len(rules) > 40  # pages and API alike
    assert [rule.rule for rule, ints in rules if not all(isinstance(rule._converters[n], IdConverter) for n in ints)] == []


@pytest.mark.parametrize("huge", HUGE_IDS, ids=["2^31", "2^63", "10^30", "5000-digits"])
def test_an_id_beyond_its_column_in_any_path_is_a_404_for_every_method(client, admin, app_ctx, huge):
    dataset = make_dataset(admin)
    [image_id] = insert_images(dataset, 1)
    headers = token_for(admin)
    for rule, ints in _int_rules(app_ctx):
        # Every id huge, then only the inner ones (a real dataset and image, a huge label or revision...).
        variants = [{name: huge for name in ints}]
        if len(ints) > 1:
            real = {"dataset_id": dataset.id, "image_id": image_id}
            variants.append({name: real.get(name, huge) for name in ints} | {ints[-1]: huge})
        for values in variants:
            path = _path(rule, values)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                response = client.open(path, method=method, headers=headers, json={} if method != "GET" else None)
                _assert_not_found_in_its_shape(response, path)


def test_a_huge_id_from_htmx_gets_the_error_partial(client, admin):
    response = client.get(f"/datasets/{2**63}/images/", headers={"HX-Request": "true"})
    _assert_not_found_in_its_shape(response, "/datasets/", htmx=True)


def test_the_largest_wide_id_is_still_a_plain_not_found(client, admin):
    dataset = make_dataset(admin)
    response = client.get(f"/datasets/{dataset.id}/images/{2**63 - 1}")
    _assert_not_found_in_its_shape(response, "/datasets/")


@pytest.mark.parametrize(
    "value", [str(2**31), str(2**63), str(-(2**63) - 1), str(10**30), "9" * 5000], ids=["2^31", "2^63", "-2^63-1", "10^30", "5000-digits"]
)
def test_numbers_in_page_forms_and_queries_beyond_their_columns_are_a_422(client, admin, value):
    dataset = make_dataset(admin)
    [image_id] = insert_images(dataset, 1)
    base = f"/datasets/{dataset.id}"
    # Image ids and cursors are 64-bit: 2^31 is a fine (missing) image there.
    wide = [] if value == str(2**31) else [
        ("get", f"{base}/images/", {"query_string": {"cursor": value}}),
        ("post", f"{base}/images/bulk", {"data": {"image_ids": [value], "action": "delete"}}),
    ]
    requests = wide + [
        ("get", f"{base}/images/", {"query_string": {"limit": value}}),
        ("get", "/datasets/", {"query_string": {"page": value}}),
        ("post", f"{base}/images/classify", {"data": {"image_ids": [str(image_id)], "label_id": value}}),
        ("post", f"{base}/labels/reorder", {"data": {"label_ids": [value]}}),
        ("post", f"{base}/labels/copy", {"data": {"from_dataset_id": value}}),
        ("post", f"{base}/labels/merge", {"data": {"label_ids": [value], "name": "Merged"}}),
        ("get", f"{base}/images/{image_id}/region", {"query_string": {"x": value, "y": 0, "width": 1, "height": 1, "scale": 1}}),
    ]
    for method, url, kwargs in requests:
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code in (404, 422), (url, kwargs, response.status_code)
        assert "<html" in response.get_data(as_text=True)


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "\x00" * 300])
def test_nul_in_a_page_form_or_query_is_a_422_and_changes_nothing(client, admin, text):
    dataset = make_dataset(admin, name="Kept")
    base = f"/datasets/{dataset.id}"
    requests = [
        ("get", "/datasets/", {"query_string": {"search": text}}),
        ("get", f"{base}/images/", {"query_string": {"search": text}}),
        ("get", f"{base}/images/", {"query_string": {"tag": text}}),
        ("post", f"{base}/settings", {"data": {"name": text}}),
        ("post", f"{base}/labels/", {"data": {"name": text}}),
        ("post", "/admin/users", {"data": {"email": f"x{text}@example.com"}}),
        ("post", "/profile/tokens", {"data": {"name": text}}),
    ]
    for method, url, kwargs in requests:
        for headers in ({}, {"HX-Request": "true"}):
            response = getattr(client, method)(url, headers=headers, **kwargs)
            assert response.status_code == 422, (url, kwargs, response.status_code)
            assert "NUL character" in response.get_data(as_text=True)
    db.session.expire_all()
    assert dataset.name == "Kept"
    assert db.session.scalar(db.select(db.func.count(Label.id))) == 0
    assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 0


@pytest.mark.parametrize(
    "body, status",
    [
        ("[" * 1000 + "]" * 1000, 400),
        ("[" * 100_000 + "]" * 100_000, 400),
        ('{"revision": 0, "annotations": [], "x": ' + "9" * 5000 + "}", 422),
        ('{"revision": NaN, "annotations": []}', 422),
        ('{"revision": 1e400, "annotations": []}', 422),
        ('{"revision": 0, "annotations": [' + ",".join(["0"] * 1_000_001) + "]}", 422),
    ],
    ids=["nested-1000", "nested-100000", "5000-digits", "NaN", "1e400", "a-million-items"],
)
def test_a_json_body_a_page_route_cannot_hold_is_a_4xx_in_json(client, admin, body, status):
    dataset = make_dataset(admin)
    [image_id] = insert_images(dataset, 1)
    response = client.put(
        f"/datasets/{dataset.id}/images/{image_id}/annotations", data=body, content_type="application/json",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == status
    assert response.get_json()["error"]["code"] in ("invalid_json", "out_of_range", "too_many_items")


# ---- file names ----------------------------------------------------------------------------

UNSAFE_NAMES = ["a\r\nb.jpg", "nul\x00.jpg", "esc\x1b[31m.jpg", "photo\u202egpj.jpg", "tab\tand\x7fdel.jpg", "é" * 200 + "\r\n.jpg"]


def _multipart(name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body whose filename* carries any character (werkzeug's test client cannot send CR/LF)."""
    from urllib.parse import quote

    boundary = "loupe-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename*=UTF-8''{quote(name, safe='')}\r\n"
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("name", UNSAFE_NAMES, ids=["crlf", "nul", "escape", "rtl-override", "tab-del", "long-unicode-crlf"])
def test_control_characters_in_an_uploaded_name_are_stored_cleaned(client, admin, name):
    dataset = make_dataset(admin)
    begun = client.post(f"/datasets/{dataset.id}/upload/batches", headers={"Accept": "application/json"}).get_json()
    body, content_type = _multipart(name, image_bytes(seed=3))
    response = client.post(begun["files_url"], data=body, content_type=content_type, headers={"Accept": "application/json"})
    assert response.status_code == 200
    [outcome] = response.get_json()["files"]
    assert outcome["stored"] or "longer than" in outcome["reason"]
    stored = db.session.scalars(db.select(ImportItem.file_name).where(ImportItem.upload_id == begun["upload_id"])).one()
    assert not re.search("[\x00-\x1f\x7f\u202e]", stored) and not re.search("[\x00-\x1f\x7f\u202e]", outcome["name"])


# Names stored before uploads were cleaned (PostgreSQL never stored a NUL: that upload failed).
@pytest.mark.parametrize(
    "name", [n for n in UNSAFE_NAMES if "\x00" not in n] + ["soh\x01.jpg", 'quote"back\\slash%20.jpg', "臉書.jpg"],
    ids=["crlf", "escape", "rtl-override", "tab-del", "long-unicode-crlf", "soh", "quote-backslash-percent", "cjk"],
)
def test_a_download_of_any_stored_name_has_a_safe_content_disposition(client, admin, name):
    dataset = make_dataset(admin)
    png = image_bytes(fmt="PNG", seed=4)
    stored = get_storage().put_stream(io.BytesIO(png))
    [image_id] = insert_images(dataset, 1, file_name=name[:255], storage_key=stored.key, format="png")
    for url, kind in [
        (f"/datasets/{dataset.id}/images/{image_id}/file?download=1", "attachment"),
        (f"/datasets/{dataset.id}/images/{image_id}/file", "inline"),
        (f"/api/v1/datasets/{dataset.id}/images/{image_id}/file", "inline"),
    ]:
        response = client.get(url, headers=token_for(admin))
        assert response.status_code == 200 and response.data == png
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith(kind + ";") and disposition.isascii() and not re.search("[\x00-\x1f\x7f]", disposition)
        fallback = re.search(r'filename="([^"]*)"', disposition).group(1)
        assert fallback and "\\" not in fallback
        assert re.search(r"filename\*=UTF-8''[A-Za-z0-9%._~-]+$", disposition)
        # The UTF-8 name is the stored one, each control or bidi character shown as "_".
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == re.sub("[\x00-\x1f\x7f-\x9f\u202e]", "_", name[:255])
        assert response.headers["Content-Type"] == "image/png"


# ---- things that do not exist --------------------------------------------------------------


@pytest.mark.parametrize("upload_id", ["missing", "other-user", "other-dataset", "huge"])
def test_finishing_an_upload_batch_that_does_not_exist_is_a_404_in_each_shape(client, upload_id):
    owner = make_user()
    sign_in(client, owner)
    dataset = make_dataset(owner)
    other = make_dataset(owner, name="Other")
    ids = {
        "missing": 987654,
        "other-user": _upload(dataset, make_user()),
        "other-dataset": _upload(other, owner),
        "huge": 2**63,
    }
    url = f"/datasets/{dataset.id}/upload/batches/{ids[upload_id]}/finish"
    as_json = client.post(url, headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and as_json.get_json()["error"]["code"] == "not_found"
    _assert_not_found_in_its_shape(client.post(url, headers={"HX-Request": "true"}), url, htmx=True)
    _assert_not_found_in_its_shape(client.post(url), url)


def _upload(dataset, user) -> int:
    upload = Upload(dataset_id=dataset.id, user_id=user.id, split="unassigned")
    db.session.add(upload)
    db.session.commit()
    return upload.id


@pytest.mark.parametrize("token_id", [987654, 2**31, 2**63, "someone-elses"])
def test_revoking_a_token_that_does_not_exist_is_a_404_on_the_profile_page(client, admin, token_id):
    if token_id == "someone-elses":
        token_id = _token_of(make_user())
    url = f"/profile/tokens/{token_id}/revoke"
    _assert_not_found_in_its_shape(client.post(url, headers={"HX-Request": "true"}), url, htmx=True)
    _assert_not_found_in_its_shape(client.post(url), url)


def _token_of(user) -> int:
    from services.accounts import create_token

    token, _secret = create_token(user, "theirs")
    return token.id
