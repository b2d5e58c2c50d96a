"""CSRF protection with the production setting (WTF_CSRF_ENABLED=True)."""

import json
import re

import pytest

from core.extensions import db
from models import ApiToken, Dataset
from tests.conftest import make_app
from tests.factories import PASSWORD, make_user
from tests.support import IsolatedClient, hidden_csrf


@pytest.fixture
def csrf_client(app_ctx, backend):
    app = make_app(backend, WTF_CSRF_ENABLED=True, REDIS_URL=app_ctx.config["REDIS_URL"])
    return IsolatedClient(app, app.response_class, use_cookies=True)


def signed_in(client, user) -> str:
    """Sign in through the real form (token included); return the CSRF token of the next page."""
    token = hidden_csrf(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    return token


def test_form_post_without_a_token_is_refused_with_a_clear_message(csrf_client):
    user = make_user()
    response = csrf_client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "reload the page and try again" in body and 'data-code="csrf_failed"' in body


def test_form_post_with_the_token_from_the_page_is_accepted(csrf_client):
    user = make_user()
    signed_in(csrf_client, user)
    page = csrf_client.get("/datasets/new").get_data(as_text=True)
    response = csrf_client.post("/datasets/", data={"name": "Safe", "type": "detection", "csrf_token": hidden_csrf(page)})
    assert response.status_code == 303
    assert db.session.scalar(db.select(Dataset.name)) == "Safe"


def test_signed_in_form_post_without_a_token_changes_nothing(csrf_client):
    signed_in(csrf_client, make_user())
    response = csrf_client.post("/datasets/", data={"name": "Forged", "type": "detection"})
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(Dataset.id))) == 0


def test_htmx_post_with_the_header_from_body_hx_headers_is_accepted(csrf_client):
    signed_in(csrf_client, make_user())
    page = csrf_client.get("/profile/").get_data(as_text=True)
    headers = json.loads(re.search(r"<body hx-headers='([^']+)'", page).group(1))
    assert set(headers) == {"X-CSRFToken"}
    response = csrf_client.post("/profile/tokens", data={"name": "ci"}, headers={"HX-Request": "true", **headers})
    assert response.status_code == 200
    assert 'id="new-token"' in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 1


def test_htmx_post_without_the_header_gets_the_error_partial(csrf_client):
    signed_in(csrf_client, make_user())
    response = csrf_client.post("/profile/tokens", data={"name": "ci"}, headers={"HX-Request": "true"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "<html" not in body and "reload the page" in body
    assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 0


def test_a_token_from_another_session_is_refused(csrf_client, app_ctx, backend):
    user = make_user()
    other_app = make_app(backend, WTF_CSRF_ENABLED=True, REDIS_URL=app_ctx.config["REDIS_URL"])
    stranger = IsolatedClient(other_app, other_app.response_class, use_cookies=True)
    foreign_token = hidden_csrf(stranger.get("/login").get_data(as_text=True))
    response = csrf_client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": foreign_token})
    assert response.status_code == 400
