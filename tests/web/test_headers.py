"""Security headers on every answer, and stored files served as the format Loupe decoded (issue 7)."""

import io
import re
from pathlib import Path

import pytest

from core.storage import get_storage
from tests.factories import image_bytes, make_dataset, make_user, token_for
from tests.support import insert_images, sign_in

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def signed_in(client):
    user = make_user(is_admin=True)
    sign_in(client, user)
    dataset = make_dataset(user)
    png = image_bytes(fmt="PNG", seed=9)
    key = get_storage().put_stream(io.BytesIO(png)).key
    # Named .jpg, decoded as PNG: the name must not decide the content type.
    [image_id] = insert_images(dataset, 1, file_name="really-a-png.jpg", storage_key=key, format="png")
    return user, dataset, image_id


def _answers(client, user, dataset, image_id):
    api = token_for(user)
    base = f"/datasets/{dataset.id}"
    return {
        "page": client.get(f"{base}/images/"),
        "partial": client.get(f"{base}/images/", headers={"HX-Request": "true"}),
        "error page": client.get("/datasets/987654"),
        "error partial": client.get("/datasets/987654", headers={"HX-Request": "true"}),
        "405": client.put("/datasets/"),
        "redirect": client.post(f"{base}/upload/", data={}),
        "api json": client.get("/api/v1/me", headers=api),
        "api error": client.get("/api/v1/datasets/987654", headers=api),
        "api 401": client.get("/api/v1/me"),
        "file": client.get(f"{base}/images/{image_id}/file"),
        "api file": client.get(f"/api/v1/datasets/{dataset.id}/images/{image_id}/file", headers=api),
        "static": client.get("/static/js/app.js"),
        "openapi": client.get("/api/v1/openapi.json"),
        "docs": client.get("/api/v1/docs"),
        "sign-in page": client.get("/login"),
    }


def test_every_answer_carries_nosniff_no_framing_and_a_referrer_policy(client, signed_in):
    for what, response in _answers(client, *signed_in).items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", what
        assert response.headers.get("X-Frame-Options") == "DENY", what
        assert response.headers.get("Referrer-Policy") == "same-origin", what
        assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", ""), what


def test_pages_allow_scripts_only_from_the_app_itself(client, signed_in):
    answers = _answers(client, *signed_in)
    for what in ("page", "partial", "error page", "sign-in page", "docs"):
        policy = dict(part.strip().split(" ", 1) for part in answers[what].headers["Content-Security-Policy"].split(";"))
        assert policy["script-src"] == "'self'", what
        assert policy["object-src"] == "'none'" and policy["base-uri"] == "'self'" and policy["form-action"] == "'self'"


def test_json_and_files_may_load_and_run_nothing(client, signed_in):
    answers = _answers(client, *signed_in)
    for what in ("api json", "api error", "file", "api file", "openapi"):
        policy = answers[what].headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'none'") and "sandbox" in policy, what


def test_no_template_has_an_inline_script_or_event_handler():
    # script-src 'self' blocks both; a JSON data block (type="application/json") is not run, so it may stay.
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


@pytest.mark.parametrize("fmt, media_type", [("PNG", "image/png"), ("WEBP", "image/webp"), ("GIF", "image/gif"), ("BMP", "image/bmp")])
def test_a_stored_file_is_served_as_the_format_it_was_decoded_as_not_its_name(client, fmt, media_type, run_jobs):
    from tests.support import upload

    user = make_user()
    sign_in(client, user)
    dataset = make_dataset(user)
    content = image_bytes(fmt=fmt, seed=12)
    assert upload(client, dataset, [(content, "named-like-a.jpg"), (image_bytes(seed=13), "page.html")]).status_code == 303
    run_jobs()
    api = token_for(user)
    items = {i["file_name"]: i for i in client.get(f"/api/v1/datasets/{dataset.id}/images", headers=api).get_json()["items"]}
    for name, expected in (("named-like-a.jpg", media_type), ("page.html", "image/jpeg")):
        item = items[name]
        for url in (item["file_url"], f"/datasets/{dataset.id}/images/{item['id']}/file", f"/datasets/{dataset.id}/images/{item['id']}/file?download=1"):
            response = client.get(url, headers=api)
            assert response.status_code == 200 and response.headers["Content-Type"] == expected, (name, url)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        thumbnail = client.get(item["thumbnail_url"], headers=api)
        assert thumbnail.headers["Content-Type"] == "image/jpeg"


@pytest.mark.browser
def test_the_pages_run_under_their_policy_without_a_violation(page):
    from tests.browser.test_labeling import add_images, add_label
    from tests.browser.test_upload_flow import sign_in as browser_sign_in

    user = make_user()
    dataset = make_dataset(user)
    add_label(dataset, "Car", "1", "box", "#e6194b", 0)
    [image_id] = add_images(dataset, 1)
    violations = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    browser_sign_in(page, user)
    for path, ready in [
        (f"/datasets/{dataset.id}/images/", "#grid"),
        (f"/datasets/{dataset.id}/images/{image_id}/label", "#lb-svg image"),  # drawn by the canvas script
        (f"/datasets/{dataset.id}/labels/", "table"),
        (f"/datasets/{dataset.id}/upload/", "form"),
        ("/api/v1/docs", ".opblock"),
    ]:
        page.goto(path)
        page.wait_for_selector(ready, state="attached")
    assert violations == []
