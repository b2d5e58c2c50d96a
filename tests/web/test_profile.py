"""Profile: API tokens (shown once, listed by prefix, revocable) and changing one's password."""

import pytest

from core.extensions import db
from models import ApiToken
from services.accounts import user_for_token
from tests.factories import PASSWORD, make_user
from tests.support import sign_in

HX = {"HX-Request": "true"}


@pytest.fixture
def me(client):
    user = make_user("me@example.com")
    sign_in(client, user)
    return user


def test_new_token_is_shown_once_and_then_only_its_prefix(client, me):
    response = client.post("/profile/tokens", data={"name": "training-ci"}, headers=HX)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    token = db.session.scalar(db.select(ApiToken))
    start = body.index('id="new-token"')
    secret = body[body.index(">", start) + 1 : body.index("</code>", start)]
    assert secret.startswith("loupe_") and len(secret) > 30
    assert user_for_token(secret).id == me.id
    assert token.token_hash != secret and token.token_hash == ApiToken.hash(secret), "only a hash is stored"

    later = client.get("/profile/").get_data(as_text=True)
    assert secret not in later
    assert f"{token.prefix}…" in later and 'data-token="training-ci"' in later


def test_token_needs_a_name(client, me):
    response = client.post("/profile/tokens", data={"name": "  "}, headers=HX)
    assert response.status_code == 422
    assert "Give the token a name" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 0


def test_revoked_token_disappears_and_stops_working(client, me):
    client.post("/profile/tokens", data={"name": "old"})
    token = db.session.scalar(db.select(ApiToken))
    body = client.get("/profile/").get_data(as_text=True)
    assert 'data-token="old"' in body
    response = client.post(f"/profile/tokens/{token.id}/revoke", headers=HX)
    assert response.status_code == 200
    assert 'data-token="old"' not in response.get_data(as_text=True)
    assert db.session.get(ApiToken, token.id).revoked_at is not None


def test_someone_elses_token_cannot_be_revoked(client, me):
    from services.accounts import create_token

    token, _ = create_token(make_user(), "theirs")
    assert client.post(f"/profile/tokens/{token.id}/revoke", headers=HX).status_code == 404
    assert db.session.get(ApiToken, token.id).revoked_at is None


def test_password_change_with_a_wrong_current_password_is_refused(client, me):
    response = client.post("/profile/password", data={"current": "not mine", "new": "a new password"}, headers=HX)
    assert response.status_code == 422
    assert "current password is wrong" in response.get_data(as_text=True)
    db.session.refresh(me)
    assert me.check_password(PASSWORD)


def test_password_change_with_a_short_new_password_is_refused(client, me):
    response = client.post("/profile/password", data={"current": PASSWORD, "new": "short"}, headers=HX)
    assert response.status_code == 422
    assert "at least 8 characters" in response.get_data(as_text=True)


def test_password_change_works_and_the_new_password_signs_in(client, new_client, me):
    response = client.post("/profile/password", data={"current": PASSWORD, "new": "a brand new password"}, headers=HX)
    assert response.status_code == 200 and "Password changed." in response.get_data(as_text=True)
    other = new_client()
    assert other.post("/login", data={"email": me.email, "password": PASSWORD}).status_code == 422
    assert other.post("/login", data={"email": me.email, "password": "a brand new password"}).status_code == 303
