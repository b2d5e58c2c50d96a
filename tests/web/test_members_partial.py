"""The members partial answering a change shows the controls of the actor's role after the change.

The checks memoise each role per request, so an actor who changes their own role would otherwise
get back the controls of the role they just gave up, in that same response.
"""

import pytest

from core.extensions import db
from models import DatasetMember
from tests.factories import make_dataset, make_user
from tests.support import member, sign_in

HX = {"HX-Request": "true"}
ADD_FORM = "Add member</button>"
REMOVE = ">Remove</button>"
OWNER_OPTION = '<option value="owner">'


def controls(html: str) -> dict:
    return {"add": ADD_FORM in html, "remove": REMOVE in html, "owner option": OWNER_OPTION in html}


NONE = {"add": False, "remove": False, "owner option": False}
MANAGER = {"add": True, "remove": True, "owner option": False}


@pytest.fixture
def dataset(app_ctx):
    return make_dataset(make_user("creator@example.com"), name="Cats")


@pytest.mark.parametrize("actor_role, new_role, after", [
    ("manager", "reviewer", NONE),
    ("manager", "labeler", NONE),
    ("manager", "manager", MANAGER),  # no change: the controls stay
    ("owner", "manager", MANAGER),  # a second owner (a member, not the recorded owner) steps down
    ("owner", "labeler", NONE),
], ids=["manager to reviewer", "manager to labeler", "manager stays manager", "owner to manager", "owner to labeler"])
def test_an_actor_changing_their_own_role_gets_the_controls_of_their_new_role_at_once(client, dataset, actor_role, new_role, after):
    actor = member(dataset, actor_role, email="actor@example.com")
    sign_in(client, actor)
    before = controls(client.get(f"/datasets/{dataset.id}").get_data(as_text=True))
    assert before["add"] and before["remove"] and before["owner option"] is (actor_role == "owner")
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": actor.email, "role": new_role}, headers=HX)
    assert response.status_code == 200
    assert controls(response.get_data(as_text=True)) == after


def test_a_manager_who_leaves_gets_a_partial_without_the_management_controls(client, dataset):
    manager = member(dataset, "manager", email="actor@example.com")
    member(dataset, "labeler", email="other@example.com")
    sign_in(client, manager)
    own = db.session.scalar(db.select(DatasetMember.id).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == manager.id))
    response = client.post(f"/datasets/{dataset.id}/members/{own}/delete", headers=HX)
    assert response.status_code == 200
    assert controls(response.get_data(as_text=True)) == NONE


def test_changing_someone_elses_role_keeps_the_actors_controls(client, dataset):
    manager = member(dataset, "manager", email="actor@example.com")
    other = member(dataset, "reviewer", email="other@example.com")
    sign_in(client, manager)
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": other.email, "role": "labeler"}, headers=HX)
    assert response.status_code == 200
    assert controls(response.get_data(as_text=True)) == MANAGER
