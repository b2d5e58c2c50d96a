"""Sign in and out, throttling, first-run setup and the open-redirect guard."""

from urllib.parse import urlsplit

import pytest

from core.extensions import db
from models import User
from tests.factories import PASSWORD, make_user
from tests.support import BAD_EMAILS, email_refusal, location_path


def test_user_signs_in_and_lands_on_the_datasets(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303
    assert location_path(response) == "/datasets/"
    assert client.get("/datasets/").status_code == 200


def test_sign_in_ignores_the_case_of_the_email(client):
    make_user("Mixed@Example.com".lower())
    response = client.post("/login", data={"email": "MIXED@example.COM", "password": PASSWORD})
    assert response.status_code == 303


def test_wrong_password_shows_a_message_and_keeps_the_email(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": "not it"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'id="login-error"' in body and "Wrong email or password" in body
    assert f'value="{user.email}"' in body
    assert location_path(client.get("/datasets/")) == "/login"


def test_unknown_email_gets_the_same_message_as_a_wrong_password(client):
    make_user()
    response = client.post("/login", data={"email": "nobody@example.com", "password": PASSWORD})
    assert response.status_code == 422
    assert "Wrong email or password" in response.get_data(as_text=True)


def test_sign_out_ends_the_session(client):
    user = make_user()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    response = client.post("/logout")
    assert response.status_code == 303 and location_path(response) == "/login"
    assert location_path(client.get("/datasets/")) == "/login"


def test_sign_in_is_throttled_after_five_failures_with_a_try_again_message(client):
    user = make_user()
    for _ in range(5):
        assert client.post("/login", data={"email": user.email, "password": "nope"}).status_code == 422
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 429
    body = response.get_data(as_text=True)
    assert "try again" in body.lower()
    assert location_path(client.get("/datasets/")) == "/login", "the right password must not get through while throttled"


def test_a_successful_sign_in_resets_the_failure_count_for_that_email(client):
    user = make_user()
    for _ in range(3):
        client.post("/login", data={"email": user.email, "password": "nope"})
    assert client.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 303


def test_setup_page_creates_the_first_admin_only_when_no_users_exist(client, new_client):
    assert location_path(client.get("/login")) == "/setup"
    assert client.get("/setup").status_code == 200
    response = client.post("/setup", data={"email": "first@example.com", "password": "long enough", "name": "First"})
    assert response.status_code == 303
    first = User.by_email("first@example.com")
    assert first is not None and first.is_admin
    assert client.get("/datasets/").status_code == 200, "the new admin is signed in"

    other = new_client()
    assert location_path(other.get("/setup")) == "/login"
    response = other.post("/setup", data={"email": "second@example.com", "password": "long enough"})
    assert location_path(response) == "/login"
    assert User.by_email("second@example.com") is None


def test_setup_with_a_short_password_says_why(client):
    response = client.post("/setup", data={"email": "first@example.com", "password": "short"})
    assert response.status_code == 422
    assert "at least 8 characters" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


@pytest.mark.parametrize("target", ["//evil.com", "//evil.com/datasets/", "https://evil.com/", "/\\evil.com", "javascript:alert(1)"])
def test_sign_in_refuses_to_redirect_off_site(client, target):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    # A browser reads "//x" and "/\\x" as another host; anything else starting with "/" stays here.
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location
    assert urlsplit(location).netloc == ""


def test_sign_in_follows_a_same_site_next(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "next": "/jobs/"})
    assert location_path(response) == "/jobs/"


def test_signed_in_visitor_of_the_login_page_is_not_sent_off_site(client):
    user = make_user()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    response = client.get("/login?next=//evil.com")
    assert response.status_code == 302
    assert "evil.com" not in response.headers["Location"]


def test_login_page_carries_next_into_the_form(client):
    make_user()
    body = client.get("/login?next=/jobs/").get_data(as_text=True)
    assert 'name="next" value="/jobs/"' in body


def test_deactivated_user_cannot_sign_in(client):
    user = make_user(active=False)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 422


def test_deactivated_users_open_session_stops_working(client):
    user = make_user()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    user.active = False
    db.session.commit()
    assert location_path(client.get("/datasets/")) == "/login"
    assert location_path(client.post("/profile/tokens", data={"name": "sneaky"})) == "/login"


def test_session_cookie_is_httponly_and_samesite_lax(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, "sign-in sets the session cookie"
    assert "HttpOnly" in cookies[0]
    assert "SameSite=Lax" in cookies[0]


def test_remember_me_cookie_is_httponly_and_samesite_lax(client):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD, "remember": "1"})
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token=")]
    assert cookies and "HttpOnly" in cookies[0] and "SameSite=Lax" in cookies[0]


# ---- no account enumeration by timing ---------------------------------------------------------


@pytest.fixture
def hash_work(monkeypatch):
    """Every password-hash derivation werkzeug runs (its scrypt calls), with its cost parameters."""
    import hashlib

    calls, real = [], hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append((kwargs.get("n"), kwargs.get("r"), kwargs.get("p")))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def _sign_in_from(client, address: str, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password}, environ_overrides={"REMOTE_ADDR": address})


@pytest.mark.parametrize("unknown", ["nobody@example.com", "NOBODY@example.com", "", "x" * 300, "not an email"])
def test_an_unknown_email_costs_the_same_hash_work_as_a_wrong_password(client, hash_work, unknown):
    user = make_user("known@example.com")
    hash_work.clear()  # making the user's hash is no part of signing in
    assert _sign_in_from(client, "10.1.0.1", user.email, "wrong password").status_code == 422
    wrong_password = list(hash_work)
    hash_work.clear()
    assert _sign_in_from(client, "10.1.0.2", unknown, "wrong password").status_code == 422
    assert wrong_password and hash_work == wrong_password


# ---- throttling by account and address together ----------------------------------------------


@pytest.fixture
def one_try(app_ctx, monkeypatch):
    """Small limits, so the tests run few (slow) hash checks: account and address together 1,
    the address alone 20, the account across addresses 4."""
    monkeypatch.setitem(app_ctx.config, "LOUPE_LOGIN_ATTEMPTS", 1)


def test_a_spray_from_the_office_address_does_not_lock_a_colleague_out(client, monkeypatch):
    # Limits of 2 for the account and address together, 40 for the address alone, 8 for the account.
    monkeypatch.setitem(client.application.config, "LOUPE_LOGIN_ATTEMPTS", 2)
    office = "192.0.2.10"
    colleague = make_user("colleague@example.com")
    others = [make_user(f"staff{i}@example.com") for i in range(14)]
    for user in [colleague, *others]:  # one guess at every account, the colleague's included
        assert _sign_in_from(client, office, user.email, "Winter2026!").status_code == 422
    response = _sign_in_from(client, office, colleague.email, PASSWORD)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]


def test_failures_on_an_account_from_one_address_do_not_lock_its_owner_out_elsewhere(client, one_try):
    user = make_user()
    assert _sign_in_from(client, "198.51.100.7", user.email, "guess").status_code == 422
    assert _sign_in_from(client, "198.51.100.7", user.email, PASSWORD).status_code == 429, "that address is stopped"
    assert _sign_in_from(client, "192.0.2.10", user.email, PASSWORD).status_code == 303


def test_one_account_guessed_from_many_addresses_is_stopped(client, one_try):
    user = make_user()
    for i in range(4):
        assert _sign_in_from(client, f"203.0.113.{i}", user.email, f"guess {i}").status_code == 422
    assert _sign_in_from(client, "203.0.113.99", user.email, PASSWORD).status_code == 429


def test_a_spray_across_many_accounts_from_one_address_is_stopped(client, one_try):
    for i in range(20):
        assert _sign_in_from(client, "198.51.100.66", f"guess{i}@example.com", "Winter2026!").status_code == 422
    response = _sign_in_from(client, "198.51.100.66", "guess99@example.com", "Winter2026!")
    assert response.status_code == 429 and "try again" in response.get_data(as_text=True).lower()


@pytest.mark.parametrize("email", BAD_EMAILS, ids=repr)
def test_setup_page_refuses_what_is_not_an_email_address(client, email):
    response = client.post("/setup", data={"email": email, "password": "long enough"})
    assert response.status_code == 422
    assert email_refusal(email) in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0
    assert location_path(client.get("/datasets/")) == "/login", "nobody was signed in"
