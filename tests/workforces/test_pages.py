"""The workforce pages: the list, a workforce's members and invite links, the invite page, a dataset's attached workforces."""

from datetime import timedelta

import pytest

from core.extensions import db
from models import DatasetWorkforce, User, Workforce, WorkforceInvite, WorkforceRole
from models.base import utcnow
from services import workforces as service
from tests.factories import make_dataset, make_user
from tests.support import location_path, member, sign_in
from tests.workforces.support import member_row, team

HX = {"HX-Request": "true"}


@pytest.fixture
def owner(app_ctx):
    user = make_user("owner@example.com", name="Olga")
    user.dataset = make_dataset(user, name="Cats")
    return user


def test_the_nav_links_to_the_workforces_page(client, owner):
    sign_in(client, owner)
    assert 'href="/workforces/"' in client.get("/datasets/").get_data(as_text=True)


def test_an_owner_creates_a_workforce_from_the_list(client, owner):
    sign_in(client, owner)
    page = client.get("/workforces/").get_data(as_text=True)
    assert 'id="create-workforce"' in page and "You are in no workforce yet." in page
    created = client.post("/workforces/", data={"name": "Night shift"})
    assert created.status_code == 303
    workforce = db.session.scalar(db.select(Workforce))
    assert location_path(created) == f"/workforces/{workforce.id}"
    listed = client.get("/workforces/").get_data(as_text=True)
    assert 'data-workforce="Night shift"' in listed and "team_admin" in listed


@pytest.mark.parametrize("name, status, message", [("", 422, "needs a name"), ("x" * 121, 422, "longer than 120"), ("night SHIFT", 409, "already exists")])
def test_a_bad_name_on_the_list_page_says_why_and_keeps_what_was_typed(client, owner, name, status, message):
    service.create_workforce("Night shift", by=owner)
    sign_in(client, owner)
    response = client.post("/workforces/", data={"name": name})
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert message in body and 'role="alert"' in body
    assert db.session.scalar(db.select(db.func.count()).select_from(Workforce)) == 1


def test_a_labeler_sees_their_workforce_but_no_create_form(client, owner):
    workforce, users = team(owner, ann="labeler")
    sign_in(client, users["ann"])
    page = client.get("/workforces/").get_data(as_text=True)
    assert 'data-workforce="Night shift"' in page and 'id="create-workforce"' not in page
    show = client.get(f"/workforces/{workforce.id}").get_data(as_text=True)
    assert "ann-" in show and 'id="add-workforce-member"' not in show and 'id="invite-form"' not in show
    assert client.post("/workforces/", data={"name": "Mine"}).status_code == 403


def test_the_workforce_page_shows_members_datasets_and_forms_to_its_manager(client, owner):
    workforce, users = team(owner, ann="labeler")
    service.attach(owner.dataset, workforce.id, by=owner)
    sign_in(client, owner)
    page = client.get(f"/workforces/{workforce.id}").get_data(as_text=True)
    for part in ('id="workforce-members"', 'data-member="owner@example.com"', f'data-member="{users["ann"].email}"',
                 'id="add-workforce-member"', 'id="invite-form"', f'/datasets/{owner.dataset.id}"', 'id="delete-workforce"'):
        assert part in page, part


def test_members_are_added_changed_and_removed_through_the_partial(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    ann = make_user("ann@example.com")
    sign_in(client, owner)
    added = client.post(f"/workforces/{workforce.id}/members", data={"email": "ann@example.com", "role": "reviewer"}, headers=HX)
    assert added.status_code == 200 and added.headers["HX-Trigger"] == "workforceMembersChanged"
    body = added.get_data(as_text=True)
    assert body.startswith('<div id="workforce-members">') and 'data-member="ann@example.com"' in body and "<html" not in body
    row = member_row(workforce, ann)
    changed = client.post(f"/workforces/{workforce.id}/members/{row.id}", data={"role": "team_admin"}, headers=HX)
    assert changed.status_code == 200
    db.session.refresh(row)
    assert row.role == WorkforceRole.team_admin
    removed = client.post(f"/workforces/{workforce.id}/members/{row.id}/delete", headers=HX)
    assert removed.status_code == 200 and 'data-member="ann@example.com"' not in removed.get_data(as_text=True)


@pytest.mark.parametrize("form, status, message", [
    ({"email": "nobody@example.com", "role": "labeler"}, 422, "No user with the email"),
    ({"email": "gone@example.com", "role": "labeler"}, 422, "deactivated"),
    ({"email": "ann@example.com", "role": "owner"}, 422, "Unknown team role"),
    ({"email": "", "role": "labeler"}, 422, "Give the email"),
    ({"email": "owner@example.com", "role": "labeler"}, 409, "already a member"),
])
def test_bad_members_get_the_partial_with_the_reason(client, owner, form, status, message):
    make_user("ann@example.com")
    make_user("gone@example.com", active=False)
    workforce = service.create_workforce("Team", by=owner)
    sign_in(client, owner)
    response = client.post(f"/workforces/{workforce.id}/members", data=form, headers=HX)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert message in body and 'role="alert"' in body and 'id="workforce-members"' in body and "HX-Trigger" not in response.headers


def test_the_last_team_admin_is_kept_and_the_partial_says_so(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    row = member_row(workforce, owner)
    sign_in(client, owner)
    for url, data in ((f"/workforces/{workforce.id}/members/{row.id}", {"role": "labeler"}), (f"/workforces/{workforce.id}/members/{row.id}/delete", {})):
        response = client.post(url, data=data, headers=HX)
        assert response.status_code == 409 and "keeps a team admin" in response.get_data(as_text=True)
    # Without HTMX, the page itself answers with the reason.
    page = client.post(f"/workforces/{workforce.id}/members/{row.id}/delete")
    assert page.status_code == 409 and "<html" in page.get_data(as_text=True) and "keeps a team admin" in page.get_data(as_text=True)


def test_an_invite_link_is_shown_once_with_a_copy_button(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    sign_in(client, owner)
    response = client.post(f"/workforces/{workforce.id}/invites", data={"role": "reviewer", "hours": "24"}, headers=HX)
    assert response.status_code == 201
    body = response.get_data(as_text=True)
    assert 'id="invite-url"' in body and 'data-copy="#invite-url"' in body and "reviewer" in body
    link = body.split('id="invite-url" class="secret">', 1)[1].split("<", 1)[0]
    assert "/invites/" in link
    invite = db.session.scalar(db.select(WorkforceInvite))
    assert invite.role == WorkforceRole.reviewer and abs(invite.expires_at - utcnow() - timedelta(hours=24)) < timedelta(minutes=1)
    assert link.rsplit("/", 1)[1] not in client.get(f"/workforces/{workforce.id}").get_data(as_text=True)


@pytest.mark.parametrize("form, message", [
    ({"role": "labeler", "hours": "0"}, "1 to 720 hours"), ({"role": "labeler", "hours": "721"}, "1 to 720 hours"),
    ({"role": "labeler", "hours": "soon"}, "1 to 720 hours"), ({"role": "labeler", "hours": "9" * 400}, "1 to 720 hours"),
    ({"role": "boss", "hours": "1"}, "Unknown team role"), ({}, "Unknown team role"),
])
def test_a_bad_invite_gets_the_form_back_with_the_reason(client, owner, form, message):
    workforce = service.create_workforce("Team", by=owner)
    sign_in(client, owner)
    response = client.post(f"/workforces/{workforce.id}/invites", data=form, headers=HX)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(WorkforceInvite)) == 0


def _invite(owner, role="labeler"):
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, role, by=owner)
    return workforce, invite, token


def test_an_anonymous_visitor_signs_up_through_the_invite_page_and_lands_on_the_workforce(client, owner):
    workforce, invite, token = _invite(owner)
    page = client.get(f"/invites/{token}")
    assert page.status_code == 200 and 'id="signup-form"' in page.get_data(as_text=True) and "Join Team" in page.get_data(as_text=True)
    response = client.post(f"/invites/{token}", data={"email": "nia@example.com", "display_name": "Nia", "password": "long enough"})
    assert response.status_code == 303 and location_path(response) == f"/workforces/{workforce.id}"
    landed = client.get(f"/workforces/{workforce.id}")
    assert landed.status_code == 200 and 'data-member="nia@example.com"' in landed.get_data(as_text=True)
    again = client.get(f"/invites/{token}")
    assert again.status_code == 410 and "already been used" in again.get_data(as_text=True)


@pytest.mark.parametrize("form, message", [
    ({"email": "bad", "display_name": "Nia", "password": "long enough"}, "is not an email address"),
    ({"email": "nia@example.com", "display_name": "", "password": "long enough"}, "Give your name"),
    ({"email": "nia@example.com", "display_name": "Nia", "password": "short"}, "at least 8 characters"),
    ({"email": "owner@example.com", "display_name": "Nia", "password": "long enough"}, "already exists"),
    ({}, "is not an email address"),
])
def test_a_bad_sign_up_gets_the_form_back_with_the_reason_and_creates_nothing(client, owner, form, message):
    _, invite, token = _invite(owner)
    users = db.session.scalar(db.select(db.func.count()).select_from(User))
    response = client.post(f"/invites/{token}", data=form)
    body = response.get_data(as_text=True)
    assert response.status_code in (409, 422) and message in body and 'id="signup-form"' in body
    assert "long enough" not in body  # a password is never sent back
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == users
    db.session.refresh(invite)
    assert invite.used_at is None


def test_a_signed_in_user_joins_with_a_button(client, owner):
    workforce, invite, token = _invite(owner, "reviewer")
    bob = make_user()
    sign_in(client, bob)
    page = client.get(f"/invites/{token}").get_data(as_text=True)
    assert 'id="join-button"' in page and 'id="signup-form"' not in page
    response = client.post(f"/invites/{token}")
    assert response.status_code == 303 and location_path(response) == f"/workforces/{workforce.id}"
    assert member_row(workforce, bob).role == WorkforceRole.reviewer


def test_a_member_opening_the_link_is_told_so_and_it_stays_unused(client, owner):
    _, invite, token = _invite(owner)
    sign_in(client, owner)
    response = client.post(f"/invites/{token}")
    assert response.status_code == 409 and "already a member" in response.get_data(as_text=True)
    db.session.refresh(invite)
    assert invite.used_at is None


def test_expired_used_and_unknown_links_say_so(client, owner):
    _, invite, token = _invite(owner)
    invite.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    for method in (client.get, client.post):
        response = method(f"/invites/{token}")
        assert response.status_code == 410 and "expired" in response.get_data(as_text=True)
    for bad in ("nope", "x" * 2000):
        response = client.get(f"/invites/{bad}")
        assert response.status_code == 404 and "not valid" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


def test_the_dataset_overview_attaches_and_detaches_a_workforce(client, owner):
    workforce, users = team(owner, ann="labeler")
    sign_in(client, owner)
    page = client.get(f"/datasets/{owner.dataset.id}").get_data(as_text=True)
    assert "Attached workforces" in page and 'id="attach-workforce"' in page and "No workforce attached." in page
    attached = client.post(f"/datasets/{owner.dataset.id}/workforces", data={"workforce_id": str(workforce.id)}, headers=HX)
    assert attached.status_code == 200 and attached.headers["HX-Trigger"] == "datasetWorkforcesChanged"
    assert 'data-workforce="Night shift"' in attached.get_data(as_text=True)
    again = client.post(f"/datasets/{owner.dataset.id}/workforces", data={"workforce_id": str(workforce.id)}, headers=HX)
    assert again.status_code == 409 and "already attached" in again.get_data(as_text=True)
    detached = client.post(f"/datasets/{owner.dataset.id}/workforces/{workforce.id}/delete", headers=HX)
    assert detached.status_code == 200 and "No workforce attached." in detached.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(DatasetWorkforce)) == 0


@pytest.mark.parametrize("value, status", [("", 422), ("abc", 422), ("9" * 40, 422), ("999999", 404)])
def test_attaching_a_bad_workforce_says_why(client, owner, value, status):
    sign_in(client, owner)
    response = client.post(f"/datasets/{owner.dataset.id}/workforces", data={"workforce_id": value}, headers=HX)
    assert response.status_code == status and 'role="alert"' in response.get_data(as_text=True)


def test_a_reviewer_sees_attached_workforces_but_no_form(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    service.attach(owner.dataset, workforce.id, by=owner)
    sign_in(client, member(owner.dataset, "reviewer"))
    page = client.get(f"/datasets/{owner.dataset.id}").get_data(as_text=True)
    assert 'data-workforce="Team"' in page and 'id="attach-workforce"' not in page and "Detach" not in page


def test_deleting_a_workforce_goes_back_to_the_list(client, owner):
    workforce_id = service.create_workforce("Team", by=owner).id
    sign_in(client, owner)
    response = client.post(f"/workforces/{workforce_id}/delete", headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/workforces/"
    assert db.session.scalar(db.select(Workforce.id)) is None
