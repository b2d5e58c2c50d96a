"""Helpers of the workforce tests: a workforce with members in given team roles, tasks handing out images."""

from core.extensions import db
from models import Assignment, AssignmentState, DatasetMember, DatasetWorkforce, LabelingTask, TaskMember, Workforce, WorkforceMember, WorkforceRole
from services.workforces import create_workforce
from tests.factories import make_user


def team(creator, name: str = "Night shift", **members: str) -> tuple[Workforce, dict]:
    """A workforce made by `creator` (its first team admin) and new users by key, e.g. ann="labeler"."""
    workforce = create_workforce(name, by=creator)
    users = {}
    for key, role in members.items():
        users[key] = make_user(f"{key}-{workforce.id}@example.com", name=key.capitalize())
        db.session.add(WorkforceMember(workforce_id=workforce.id, user_id=users[key].id, role=WorkforceRole(role)))
    db.session.commit()
    return workforce, users


def member_row(workforce, user) -> WorkforceMember:
    return db.session.scalar(db.select(WorkforceMember).where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.user_id == user.id))


def task_with(dataset, image_ids, labeler, workforce=None, submitted: int = 0) -> LabelingTask:
    """A task of the dataset dealing `image_ids` to `labeler`, the first `submitted` of them handed in."""
    task = LabelingTask(dataset_id=dataset.id, name="task", workforce_id=workforce.id if workforce else None)
    db.session.add(task)
    db.session.flush()
    db.session.add(TaskMember(task_id=task.id, user_id=labeler.id))
    for n, image_id in enumerate(image_ids):
        state = AssignmentState.submitted if n < submitted else AssignmentState.assigned
        db.session.add(Assignment(task_id=task.id, image_id=image_id, labeler_id=labeler.id, state=state, position=n))
    db.session.commit()
    return task


def open_images(labeler) -> list[int]:
    """The images still in the labeler's queues."""
    return sorted(db.session.scalars(
        db.select(Assignment.image_id).where(Assignment.labeler_id == labeler.id, Assignment.state == AssignmentState.assigned)
    ))


def handed_in(labeler) -> list[int]:
    return sorted(db.session.scalars(
        db.select(Assignment.image_id).where(Assignment.labeler_id == labeler.id, Assignment.state == AssignmentState.submitted)
    ))


# For the permission matrices (tests/api, tests/web): their dataset roles stand for team roles in the
# world's workforce, which the owner made (so is its first team admin): the manager is a team admin,
# the reviewer and labeler hold those team roles, the outsider is in no team (so it does not exist for them).
TEAM_ROLE_OF = {"manager": "team_admin", "reviewer": "reviewer", "labeler": "labeler"}


def a_workforce(w) -> int:
    """The world's workforce (made once a test), not attached to the dataset."""
    if not hasattr(w, "workforce_id"):
        w.workforce_id = create_workforce("Matrix team", by=w.owner).id
    return w.workforce_id


def in_team(w, user, body=None, attached: bool = False):
    """Give the caller the team role matching their dataset role in the world's workforce (see
    TEAM_ROLE_OF), attach the workforce to the dataset when asked; returns the body unchanged."""
    workforce_id = a_workforce(w)
    role = None if user is None else db.session.scalar(db.select(DatasetMember.role).where(DatasetMember.dataset_id == w.dataset.id, DatasetMember.user_id == user.id))
    if role is not None and role.value in TEAM_ROLE_OF:
        db.session.add(WorkforceMember(workforce_id=workforce_id, user_id=user.id, role=WorkforceRole(TEAM_ROLE_OF[role.value])))
    link = db.select(DatasetWorkforce.id).where(DatasetWorkforce.dataset_id == w.dataset.id, DatasetWorkforce.workforce_id == workforce_id)
    if attached and db.session.scalar(link) is None:  # asked again for the anonymous HTMX request
        db.session.add(DatasetWorkforce(dataset_id=w.dataset.id, workforce_id=workforce_id))
    db.session.commit()
    return body or {}


def a_workforce_member(w) -> int:
    """A labeler of the world's workforce, for the member rows to change or remove."""
    row = WorkforceMember(workforce_id=a_workforce(w), user_id=make_user().id, role=WorkforceRole.labeler)
    db.session.add(row)
    db.session.commit()
    return row.id
