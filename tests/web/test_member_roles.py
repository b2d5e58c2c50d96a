"""Who may give whom which role on a dataset, through the members partial (SPEC section 4).

Only an owner or a site admin grants or takes away the owner role; nobody raises their own role;
a dataset always keeps at least one owner. The table below is every actor role x target x new
role; tests/api/test_member_roles.py sends the same table through the API.
"""

from dataclasses import dataclass

import pytest

from core.extensions import db
from models import Dataset, DatasetMember, Role, User
from tests.factories import make_dataset, make_user
from tests.support import member, sign_in

HX = {"HX-Request": "true"}
ACTORS = ["admin", "owner", "manager", "reviewer", "labeler"]
# "creator": the dataset's first owner (its only owner unless the actor is an owner too);
# "newcomer": a user with no role yet; "self": the actor.
TARGETS = ["creator", "manager", "reviewer", "labeler", "newcomer", "self"]
NEW_ROLES = ["owner", "manager", "reviewer", "labeler", "removed"]
RANK = {"labeler": 0, "reviewer": 1, "manager": 2, "owner": 3}


def current_role(actor: str, target: str) -> str | None:
    if target == "self":
        return None if actor == "admin" else actor  # the admin is no member
    return {"creator": "owner", "newcomer": None}.get(target, target)


def expected(actor: str, target: str, new: str) -> str:
    """What SPEC section 4 promises, written out independently of the service: ok, 403 or 409."""
    if actor in ("reviewer", "labeler"):
        return "403"  # they do not manage members at all
    current = current_role(actor, target)
    new_role = None if new == "removed" else new
    if "owner" in (current, new_role) and current != new_role and actor not in ("admin", "owner"):
        return "403"
    if target == "self" and new_role is not None and (current is None or RANK[new_role] > RANK[current]):
        return "403"
    owners = 2 if actor == "owner" else 1  # an owner actor is a second owner beside the creator
    if current == "owner" and new_role != "owner" and owners == 1:
        return "409"
    return "ok"


CASES = [
    pytest.param(actor, target, new, expected(actor, target, new), id=f"{actor} sets {target} to {new}: {expected(actor, target, new)}")
    for actor in ACTORS
    for target in TARGETS
    for new in NEW_ROLES
    # Nobody to remove: the newcomer has no role, the admin is no member.
    if not (new == "removed" and (target == "newcomer" or (target == "self" and actor == "admin")))
]


@dataclass
class RoleWorld:
    dataset: Dataset
    creator: User
    actor: User
    target: User


@pytest.fixture
def role_world(app_ctx, request) -> RoleWorld:
    """A private dataset, an actor with the case's role and a target holding the case's role."""
    actor_role, target_kind = request.param
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator, name="Cats")
    actor = make_user("actor@example.com", is_admin=True) if actor_role == "admin" else member(dataset, actor_role, email="actor@example.com")
    if target_kind == "creator":
        target = creator
    elif target_kind == "self":
        target = actor
    elif target_kind == "newcomer":
        target = make_user("newcomer@example.com")
    else:
        target = member(dataset, target_kind, email="target@example.com")
    return RoleWorld(dataset, creator, actor, target)


def role_on(dataset_id: int, user: User) -> str | None:
    """The role the user holds now, read back from the database as role_of() sees it."""
    db.session.expire_all()
    dataset = db.session.get(Dataset, dataset_id)
    if dataset.owner_id == user.id:
        return "owner"
    role = db.session.scalar(db.select(DatasetMember.role).where(DatasetMember.dataset_id == dataset_id, DatasetMember.user_id == user.id))
    return role.value if role else None


def owners_of(dataset_id: int) -> set[int]:
    db.session.expire_all()
    dataset = db.session.get(Dataset, dataset_id)
    rows = db.session.scalars(db.select(DatasetMember.user_id).where(DatasetMember.dataset_id == dataset_id, DatasetMember.role == Role.owner))
    return {dataset.owner_id, *rows}


def member_id(dataset_id: int, user: User) -> int:
    return db.session.scalar(db.select(DatasetMember.id).where(DatasetMember.dataset_id == dataset_id, DatasetMember.user_id == user.id))


def assert_outcome(w: RoleWorld, outcome: str, new: str, before: str | None, status: int, body: str) -> None:
    """The change happened exactly when allowed, and the dataset still has an owner whose role is consistent."""
    codes = {"ok": None, "403": 403, "409": 409}
    if outcome == "ok":
        assert role_on(w.dataset.id, w.target) == (None if new == "removed" else new), body[:300]
    else:
        assert status == codes[outcome], body[:300]
        assert role_on(w.dataset.id, w.target) == before, "a refused change changed nothing"
    owners = owners_of(w.dataset.id)
    assert owners, "a dataset always keeps an owner"
    for user_id in owners:
        assert role_on(w.dataset.id, db.session.get(User, user_id)) == "owner"


@pytest.mark.parametrize("role_world, new, outcome", [pytest.param(c.values[:2], *c.values[2:], id=c.id) for c in CASES], indirect=["role_world"])
def test_members_partial_applies_the_role_rules(client, role_world, new, outcome):
    w = role_world
    sign_in(client, w.actor)
    before = role_on(w.dataset.id, w.target)
    if new == "removed":
        response = client.post(f"/datasets/{w.dataset.id}/members/{member_id(w.dataset.id, w.target)}/delete", headers=HX)
    else:
        response = client.post(f"/datasets/{w.dataset.id}/members", data={"email": w.target.email, "role": new}, headers=HX)
    body = response.get_data(as_text=True)
    if outcome == "ok":
        assert response.status_code == 200, body[:300]
    else:
        assert 'role="alert"' in body and "<html" not in body, "a refusal is the members partial or the error partial"
    assert_outcome(w, outcome, new, before, response.status_code, body)


def test_the_owner_role_is_offered_only_to_owners_and_site_admins(client, new_client):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator)
    manager = member(dataset, "manager")
    owner_option = '<option value="owner">'
    sign_in(client, manager)
    assert owner_option not in client.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    for user in (creator, make_user(is_admin=True)):
        other = new_client()
        sign_in(other, user)
        assert owner_option in other.get(f"/datasets/{dataset.id}").get_data(as_text=True)


def test_a_manager_cannot_take_the_dataset_over_through_the_page(client):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator, name="Cats")
    manager = member(dataset, "manager", email="manager@example.com")
    sign_in(client, manager)
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": manager.email, "role": "owner"})
    assert response.status_code == 403
    assert "owner role" in response.get_data(as_text=True)
    assert client.post(f"/datasets/{dataset.id}/settings", data={"name": "Mine now"}).status_code == 403
    assert client.post(f"/datasets/{dataset.id}/delete", data={"confirm_name": "Cats"}).status_code == 403
    db.session.expire_all()
    assert db.session.get(Dataset, dataset.id).name == "Cats"


def test_an_owner_hands_the_dataset_over_and_the_new_owner_has_it_all(client, new_client):
    creator = make_user("creator@example.com")
    dataset = make_dataset(creator, name="Cats")
    heir = member(dataset, "manager", email="heir@example.com")
    sign_in(client, creator)
    assert client.post(f"/datasets/{dataset.id}/members", data={"email": heir.email, "role": "owner"}, headers=HX).status_code == 200
    assert client.post(f"/datasets/{dataset.id}/members", data={"email": creator.email, "role": "reviewer"}, headers=HX).status_code == 200
    assert role_on(dataset.id, creator) == "reviewer" and role_on(dataset.id, heir) == "owner"
    heirs = new_client()
    sign_in(heirs, heir)
    assert heirs.post(f"/datasets/{dataset.id}/settings", data={"name": "Dogs"}).status_code == 200
    # The creator is a reviewer now: the owner's pages are closed to them.
    assert client.post(f"/datasets/{dataset.id}/settings", data={"name": "Back"}).status_code == 403
