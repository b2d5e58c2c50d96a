"""Sessions end for real: signing out, a password change, an admin's reset and a deactivation end
every session and every remember-me cookie of the user, in every browser (issue 7)."""

import pytest

from core.extensions import db
from models import User
from tests.factories import PASSWORD, make_user
from tests.support import location_path

HX = {"HX-Request": "true"}
NEW_PASSWORD = "a brand new password"


def sign_in_for_real(client, user: User, password: str = PASSWORD) -> dict[str, str]:
    """Sign in through the form with remember-me; returns the cookies a thief would copy."""
    response = client.post("/login", data={"email": user.email, "password": password, "remember": "1"})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return {name: client.get_cookie(name).value for name in ("session", "remember_token")}


def replay(new_client, cookies: dict[str, str]):
    """A fresh browser holding only the given cookies."""
    browser = new_client()
    for name, value in cookies.items():
        browser.set_cookie(name, value)
    return browser


def signed_in(browser) -> bool:
    page = browser.get("/datasets/")
    api = browser.get("/api/v1/me")
    assert (page.status_code == 200) == (api.status_code == 200), "the pages and the API agree on who is signed in"
    return page.status_code == 200


def sign_out_here(client, new_client, user):
    assert client.post("/logout").status_code == 303


def sign_out_elsewhere(client, new_client, user):
    other = new_client()
    sign_in_for_real(other, user)
    assert other.post("/logout").status_code == 303


def change_password_elsewhere(client, new_client, user):
    other = new_client()
    sign_in_for_real(other, user)
    response = other.post("/profile/password", data={"current": PASSWORD, "new": NEW_PASSWORD}, headers=HX)
    assert response.status_code == 200
    assert signed_in(other), "the browser that changed the password stays signed in"


def change_password_here(client, new_client, user):
    response = client.post("/profile/password", data={"current": PASSWORD, "new": NEW_PASSWORD}, headers=HX)
    assert response.status_code == 200


def admin_resets_the_password(client, new_client, user):
    admin = new_client()
    sign_in_for_real(admin, make_user("root@example.com", is_admin=True))
    assert admin.post(f"/admin/users/{user.id}", data={"action": "reset_password"}, headers=HX).status_code == 200


def admin_deactivates_then_reactivates(client, new_client, user):
    admin = new_client()
    sign_in_for_real(admin, make_user("root@example.com", is_admin=True))
    assert admin.post(f"/admin/users/{user.id}", data={"action": "deactivate"}, headers=HX).status_code == 200
    # Reactivated, the account works again, but only for a new sign-in.
    assert admin.post(f"/admin/users/{user.id}", data={"action": "activate"}, headers=HX).status_code == 200


ENDINGS = [sign_out_here, sign_out_elsewhere, change_password_here, change_password_elsewhere, admin_resets_the_password, admin_deactivates_then_reactivates]


@pytest.mark.parametrize("ending", ENDINGS, ids=[e.__name__.replace("_", " ") for e in ENDINGS])
@pytest.mark.parametrize("stolen", ["session", "remember_token", "both"])
def test_a_cookie_copied_before_the_session_ended_no_longer_signs_in(client, new_client, ending, stolen):
    user = make_user("victim@example.com")
    cookies = sign_in_for_real(client, user)
    copied = cookies if stolen == "both" else {stolen: cookies[stolen]}
    assert signed_in(replay(new_client, copied)), "the copied cookie works while the session lives"

    ending(client, new_client, user)

    thief = replay(new_client, copied)
    assert not signed_in(thief)
    assert location_path(thief.get("/profile/")) == "/login"
    assert thief.post("/profile/tokens", data={"name": "backdoor"}).status_code in (302, 303)
    assert thief.post("/api/v1/tokens", json={"name": "backdoor"}).status_code in (400, 401)
    db.session.expire_all()
    assert not db.session.get(User, user.id).tokens, "no token was made with the old cookie"


def test_signing_out_in_one_browser_signs_out_the_others(client, new_client):
    user = make_user()
    sign_in_for_real(client, user)
    laptop, phone = new_client(), new_client()
    sign_in_for_real(laptop, user)
    sign_in_for_real(phone, user)
    assert phone.post("/logout").status_code == 303
    assert not signed_in(client) and not signed_in(laptop) and not signed_in(phone)


def test_signing_in_again_after_signing_out_works(client, new_client):
    user = make_user()
    sign_in_for_real(client, user)
    client.post("/logout")
    sign_in_for_real(client, user)
    assert signed_in(client)
    assert signed_in(replay(new_client, {"remember_token": client.get_cookie("remember_token").value}))


def test_a_password_change_keeps_this_browser_remembered_with_a_new_cookie(client, new_client):
    user = make_user()
    old = sign_in_for_real(client, user)
    client.post("/profile/password", data={"current": PASSWORD, "new": NEW_PASSWORD}, headers=HX)
    renewed = client.get_cookie("remember_token").value
    assert renewed != old["remember_token"]
    assert signed_in(replay(new_client, {"remember_token": renewed}))
    assert not signed_in(replay(new_client, {"remember_token": old["remember_token"]}))


def test_an_other_users_sign_out_leaves_my_session_alone(client, new_client):
    me, colleague = make_user(), make_user()
    sign_in_for_real(client, me)
    theirs = new_client()
    sign_in_for_real(theirs, colleague)
    theirs.post("/logout")
    assert signed_in(client)


@pytest.mark.parametrize("forged", ["{id}", "{id}:", ":{gen}", "{id}:{gen}:0", "x:{gen}", "{id}:-1", "{id}:\u0660", "\u0661:{gen}", "9" * 30 + ":{gen}"])
def test_a_session_naming_a_malformed_or_pre_generation_identity_signs_nobody_in(client, forged):
    user = make_user()
    with client.session_transaction() as session:
        session["_user_id"] = forged.format(id=user.id, gen=user.session_generation)
    assert not signed_in(client)
