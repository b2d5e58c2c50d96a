"""The workforce API: teams, members, invite links and a dataset's workforces, with bad input for every field."""

import json

import pytest

from core.extensions import db
from models import DatasetWorkforce, Workforce, WorkforceInvite, WorkforceMember
from services import workforces as service
from tests.factories import make_dataset, make_user, token_for
from tests.workforces.support import member_row, team

API = "/api/v1"


@pytest.fixture
def owner(app_ctx):
    """A dataset owner: they may create workforces."""
    user = make_user("owner@example.com")
    user.dataset = make_dataset(user, name="Cats")
    return user


def error_of(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    error = response.get_json()["error"]
    assert error["message"] and (code is None or error["code"] == code), error
    return error


def test_create_list_show_rename_and_delete_a_workforce(client, owner):
    headers = token_for(owner)
    created = client.post(f"{API}/workforces", json={"name": " Night shift "}, headers=headers)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (body["name"], body["member_count"], body["role"], body["created_by_id"], body["datasets"]) == ("Night shift", 1, "team_admin", owner.id, [])
    assert body["created_at"].endswith("+00:00")
    listing = client.get(f"{API}/workforces", headers=headers).get_json()
    assert listing["total"] == 1 and listing["next_offset"] is None and listing["items"][0]["id"] == body["id"]
    url = f"{API}/workforces/{body['id']}"
    assert client.get(url, headers=headers).get_json()["name"] == "Night shift"
    renamed = client.patch(url, json={"name": "Day shift"}, headers=headers)
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Day shift"
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert db.session.scalar(db.select(db.func.count()).select_from(Workforce)) == 0


def test_the_list_pages_by_limit_and_offset(client, owner):
    for name in ("a", "b", "c"):
        service.create_workforce(name, by=owner)
    page = client.get(f"{API}/workforces?limit=2", headers=token_for(owner)).get_json()
    assert [w["name"] for w in page["items"]] == ["a", "b"] and page["total"] == 3 and page["next_offset"] == 2
    rest = client.get(f"{API}/workforces?limit=2&offset=2", headers=token_for(owner)).get_json()
    assert [w["name"] for w in rest["items"]] == ["c"] and rest["next_offset"] is None


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("offset=-1", "offset")])
def test_bad_list_parameters_are_refused_naming_the_field(client, owner, query, field):
    error = error_of(client.get(f"{API}/workforces?{query}", headers=token_for(owner)), 422, "invalid")
    assert field in json.dumps(error)


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 121}, "name"), ({"name": None}, "name"),
    ({"name": 5}, "name"), ({"name": ["a"]}, "name"), ({"name": "ok", "extra": 1}, "extra"),
])
def test_bad_workforce_names_are_refused_naming_the_field(client, owner, body, field):
    error = error_of(client.post(f"{API}/workforces", json=body, headers=token_for(owner)), 422)
    assert field in json.dumps(error)
    assert db.session.scalar(db.select(db.func.count()).select_from(Workforce)) == 0


def test_a_name_taken_in_any_case_is_a_409_saying_so(client, owner):
    service.create_workforce("Night shift", by=owner)
    error = error_of(client.post(f"{API}/workforces", json={"name": "NIGHT SHIFT"}, headers=token_for(owner)), 409, "conflict")
    assert "already exists" in error["message"] and error["details"] == {"field": "name"}


def test_deep_or_malformed_json_is_a_400_and_a_form_body_a_415(client, owner):
    headers = token_for(owner)
    deep = '{"name": ' + "[" * 100 + "]" * 100 + "}"
    error_of(client.post(f"{API}/workforces", data=deep, content_type="application/json", headers=headers), 400, "invalid_json")
    error_of(client.post(f"{API}/workforces", data="{", content_type="application/json", headers=headers), 400, "invalid_json")
    error_of(client.post(f"{API}/workforces", data={"name": "x"}, headers=headers), 415)
    error_of(client.post(f"{API}/workforces", json={"name": "nul\x00"}, headers=headers), 422)


def test_members_are_added_changed_listed_and_removed(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    ann = make_user("ann@example.com", name="Ann")
    headers, url = token_for(owner), f"{API}/workforces/{workforce.id}/members"
    added = client.post(url, json={"email": "Ann@Example.com", "role": "labeler"}, headers=headers)
    assert added.status_code == 201, added.get_json()
    body = added.get_json()
    assert (body["user_id"], body["email"], body["display_name"], body["role"], body["active"]) == (ann.id, "ann@example.com", "Ann", "labeler", True)
    changed = client.patch(f"{url}/{body['id']}", json={"role": "reviewer"}, headers=headers)
    assert changed.status_code == 200 and changed.get_json()["role"] == "reviewer"
    listed = client.get(url, headers=headers).get_json()
    assert [(m["email"], m["role"]) for m in listed] == [("owner@example.com", "team_admin"), ("ann@example.com", "reviewer")]
    assert client.delete(f"{url}/{body['id']}", headers=headers).status_code == 204
    assert client.delete(f"{url}/{body['id']}", headers=headers).status_code == 404


@pytest.mark.parametrize("body, status, field", [
    ({"email": "nobody@example.com", "role": "labeler"}, 404, "email"),
    ({"email": "gone@example.com", "role": "labeler"}, 422, "email"),
    ({"email": "ann@example.com", "role": "owner"}, 422, "role"),
    ({"email": "ann@example.com", "role": ""}, 422, "role"),
    ({"email": "ann@example.com"}, 422, "role"),
    ({"role": "labeler"}, 422, "email"),
    ({"email": 7, "role": "labeler"}, 422, "email"),
    ({"email": "ann@example.com", "role": ["labeler"]}, 422, "role"),
    ({"email": "x" * 10_000, "role": "labeler"}, 404, "email"),
])
def test_bad_members_are_refused_naming_the_field(client, owner, body, status, field):
    make_user("ann@example.com")
    make_user("gone@example.com", active=False)
    workforce = service.create_workforce("Team", by=owner)
    error = error_of(client.post(f"{API}/workforces/{workforce.id}/members", json=body, headers=token_for(owner)), status)
    assert field in json.dumps(error)
    assert db.session.scalar(db.select(db.func.count()).select_from(WorkforceMember)) == 1


def test_adding_a_member_twice_is_a_409(client, owner):
    workforce, users = team(owner, ann="labeler")
    error = error_of(client.post(f"{API}/workforces/{workforce.id}/members", json={"email": users["ann"].email, "role": "reviewer"},
                                 headers=token_for(owner)), 409)
    assert "already a member" in error["message"]


@pytest.mark.parametrize("body, field", [({"role": "boss"}, "role"), ({}, "role"), ({"role": None}, "role"), ({"role": "labeler", "x": 1}, "x")])
def test_a_bad_role_change_is_refused(client, owner, body, field):
    workforce, users = team(owner, ann="labeler")
    row = member_row(workforce, users["ann"])
    error = error_of(client.patch(f"{API}/workforces/{workforce.id}/members/{row.id}", json=body, headers=token_for(owner)), 422)
    assert field in json.dumps(error)


def test_the_last_team_admin_is_kept_with_a_409(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    row = member_row(workforce, owner)
    headers, url = token_for(owner), f"{API}/workforces/{workforce.id}/members/{row.id}"
    assert "team admin" in error_of(client.patch(url, json={"role": "labeler"}, headers=headers), 409, "conflict")["message"]
    assert "team admin" in error_of(client.delete(url, headers=headers), 409, "conflict")["message"]


def test_a_member_of_another_workforce_is_not_found_through_this_one(client, owner):
    first, users = team(owner, "First", ann="labeler")
    second = service.create_workforce("Second", by=owner)
    row = member_row(first, users["ann"])
    headers = token_for(owner)
    error_of(client.patch(f"{API}/workforces/{second.id}/members/{row.id}", json={"role": "reviewer"}, headers=headers), 404, "not_found")
    error_of(client.delete(f"{API}/workforces/{second.id}/members/{row.id}", headers=headers), 404, "not_found")


def test_an_invite_answers_its_link_and_token_once(client, owner):
    workforce = service.create_workforce("Team", by=owner)
    created = client.post(f"{API}/workforces/{workforce.id}/invites", json={"role": "reviewer", "hours": 5}, headers=token_for(owner))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["url"].endswith(f"/invites/{body['token']}") and body["url"].startswith("http")
    assert body["role"] == "reviewer" and body["workforce_id"] == workforce.id
    stored = db.session.get(WorkforceInvite, body["id"])
    assert stored.token_hash != body["token"]
    assert client.get(body["url"].split("localhost", 1)[-1]).status_code == 200  # the public page opens it
    defaults = client.post(f"{API}/workforces/{workforce.id}/invites", json={}, headers=token_for(owner)).get_json()
    assert defaults["role"] == "labeler"


@pytest.mark.parametrize("body, field", [
    ({"hours": 0}, "hours"), ({"hours": 721}, "hours"), ({"hours": "72"}, "hours"), ({"hours": 1.5}, "hours"), ({"hours": True}, "hours"),
    ({"hours": 10**30}, "in the request body"), ({"role": "owner"}, "role"), ({"role": None}, "role"),
])
def test_bad_invites_are_refused_naming_the_field(client, owner, body, field):
    workforce = service.create_workforce("Team", by=owner)
    response = client.post(f"{API}/workforces/{workforce.id}/invites", json=body, headers=token_for(owner))
    error = error_of(response, 422)  # 10**30: beyond what any number column holds, said before any field is read
    assert field in json.dumps(error)
    assert db.session.scalar(db.select(db.func.count()).select_from(WorkforceInvite)) == 0


def test_a_dataset_lists_attaches_and_detaches_workforces(client, owner):
    workforce, users = team(owner, ann="labeler")
    headers, url = token_for(owner), f"{API}/datasets/{owner.dataset.id}/workforces"
    assert client.get(url, headers=headers).get_json() == []
    attached = client.post(url, json={"workforce_id": workforce.id}, headers=headers)
    assert attached.status_code == 201, attached.get_json()
    assert {k: attached.get_json()[k] for k in ("id", "name", "member_count")} == {"id": workforce.id, "name": "Night shift", "member_count": 2}
    assert [w["id"] for w in client.get(url, headers=headers).get_json()] == [workforce.id]
    # Its labeler now sees the dataset, through the workforce.
    listing = client.get(f"{API}/datasets", headers=token_for(users["ann"])).get_json()
    assert [d["id"] for d in listing["items"]] == [owner.dataset.id]
    assert client.get(f"{API}/workforces/{workforce.id}", headers=headers).get_json()["datasets"] == [{"id": owner.dataset.id, "name": "Cats"}]
    error_of(client.post(url, json={"workforce_id": workforce.id}, headers=headers), 409, "conflict")
    assert client.delete(f"{url}/{workforce.id}", headers=headers).status_code == 204
    error_of(client.delete(f"{url}/{workforce.id}", headers=headers), 404, "not_found")
    assert client.get(f"{API}/datasets", headers=token_for(users["ann"])).get_json()["items"] == []


@pytest.mark.parametrize("body, status", [
    ({}, 422), ({"workforce_id": "1"}, 422), ({"workforce_id": None}, 422), ({"workforce_id": 1.0}, 422),
    ({"workforce_id": 10**6}, 404), ({"workforce_id": 2**70}, 422),
])
def test_attaching_a_bad_workforce_id_is_refused(client, owner, body, status):
    response = client.post(f"{API}/datasets/{owner.dataset.id}/workforces", json=body, headers=token_for(owner))
    error_of(response, status)
    assert db.session.scalar(db.select(db.func.count()).select_from(DatasetWorkforce)) == 0


def test_attaching_a_workforce_the_caller_does_not_see_is_a_404(client, owner):
    theirs = service.create_workforce("Theirs", by=make_user())
    error = error_of(client.post(f"{API}/datasets/{owner.dataset.id}/workforces", json={"workforce_id": theirs.id}, headers=token_for(owner)), 404)
    assert "Theirs" not in error["message"]
    # Nor can they detach it, attached by someone who does see it.
    service.attach(owner.dataset, theirs.id, by=make_user(is_admin=True))
    error_of(client.delete(f"{API}/datasets/{owner.dataset.id}/workforces/{theirs.id}", headers=token_for(owner)), 404)
