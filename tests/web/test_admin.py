"""Site admin: create users, deactivate, reset passwords, make admin; guard rails."""

import re

import pytest

from core.extensions import db
from models import User
from tests.factories import PASSWORD, make_user
from tests.support import BAD_EMAILS, email_refusal, sign_in

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(client):
    user = make_user("admin@example.com", is_admin=True)
    sign_in(client, user)
    return user


def act(client, user: User, action: str, **form):
    return client.post(f"/admin/users/{user.id}", data={"action": action, **form}, headers=HX)


def test_users_page_lists_every_account(client, admin):
    make_user("someone@example.com")
    body = client.get("/admin/users").get_data(as_text=True)
    assert 'data-user="admin@example.com"' in body and 'data-user="someone@example.com"' in body


def test_admin_creates_a_user_with_a_generated_password_shown_once(client, new_client, admin):
    response = client.post("/admin/users", data={"email": "New@Example.com", "name": "Newbie"}, headers=HX)
    assert response.status_code == 200
    password = re.search(r'id="created-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    user = User.by_email("new@example.com")
    assert user.email == "new@example.com" and user.display_name == "Newbie" and not user.is_admin
    assert password not in client.get("/admin/users").get_data(as_text=True)
    assert new_client().post("/login", data={"email": "new@example.com", "password": password}).status_code == 303


def test_admin_creates_an_admin_with_a_chosen_password(client, admin):
    client.post("/admin/users", data={"email": "boss@example.com", "password": "chosen password", "is_admin": "1"})
    user = User.by_email("boss@example.com")
    assert user.is_admin and user.check_password("chosen password")


def test_creating_a_user_with_a_taken_email_is_a_conflict(client, admin):
    make_user("taken@example.com")
    response = client.post("/admin/users", data={"email": "TAKEN@example.com"}, headers=HX)
    assert response.status_code == 409
    assert "already exists" in response.get_data(as_text=True)


def test_creating_a_user_with_a_bad_email_says_so(client, admin):
    response = client.post("/admin/users", data={"email": "not-an-email"}, headers=HX)
    assert response.status_code == 422
    assert "is not an email address" in response.get_data(as_text=True)


def test_deactivated_user_cannot_sign_in_and_can_be_reactivated(client, new_client, admin):
    user = make_user("leaver@example.com")
    assert act(client, user, "deactivate").status_code == 200
    assert db.session.get(User, user.id).active is False
    browser = new_client()
    response = browser.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 422
    act(client, user, "activate")
    assert browser.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 303


def test_deactivating_a_signed_in_user_ends_their_access(client, new_client, admin):
    user = make_user()
    browser = new_client()
    sign_in(browser, user)
    assert browser.get("/datasets/").status_code == 200
    act(client, user, "deactivate")
    assert browser.get("/datasets/").status_code == 302


def test_admin_resets_a_password_and_the_new_one_works(client, new_client, admin):
    user = make_user("forgetful@example.com")
    response = act(client, user, "reset_password")
    assert response.status_code == 200
    password = re.search(r'id="reset-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    browser = new_client()
    assert browser.post("/login", data={"email": user.email, "password": PASSWORD}).status_code == 422
    assert browser.post("/login", data={"email": user.email, "password": password}).status_code == 303


def test_admin_makes_a_user_admin_and_removes_it_again(client, admin):
    user = make_user()
    act(client, user, "make_admin")
    assert db.session.get(User, user.id).is_admin
    act(client, user, "remove_admin")
    assert not db.session.get(User, user.id).is_admin


def test_admin_cannot_deactivate_themselves(client, admin):
    response = act(client, admin, "deactivate")
    assert response.status_code == 422
    assert "cannot deactivate yourself" in response.get_data(as_text=True)
    assert db.session.get(User, admin.id).active


def test_admin_cannot_remove_their_own_admin_rights(client, admin):
    assert act(client, admin, "remove_admin").status_code == 422
    assert db.session.get(User, admin.id).is_admin


def test_unknown_user_or_action_is_refused(client, admin):
    assert client.post("/admin/users/999999", data={"action": "deactivate"}, headers=HX).status_code == 404
    assert act(client, make_user(), "delete_everything").status_code == 422


@pytest.mark.parametrize("method,url,data", [
    ("get", "/admin/users", None),
    ("post", "/admin/users", {"email": "x@example.com"}),
    ("post", "/admin/users/{victim}", {"action": "make_admin"}),
])
def test_non_admin_gets_403_on_every_admin_route(client, method, url, data):
    me = make_user()
    sign_in(client, me)
    response = getattr(client, method)(url.format(victim=me.id), data=data)
    assert response.status_code == 403
    assert not db.session.get(User, me.id).is_admin
    assert User.by_email("x@example.com") is None


def test_non_admin_sees_no_admin_link(client):
    sign_in(client, make_user())
    assert "/admin/users" not in client.get("/datasets/").get_data(as_text=True)


@pytest.mark.parametrize("email", BAD_EMAILS, ids=repr)
def test_admin_page_refuses_what_is_not_an_email_address(client, admin, email):
    response = client.post("/admin/users", data={"email": email, "password": "a fine password"}, headers=HX)
    assert response.status_code == 422
    assert email_refusal(email) in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(User.id))) == 1, "only the admin exists"


def test_an_admin_resetting_their_own_password_stays_signed_in_here_only(client, new_client, admin):
    elsewhere = new_client()
    elsewhere.post("/login", data={"email": admin.email, "password": PASSWORD})
    assert elsewhere.get("/admin/users").status_code == 200
    assert act(client, admin, "reset_password", password="my new admin password").status_code == 200
    assert client.get("/admin/users").status_code == 200
    assert elsewhere.get("/admin/users").status_code == 302
