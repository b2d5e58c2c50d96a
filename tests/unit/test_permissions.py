"""The permission table (core/permissions.py), table-driven: role × scope → expected (SPEC section 4)."""

import pytest

from core.extensions import db
from core.permissions import (
    SCOPES,
    can,
    requires,
    sees_image,
    visible_datasets,
    visible_images,
)
from models import AcceptanceSample, Dataset, Export, Image, Job, JobStatus, LabelingTask, Workforce
from tests.factories import assign, make_dataset, make_user
from tests.support import actor, insert_images, member

ROLES = ["admin", "owner", "manager", "reviewer", "labeler", "outsider"]

# One row per scope, one column per role (in ROLES order), on a private dataset; the labeler has
# no assignment, and the job was started by the dataset's owner.
TABLE = {
    #                   admin  owner  manager reviewer labeler outsider
    "dataset:view":    (True,  True,  True,   True,    True,   False),
    "dataset:manage":  (True,  True,  False,  False,   False,  False),
    "dataset:import":  (True,  True,  True,   False,   False,  False),
    "dataset:members": (True,  True,  True,   False,   False,  False),
    "dataset:owners":  (True,  True,  False,  False,   False,  False),
    "dataset:labels":  (True,  True,  True,   False,   False,  False),
    "dataset:export":  (True,  True,  True,   False,   False,  False),
    "dataset:review":  (True,  True,  True,   True,    False,  False),
    "image:view":      (True,  True,  True,   True,    False,  False),
    "image:annotate":  (True,  True,  True,   True,    False,  False),
    "job:view":        (True,  True,  True,   True,    False,  False),  # a labeler: only jobs they started
    "job:cancel":      (True,  True,  True,   False,   False,  False),
    "export:view":     (True,  True,  True,   False,   False,  False),
    "dataset:tasks":   (True,  True,  True,   False,   False,  False),
    "dataset:sampling": (True, True,  False,  False,   False,  False),
    "task:view":       (True,  True,  True,   True,    False,  False),  # a labeler: the tasks they work on
    "task:work":       (False, False, False,  False,   False,  False),  # nobody works on it yet
    "task:manage":     (True,  True,  True,   False,   False,  False),
    "task:sampling":   (True,  True,  False,  False,   False,  False),
    "sample:view":     (True,  True,  False,  False,   False,  False),
    "sample:decide":   (True,  True,  False,  False,   False,  False),
    "workforce:view":  (True,  True,  False,  False,   False,  False),  # the owner made it; nobody is a member
    "workforce:manage": (True, True,  False,  False,   False,  False),
    "workforces:create": (True, True, True,   False,   False,  False),
    "users:manage":    (True,  False, False,  False,   False,  False),
}


@pytest.fixture
def setting(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, name="Private")
    image_ids = insert_images(dataset, 3)
    job = Job(id="refresh-counters-test", kind="refresh_counters", dataset_id=dataset.id, user_id=owner.id)
    db.session.add(job)
    db.session.commit()
    return dataset, db.session.get(Image, image_ids[0]), job


def target_of(scope: str, dataset: Dataset, image: Image, job: Job):
    """The object a scope is checked on; for the team's, rows made here (whose dataset or maker is all a rule reads)."""
    noun = scope.split(":")[0]
    if noun == "export":
        return Export(dataset_id=dataset.id, format="json")
    if noun in ("task", "sample"):
        task = db.session.scalar(db.select(LabelingTask).where(LabelingTask.dataset_id == dataset.id))
        if task is None:
            task = LabelingTask(dataset_id=dataset.id, name="Boxes")
            db.session.add(task)
            db.session.commit()
        return task if noun == "task" else AcceptanceSample(task_id=task.id, rate=0.1)
    if noun == "workforce":
        workforce = db.session.scalar(db.select(Workforce).where(Workforce.name == "Team"))
        if workforce is None:
            workforce = Workforce(name="Team", created_by_id=dataset.owner_id)
            db.session.add(workforce)
            db.session.commit()
        return workforce
    return {"dataset": dataset, "image": image, "job": job, "users": None, "workforces": None}[noun]


def test_the_table_covers_every_scope():
    assert set(TABLE) == set(SCOPES), "every scope in core.permissions.SCOPES needs a row here"


def granted(user, dataset, image, job) -> dict[str, bool]:
    return {scope: can(user, scope, target_of(scope, dataset, image, job)) for scope in SCOPES}


@pytest.mark.parametrize("role", ROLES)
def test_role_gets_exactly_the_scopes_of_the_table_on_a_private_dataset(setting, role):
    """One row of the table per test: a failure lists every scope that differs."""
    dataset, image, job = setting
    user = actor(dataset, role)
    expected = {scope: row[ROLES.index(role)] for scope, row in TABLE.items()}
    assert granted(user, dataset, image, job) == expected


PUBLIC_ONLY = {"dataset:view", "image:view"}


@pytest.mark.parametrize("role", ["outsider", "labeler"])
def test_public_dataset_lets_every_signed_in_user_view_it_and_nothing_more(setting, role):
    dataset, image, job = setting
    dataset.public = True
    db.session.commit()
    user = actor(dataset, role)
    dataset_scopes = [scope for scope in TABLE if scope.startswith(("dataset:", "image:"))]
    expected = {scope: scope in PUBLIC_ONLY or TABLE[scope][ROLES.index(role)] for scope in dataset_scopes}
    assert {scope: can(user, scope, target_of(scope, dataset, image, job)) for scope in dataset_scopes} == expected


def test_outsider_sees_a_public_dataset_in_lists_and_all_its_images(setting):
    dataset, _, _ = setting
    outsider = make_user()
    assert db.session.scalars(visible_datasets(db.select(Dataset), outsider)).all() == []
    dataset.public = True
    db.session.commit()
    assert db.session.scalars(visible_datasets(db.select(Dataset), outsider)).all() == [dataset]
    assert len(db.session.scalars(visible_images(db.select(Image), outsider, dataset)).all()) == 3


def test_anonymous_user_can_nothing(setting):
    from flask_login import AnonymousUserMixin

    dataset, image, job = setting
    dataset.public = True
    db.session.commit()
    for scope in SCOPES:
        assert can(AnonymousUserMixin(), scope, target_of(scope, dataset, image, job)) is False, scope


@pytest.mark.parametrize("role", ["admin", "owner", "manager", "reviewer", "labeler"])
def test_deactivated_user_can_nothing(setting, role):
    dataset, image, job = setting
    dataset.public = True
    user = actor(dataset, role)
    user.active = False
    db.session.commit()
    for scope in SCOPES:
        assert can(user, scope, target_of(scope, dataset, image, job)) is False, scope


def test_labeler_sees_only_the_images_assigned_to_them(setting):
    dataset, image, _ = setting
    labeler = member(dataset, "labeler")
    other_labeler = member(dataset, "labeler")
    assert db.session.scalars(visible_images(db.select(Image), labeler, dataset)).all() == []
    assert not sees_image(labeler, image)

    assign(dataset, image.id, labeler)
    assert db.session.scalars(visible_images(db.select(Image), labeler, dataset)).all() == [image]
    assert sees_image(labeler, image)
    assert can(labeler, "image:view", image)
    assert not sees_image(other_labeler, image), "an assignment is personal"
    second = db.session.scalars(db.select(Image).where(Image.id != image.id)).first()
    assert not sees_image(labeler, second)


@pytest.mark.parametrize("role", ["admin", "owner", "manager", "reviewer"])
def test_everyone_above_labeler_sees_every_image(setting, role):
    dataset, _, _ = setting
    user = actor(dataset, role)
    assert len(db.session.scalars(visible_images(db.select(Image), user, dataset)).all()) == 3


def test_visible_images_never_leaks_another_datasets_images(setting):
    dataset, _, _ = setting
    other = make_dataset(dataset.owner, name="Other")
    insert_images(other, 2, start=100)
    manager = member(dataset, "manager")
    ids = db.session.scalars(visible_images(db.select(Image.dataset_id), manager, dataset)).all()
    assert set(ids) == {dataset.id}


def test_visible_datasets_lists_own_member_and_public_datasets_but_admins_see_all(app_ctx):
    alice, bob = make_user(), make_user()
    mine = make_dataset(alice, name="Mine")
    shared = make_dataset(bob, name="Shared")
    public = make_dataset(bob, name="Public", public=True)
    private = make_dataset(bob, name="Private")
    db.session.add_all([])
    from tests.factories import add_member

    add_member(shared, alice, "labeler")
    names = lambda user: sorted(d.name for d in db.session.scalars(visible_datasets(db.select(Dataset), user)))  # noqa: E731
    assert names(alice) == ["Mine", "Public", "Shared"]
    assert names(make_user(is_admin=True)) == sorted(d.name for d in (mine, shared, public, private))


def test_losing_membership_loses_access(setting):
    dataset, _, _ = setting
    reviewer = member(dataset, "reviewer")
    assert can(reviewer, "dataset:view", dataset)
    from models import DatasetMember

    db.session.execute(db.delete(DatasetMember).where(DatasetMember.user_id == reviewer.id))
    db.session.commit()
    # Outside a request nothing is memoised: the same app context sees the change at once.
    assert not can(reviewer, "dataset:view", dataset)


def test_a_request_memoises_roles_and_assignments_and_the_next_request_starts_afresh(app, setting):
    from sqlalchemy import event

    from models import Assignment
    from tests.factories import assign

    dataset, image, _ = setting
    labeler = member(dataset, "labeler")
    assign(dataset, image.id, labeler)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        with app.test_request_context():
            assert can(labeler, "image:view", image) and can(labeler, "image:annotate", image)
            assert can(labeler, "image:view", image)
            asked = [s for s in statements if "assignment" in s.lower() or "dataset_member" in s.lower()]
            assert len(asked) == 2  # one role lookup, one assignment lookup, however often asked
        db.session.execute(db.delete(Assignment).where(Assignment.labeler_id == labeler.id))
        db.session.commit()
        with app.test_request_context():
            assert not can(labeler, "image:view", image)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


class TestJobs:
    def _job(self, dataset, user, kind="import") -> Job:
        job = Job(id=f"{kind}-{user.id}-{dataset.id if dataset else 0}", kind=kind, dataset_id=dataset.id if dataset else None, user_id=user.id)
        db.session.add(job)
        db.session.commit()
        return job

    def test_job_creator_can_view_and_cancel_their_job_even_as_a_labeler(self, setting):
        dataset, _, _ = setting
        labeler = member(dataset, "labeler")
        job = self._job(dataset, labeler)
        assert can(labeler, "job:view", job)
        assert can(labeler, "job:cancel", job)

    def test_another_labeler_can_neither_view_nor_cancel_someone_elses_job(self, setting):
        dataset, _, _ = setting
        creator, other = member(dataset, "labeler"), member(dataset, "labeler")
        job = self._job(dataset, creator)
        assert not can(other, "job:view", job)
        assert not can(other, "job:cancel", job)

    def test_manager_can_cancel_a_members_job_on_their_dataset(self, setting):
        dataset, _, _ = setting
        job = self._job(dataset, member(dataset, "labeler"))
        assert can(member(dataset, "manager"), "job:cancel", job)

    def test_outsider_can_neither_view_nor_cancel_a_job_of_a_private_dataset(self, setting):
        dataset, _, job = setting
        outsider = make_user()
        assert not can(outsider, "job:view", job)
        assert not can(outsider, "job:cancel", job)

    def test_job_without_a_dataset_belongs_to_its_creator_and_admins(self, app_ctx):
        creator, other, admin = make_user(), make_user(), make_user(is_admin=True)
        job = self._job(None, creator, kind="maintenance")
        assert can(creator, "job:view", job) and can(creator, "job:cancel", job)
        assert not can(other, "job:view", job) and not can(other, "job:cancel", job)
        assert can(admin, "job:view", job) and can(admin, "job:cancel", job)

    def test_deactivated_creator_cannot_cancel_their_job(self, setting):
        dataset, _, _ = setting
        creator = member(dataset, "manager")
        job = self._job(dataset, creator)
        creator.active = False
        db.session.commit()
        assert not can(creator, "job:view", job)
        assert not can(creator, "job:cancel", job)

    def test_job_rows_default_to_queued(self, setting):
        _, _, job = setting
        assert job.status == JobStatus.queued


def test_requires_refuses_an_unknown_scope_when_the_view_is_defined():
    with pytest.raises(KeyError):
        requires("dataset:fly")


def test_requires_records_its_scope_on_the_view():
    view = requires("dataset:view")(lambda dataset: None)
    assert view.permission_scope == "dataset:view"


def test_labeler_annotates_only_assigned_images_and_not_once_accepted(setting):
    from models import ImageState

    dataset, image, _ = setting
    labeler, other_labeler = member(dataset, "labeler"), member(dataset, "labeler")
    assert not can(labeler, "image:annotate", image)
    assign(dataset, image.id, labeler)
    assert can(labeler, "image:annotate", image)
    assert not can(other_labeler, "image:annotate", image), "an assignment is personal"
    image.state = ImageState.accepted
    db.session.commit()
    assert not can(labeler, "image:annotate", image)
    assert can(member(dataset, "reviewer"), "image:annotate", image), "reviewers still correct accepted images"


def test_public_dataset_gives_outsiders_nothing_to_annotate(setting):
    dataset, image, _ = setting
    dataset.public = True
    db.session.commit()
    assert not can(make_user(), "image:annotate", image)
    assert not can(member(dataset, "labeler"), "image:annotate", image)
