"""services/workforces.py: workforces, members, the keep-a-team-admin rule, invite links, attaching to datasets."""

from datetime import timedelta

import pytest

from core.errors import Conflict, Gone, Invalid, NotFound
from core.extensions import db
from core.permissions import can, role_of, visible_datasets
from models import Dataset, DatasetWorkforce, Role, User, Workforce, WorkforceInvite, WorkforceMember, WorkforceRole
from models.base import utcnow
from services import datasets as dataset_service
from services import workforces as service
from tests.factories import make_dataset, make_user
from tests.support import insert_images, member
from tests.workforces.support import handed_in, member_row, open_images, task_with, team


def count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


# ---- workforces ------------------------------------------------------------------------------


def test_the_creator_becomes_the_first_team_admin_of_a_workforce_with_a_stripped_name(app_ctx):
    owner = make_user()
    workforce = service.create_workforce("  Night shift  ", by=owner)
    assert workforce.name == "Night shift" and workforce.created_by_id == owner.id
    assert member_row(workforce, owner).role == WorkforceRole.team_admin


@pytest.mark.parametrize("name", ["", "   ", "\t\n", None, 42, ["a"], "x" * 121])
def test_a_workforce_name_must_be_1_to_120_characters_of_text(app_ctx, name):
    with pytest.raises(Invalid) as caught:
        service.create_workforce(name, by=make_user())
    assert caught.value.details == {"field": "name"}
    assert count(Workforce) == 0


def test_a_name_of_120_characters_is_fine(app_ctx):
    assert service.create_workforce("x" * 120, by=make_user()).name == "x" * 120


@pytest.mark.parametrize("clash", ["Night shift", "NIGHT SHIFT", " night shift "])
def test_names_are_unique_whatever_their_case(app_ctx, clash):
    service.create_workforce("Night shift", by=make_user())
    with pytest.raises(Conflict) as caught:
        service.create_workforce(clash, by=make_user())
    assert "already exists" in caught.value.message and caught.value.details == {"field": "name"}
    assert count(Workforce) == 1


def test_renaming_checks_other_names_but_not_its_own(app_ctx):
    owner = make_user()
    day = service.create_workforce("Day", by=owner)
    service.create_workforce("Night", by=owner)
    assert service.rename_workforce(day, "DAY").name == "DAY"
    with pytest.raises(Conflict):
        service.rename_workforce(day, "night")
    with pytest.raises(Invalid):
        service.rename_workforce(day, " ")
    db.session.refresh(day)
    assert day.name == "DAY"


def test_each_user_lists_the_workforces_they_made_or_belong_to_and_admins_list_all(app_ctx):
    ann, bob = make_user(), make_user()
    a, _ = team(ann, "Alpha")
    b, users = team(bob, "bravo", carl="labeler")
    assert service.list_workforces(ann) == ([a], 1)
    assert service.list_workforces(users["carl"]) == ([b], 1)
    assert service.list_workforces(make_user()) == ([], 0)
    assert service.list_workforces(make_user(is_admin=True)) == ([a, b], 2)  # by name, whatever the case
    assert service.list_workforces(make_user(is_admin=True), limit=1, offset=1) == ([b], 2)


@pytest.mark.parametrize("limit, offset", [(0, 0), (101, 0), (1, -1), ("5", 0), (True, 0)])
def test_a_page_of_workforces_has_1_to_100_items_from_a_non_negative_offset(app_ctx, limit, offset):
    with pytest.raises(Invalid):
        service.list_workforces(make_user(), limit=limit, offset=offset)


def test_deleting_a_workforce_hands_back_its_members_open_images_and_ends_the_roles_it_gave(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    ids = insert_images(dataset, 3)
    workforce, users = team(owner, ann="labeler")
    service.attach(dataset, workforce.id, by=owner)
    task_with(dataset, ids, users["ann"], workforce, submitted=1)
    service.delete_workforce(workforce)
    assert open_images(users["ann"]) == [] and handed_in(users["ann"]) == [ids[0]]
    assert count(WorkforceMember) == count(DatasetWorkforce) == 0
    assert role_of(db.session.get(User, users["ann"].id), db.session.get(Dataset, dataset.id)) is None


# ---- members ---------------------------------------------------------------------------------


def test_a_member_is_added_by_email_in_any_case_with_a_team_role(app_ctx):
    owner, ann = make_user(), make_user("ann@example.com")
    workforce = service.create_workforce("Team", by=owner)
    member, user = service.add_member(workforce, "  ANN@example.com ", "reviewer")
    assert user.id == ann.id and member.role == WorkforceRole.reviewer


@pytest.mark.parametrize("email, error, field", [
    ("nobody@example.com", NotFound, "email"), ("", Invalid, "email"), ("   ", Invalid, "email"), (None, Invalid, "email"),
    (["ann@example.com"], Invalid, "email"), ("x" * 5000, NotFound, "email"),
])
def test_adding_someone_who_is_no_user_says_so(app_ctx, email, error, field):
    workforce = service.create_workforce("Team", by=make_user())
    with pytest.raises(error) as caught:
        service.add_member(workforce, email, "labeler")
    assert caught.value.details == {"field": field}
    assert count(WorkforceMember) == 1


@pytest.mark.parametrize("role", ["owner", "manager", "admin", "", None, "LABELER", 1])
def test_only_the_three_team_roles_exist(app_ctx, role):
    make_user("ann@example.com")
    workforce = service.create_workforce("Team", by=make_user())
    with pytest.raises(Invalid) as caught:
        service.add_member(workforce, "ann@example.com", role)
    assert caught.value.details == {"field": "role"} and "labeler, reviewer, team_admin" in caught.value.message


def test_a_deactivated_user_cannot_be_added(app_ctx):
    make_user("gone@example.com", active=False)
    workforce = service.create_workforce("Team", by=make_user())
    with pytest.raises(Invalid, match="deactivated"):
        service.add_member(workforce, "gone@example.com", "labeler")


def test_a_member_is_added_once(app_ctx):
    make_user("ann@example.com")
    workforce = service.create_workforce("Team", by=make_user())
    service.add_member(workforce, "ann@example.com", "labeler")
    with pytest.raises(Conflict, match="already a member"):
        service.add_member(workforce, "ann@example.com", "reviewer")
    assert member_row(workforce, User.by_email("ann@example.com")).role == WorkforceRole.labeler


def test_a_role_is_changed_and_an_unknown_one_refused(app_ctx):
    workforce, users = team(make_user(), ann="labeler")
    row = member_row(workforce, users["ann"])
    member, user = service.change_role(workforce, row.id, "reviewer")
    assert member.role == WorkforceRole.reviewer and user.id == users["ann"].id
    with pytest.raises(Invalid):
        service.change_role(workforce, row.id, "boss")


def test_a_member_of_another_workforce_is_not_found_here(app_ctx):
    first, users = team(make_user(), "First", ann="labeler")
    second, _ = team(make_user(), "Second")
    for member_id in (member_row(first, users["ann"]).id, 10**6, "1", None):
        with pytest.raises(NotFound):
            service.change_role(second, member_id, "reviewer")
        with pytest.raises(NotFound):
            service.remove_member(second, member_id)


def test_the_last_team_admin_can_be_neither_demoted_nor_removed(app_ctx):
    owner = make_user()
    workforce, users = team(owner, ann="labeler")
    admin_row = member_row(workforce, owner)
    with pytest.raises(Conflict, match="keeps a team admin"):
        service.change_role(workforce, admin_row.id, "labeler")
    with pytest.raises(Conflict, match="keeps a team admin"):
        service.remove_member(workforce, admin_row.id)
    db.session.refresh(admin_row)
    assert admin_row.role == WorkforceRole.team_admin
    service.change_role(workforce, member_row(workforce, users["ann"]).id, "team_admin")
    service.change_role(workforce, admin_row.id, "labeler")  # ann keeps the team managed now
    assert member_row(workforce, owner).role == WorkforceRole.labeler


def test_a_deactivated_team_admin_does_not_count_as_the_one_that_keeps_the_team(app_ctx):
    owner = make_user()
    workforce, users = team(owner, old="team_admin")
    users["old"].active = False
    db.session.commit()
    with pytest.raises(Conflict):
        service.remove_member(workforce, member_row(workforce, owner).id)
    service.remove_member(workforce, member_row(workforce, users["old"]).id)  # removing the deactivated one is fine


def test_a_member_who_leaves_hands_back_open_images_of_the_workforces_tasks_only(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    ids = insert_images(dataset, 5)
    workforce, users = team(owner, ann="labeler")
    service.attach(dataset, workforce.id, by=owner)
    ann = users["ann"]
    task_with(dataset, ids[:3], ann, workforce, submitted=1)
    dataset_service.add_member(dataset, ann.email, "labeler", by=owner)
    task_with(dataset, ids[3:], ann)  # named directly, not through the workforce
    service.remove_member(workforce, member_row(workforce, ann).id)
    assert open_images(ann) == ids[3:]
    assert handed_in(ann) == [ids[0]]  # what they handed in stays theirs
    assert member_row(workforce, ann) is None


# ---- invite links ----------------------------------------------------------------------------


def test_an_invite_keeps_only_the_hash_of_its_token_and_lasts_72_hours_by_default(app_ctx):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "reviewer", by=owner)
    assert len(token) >= 40 and invite.token_hash != token and token not in invite.token_hash
    assert invite.role == WorkforceRole.reviewer and invite.used_at is None
    assert abs(invite.expires_at - (utcnow() + timedelta(hours=72))) < timedelta(minutes=1)
    assert service.create_invite(workforce, "labeler", 720, by=owner)[0].expires_at > utcnow() + timedelta(days=29)


@pytest.mark.parametrize("hours", [0, -1, 721, 10**12, "72", 1.5, True, None])
def test_an_invite_lasts_1_hour_to_30_days(app_ctx, hours):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    with pytest.raises(Invalid) as caught:
        service.create_invite(workforce, "labeler", hours, by=owner)
    assert caught.value.details == {"field": "hours"}
    assert count(WorkforceInvite) == 0


def test_an_invite_with_an_unknown_role_is_refused(app_ctx):
    owner = make_user()
    with pytest.raises(Invalid):
        service.create_invite(service.create_workforce("Team", by=owner), "owner", by=owner)


def test_a_signed_in_user_joins_with_the_invites_role_and_the_link_is_used_up(app_ctx):
    owner, bob = make_user(), make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "reviewer", by=owner)
    member, joined = service.accept_invite(token, bob)
    assert joined.id == workforce.id and member.user_id == bob.id and member.role == WorkforceRole.reviewer
    db.session.refresh(invite)
    assert invite.used_by_id == bob.id and invite.used_at is not None
    with pytest.raises(Gone, match="already been used"):
        service.accept_invite(token, make_user())


def test_a_member_opening_an_invite_is_told_so_and_the_link_stays_unused(app_ctx):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "labeler", by=owner)
    with pytest.raises(Conflict, match="already a member"):
        service.accept_invite(token, owner)
    db.session.refresh(invite)
    assert invite.used_at is None


@pytest.mark.parametrize("token, error", [("nope", NotFound), ("", NotFound), (None, NotFound), ("x" * 10_000, NotFound), (7, NotFound)])
def test_an_unknown_token_is_not_found(app_ctx, token, error):
    with pytest.raises(error, match="not valid"):
        service.usable_invite(token)


def test_an_expired_invite_creates_nothing(app_ctx):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "labeler", 1, by=owner)
    invite.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    users = count(User)
    with pytest.raises(Gone, match="expired"):
        service.sign_up_with_invite(token, email="new@example.com", display_name="New", password="long enough")
    with pytest.raises(Gone, match="expired"):
        service.accept_invite(token, make_user())
    assert count(User) == users + 1 and count(WorkforceMember) == 1


def test_an_anonymous_person_signs_up_through_an_invite_and_joins(app_ctx):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "labeler", by=owner)
    user, joined = service.sign_up_with_invite(token, email=" New@Example.com ", display_name=" Nia ", password="long enough")
    assert (user.email, user.display_name, user.is_admin, user.active) == ("new@example.com", "Nia", False, True)
    assert user.check_password("long enough") and joined.id == workforce.id
    assert member_row(workforce, user).role == WorkforceRole.labeler
    db.session.refresh(invite)
    assert invite.used_by_id == user.id
    with pytest.raises(Gone):
        service.sign_up_with_invite(token, email="second@example.com", display_name="Two", password="long enough")
    assert User.by_email("second@example.com") is None


@pytest.mark.parametrize("fields, field", [
    ({"email": "not an address"}, "email"), ({"email": ""}, "email"), ({"email": None}, "email"),
    ({"email": "x" * 300 + "@example.com"}, "email"), ({"display_name": ""}, "display_name"),
    ({"display_name": "   "}, "display_name"), ({"display_name": "n" * 121}, "display_name"), ({"display_name": None}, "display_name"),
    ({"password": "short"}, "password"), ({"password": ""}, "password"), ({"password": None}, "password"),
])
def test_a_bad_sign_up_says_which_field_and_creates_nothing(app_ctx, fields, field):
    owner = make_user()
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "labeler", by=owner)
    users = count(User)
    values = {"email": "new@example.com", "display_name": "New", "password": "long enough"} | fields
    with pytest.raises(Invalid) as caught:
        service.sign_up_with_invite(token, **values)
    assert caught.value.details == {"field": field}
    assert count(User) == users and count(WorkforceMember) == 1
    db.session.refresh(invite)
    assert invite.used_at is None


def test_signing_up_with_an_address_that_has_an_account_creates_nothing(app_ctx):
    owner = make_user("taken@example.com")
    workforce = service.create_workforce("Team", by=owner)
    invite, token = service.create_invite(workforce, "labeler", by=owner)
    with pytest.raises(Conflict, match="sign in"):
        service.sign_up_with_invite(token, email="TAKEN@example.com", display_name="X", password="long enough")
    db.session.refresh(invite)
    assert invite.used_at is None and count(User) == 1


# ---- datasets --------------------------------------------------------------------------------


def test_an_attached_workforce_gives_its_members_their_team_roles_on_the_dataset(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    workforce, users = team(owner, ann="labeler", rev="reviewer", boss="team_admin")
    assert db.session.scalars(visible_datasets(db.select(Dataset), users["ann"])).all() == []
    attached, link = service.attach(dataset, workforce.id, by=owner)
    assert attached.id == workforce.id and link.dataset_id == dataset.id
    expected = {"ann": Role.labeler, "rev": Role.reviewer, "boss": Role.manager}
    for key, role in expected.items():
        assert role_of(users[key], dataset) == role
        assert db.session.scalars(visible_datasets(db.select(Dataset), users[key])).all() == [dataset]
    assert service.workforces_of(dataset) == [(workforce, link)]
    assert service.datasets_of(workforce, users["ann"]) == [dataset]
    assert service.attachable(dataset, owner) == []


def test_a_workforce_is_attached_once(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    workforce = service.create_workforce("Team", by=owner)
    service.attach(dataset, workforce.id, by=owner)
    with pytest.raises(Conflict, match="already attached"):
        service.attach(dataset, workforce.id, by=owner)


@pytest.mark.parametrize("workforce_id, error", [(None, Invalid), ("1", Invalid), (True, Invalid), (2**40, Invalid), (10**6, NotFound)])
def test_attaching_needs_a_workforce_id(app_ctx, workforce_id, error):
    owner = make_user()
    with pytest.raises(error) as caught:
        service.attach(make_dataset(owner), workforce_id, by=owner)
    assert caught.value.details == {"field": "workforce_id"}


def test_a_manager_cannot_attach_a_workforce_they_do_not_see(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    manager = member(dataset, "manager")
    theirs = service.create_workforce("Theirs", by=make_user())
    assert can(manager, "dataset:members", dataset) and not can(manager, "workforce:view", theirs)
    with pytest.raises(NotFound):
        service.attach(dataset, theirs.id, by=manager)
    assert count(DatasetWorkforce) == 0


def test_detaching_hands_back_the_open_images_of_members_left_without_a_role(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    ids = insert_images(dataset, 4)
    workforce, users = team(owner, ann="labeler", bea="labeler")
    service.attach(dataset, workforce.id, by=owner)
    dataset_service.add_member(dataset, users["bea"].email, "labeler", by=owner)  # bea keeps a role of her own
    task_with(dataset, ids[:2], users["ann"], workforce)
    task_with(dataset, ids[2:], users["bea"], workforce)
    service.detach(dataset, workforce)
    assert open_images(users["ann"]) == [] and open_images(users["bea"]) == ids[2:]
    assert role_of(users["ann"], dataset) is None
    with pytest.raises(NotFound, match="not attached"):
        service.detach(dataset, workforce)


def test_removing_a_dataset_member_hands_back_their_open_images_unless_a_workforce_keeps_them_there(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner)
    ids = insert_images(dataset, 4)
    ann, bea = member(dataset, "labeler"), member(dataset, "labeler")
    task_with(dataset, ids[:2], ann, submitted=1)
    task_with(dataset, ids[2:], bea)
    workforce = service.create_workforce("Team", by=owner)
    service.add_member(workforce, bea.email, "labeler")
    service.attach(dataset, workforce.id, by=owner)
    rows = {m.user_id: m.id for m in dataset_service.list_members(dataset)}
    dataset_service.remove_member(dataset, rows[ann.id], by=owner)
    dataset_service.remove_member(dataset, rows[bea.id], by=owner)
    assert open_images(ann) == [] and handed_in(ann) == [ids[0]]
    assert open_images(bea) == ids[2:]  # still a labeler there, through the workforce


def test_visible_workforces_lists_exactly_what_sees_workforce_allows(app_ctx):
    from core.permissions import sees_workforce, visible_workforces

    creator, admin, outsider = make_user(), make_user(is_admin=True), make_user()
    first, users = team(creator, "First", ann="labeler")
    second, _ = team(make_user(), "Second", bob="team_admin")
    left = service.create_workforce("Left", by=creator)
    db.session.delete(member_row(left, creator))  # its creator left, but still sees (and manages) it
    db.session.commit()
    everything = [first, second, left]
    for user in (creator, admin, outsider, users["ann"]):
        listed = set(db.session.scalars(visible_workforces(db.select(Workforce), user)))
        assert listed == {w for w in everything if sees_workforce(user, w)}, user.email
    assert {w.name for w in db.session.scalars(visible_workforces(db.select(Workforce), creator))} == {"First", "Left"}
