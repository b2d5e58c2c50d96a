"""The role rules of SPEC section 4 through the members API: the same table as the members partial."""

import threading

import pytest

from core.extensions import db
from models import Dataset
from tests.factories import make_dataset, make_user, token_for
from tests.support import member
from tests.web.test_member_roles import CASES, assert_outcome, member_id, role_on, role_world  # noqa: F401 (a fixture)


@pytest.mark.parametrize("role_world, new, outcome", [pytest.param(c.values[:2], *c.values[2:], id=c.id) for c in CASES], indirect=["role_world"])
def test_members_api_applies_the_role_rules(client, role_world, new, outcome):
    w = role_world
    headers = token_for(w.actor)
    before = role_on(w.dataset.id, w.target)
    if new == "removed":
        response = client.delete(f"/api/v1/datasets/{w.dataset.id}/members/{member_id(w.dataset.id, w.target)}", headers=headers)
    else:
        response = client.post(f"/api/v1/datasets/{w.dataset.id}/members", json={"email": w.target.email, "role": new}, headers=headers)
    body = response.get_data(as_text=True)
    if outcome == "ok":
        assert response.status_code == (204 if new == "removed" else 201), body[:300]
        if new != "removed":
            assert response.get_json()["role"] == new
    else:
        error = response.get_json()["error"]
        assert error["code"] == {"403": "forbidden", "409": "conflict"}[outcome] and error["message"]
    assert_outcome(w, outcome, new, before, response.status_code, body)


def test_a_manager_cannot_make_themselves_owner_and_then_rename_or_delete(client):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator, name="Cats")
    manager = member(dataset, "manager", email="manager@example.com")
    headers = token_for(manager)
    base = f"/api/v1/datasets/{dataset.id}"
    response = client.post(f"{base}/members", json={"email": manager.email, "role": "owner"}, headers=headers)
    assert response.status_code == 403
    assert "owner role" in response.get_json()["error"]["message"]
    # Nor by the back door of making someone else owner, or demoting the owner.
    accomplice = make_user("accomplice@example.com")
    assert client.post(f"{base}/members", json={"email": accomplice.email, "role": "owner"}, headers=headers).status_code == 403
    assert client.post(f"{base}/members", json={"email": creator.email, "role": "labeler"}, headers=headers).status_code == 403
    assert client.patch(base, json={"name": "Mine now"}, headers=headers).status_code == 403
    assert client.delete(base, headers=headers).status_code == 403
    db.session.expire_all()
    assert db.session.get(Dataset, dataset.id).name == "Cats" and role_on(dataset.id, creator) == "owner"


def test_the_last_owner_can_neither_leave_nor_step_down_but_can_after_naming_another(client):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator)
    headers = token_for(creator)
    base = f"/api/v1/datasets/{dataset.id}/members"
    own_row = member_id(dataset.id, creator)
    for response in (
        client.delete(f"{base}/{own_row}", headers=headers),
        client.post(base, json={"email": creator.email, "role": "manager"}, headers=headers),
    ):
        assert response.status_code == 409
        assert "last owner" in response.get_json()["error"]["message"]
    heir = make_user("heir@example.com")
    assert client.post(base, json={"email": heir.email, "role": "owner"}, headers=headers).status_code == 201
    assert client.delete(f"{base}/{own_row}", headers=headers).status_code == 204
    assert role_on(dataset.id, creator) is None and role_on(dataset.id, heir) == "owner"
    assert client.get(f"/api/v1/datasets/{dataset.id}", headers=headers).status_code == 404, "the creator left"
    assert client.patch(f"/api/v1/datasets/{dataset.id}", json={"name": "Heir's"}, headers=token_for(heir)).status_code == 200


def test_two_owners_stepping_down_at_once_leave_the_dataset_one_owner(app_ctx):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator)
    second = member(dataset, "owner", email="second@example.com")
    tokens = {user.email: token_for(user) for user in (creator, second)}
    url = f"/api/v1/datasets/{dataset.id}/members"  # the threads must not touch this session's objects
    barrier, statuses = threading.Barrier(2), {}

    def step_down(email: str) -> None:
        client = app_ctx.test_client()  # a thread of its own: each request pushes its own app context
        barrier.wait()
        response = client.post(url, json={"email": email, "role": "manager"}, headers=tokens[email])
        statuses[email] = response.status_code

    threads = [threading.Thread(target=step_down, args=(email,)) for email in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses.values()) == [201, 409], statuses
    roles = {role_on(dataset.id, user) for user in (creator, second)}
    assert roles == {"owner", "manager"}
