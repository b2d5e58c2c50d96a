"""Workforces (teams): create, rename, delete, members and their team roles, invite links, and
attaching a workforce to datasets (its members then hold their team roles there, core.permissions.role_of).

The one rule a workforce keeps: it always has at least one active team admin. Its creator becomes
the first one; the last active team admin can be neither demoted nor removed (409) until someone
else is made team admin. (The creator also manages it through `created_by_id`, but that account
may be deactivated or deleted; a team admin among the members keeps the team manageable.)
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, Gone, Invalid, NotFound, is_int, parse_choice
from core.extensions import db
from core.permissions import can, forget_roles, role_of, visible_datasets, visible_workforces
from models import Dataset, DatasetWorkforce, LabelingTask, User, Workforce, WorkforceInvite, WorkforceMember, WorkforceRole
from models.base import utcnow
from services.accounts import _check_email, _check_password
from services.tasks import hand_back

MAX_NAME = 120  # the column's size
MAX_DISPLAY_NAME = 120
DEFAULT_INVITE_HOURS = 72
MAX_INVITE_HOURS = 30 * 24
MAX_PAGE = 100
# A raw invite token is secrets.token_urlsafe(32): 43 characters. Anything much longer is no token.
MAX_TOKEN = 100


def parse_team_role(value) -> WorkforceRole:
    return parse_choice(WorkforceRole, value, "role", "team role")


def _clean_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise Invalid("A workforce needs a name", details={"field": "name"})
    if len(name) > MAX_NAME:
        raise Invalid(f"The name is longer than {MAX_NAME} characters", details={"field": "name"})
    return name


def _check_name_free(name: str, workforce: Workforce | None = None) -> None:
    others = select(Workforce.name).where(func.lower(Workforce.name) == name.lower())
    if workforce is not None:
        others = others.where(Workforce.id != workforce.id)
    clash = db.session.scalar(others.limit(1))
    if clash is not None:
        raise Conflict(f"A workforce named {clash!r} already exists; names are unique whatever their case", details={"field": "name"})


def _commit_name(name: str, before=None) -> None:
    """Commit (after `before`, e.g. a flush needing the row's id); a name taken meanwhile is a 409."""
    try:
        if before is not None:
            before()
        db.session.commit()
    except IntegrityError:  # another request took the name between the check and this commit
        db.session.rollback()
        raise Conflict(f"A workforce named {name!r} was just created by someone else; choose another name", details={"field": "name"}) from None


def _lock(workforce: Workforce) -> None:
    """Hold the workforce's row to the end of the transaction, to serialise changes to its members:
    without it, two team admins demoting each other at once would each see the other one left.
    A no-op write, as Dataset.lock does (SQLite has no row locks)."""
    db.session.execute(
        update(Workforce).where(Workforce.id == workforce.id).values(name=Workforce.name).execution_options(synchronize_session=False)
    )


def _task_ids(workforce: Workforce) -> list[int]:
    return list(db.session.scalars(select(LabelingTask.id).where(LabelingTask.workforce_id == workforce.id)))


# ---- workforces ------------------------------------------------------------------------------


def create_workforce(name, *, by: User) -> Workforce:
    """Create a workforce; its creator becomes its first team admin."""
    name = _clean_name(name)
    _check_name_free(name)
    workforce = Workforce(name=name, created_by_id=by.id)
    db.session.add(workforce)

    def add_creator():
        db.session.flush()  # the INSERT that meets a name taken meanwhile
        db.session.add(WorkforceMember(workforce_id=workforce.id, user_id=by.id, role=WorkforceRole.team_admin))

    _commit_name(name, add_creator)
    return workforce


def rename_workforce(workforce: Workforce, name) -> Workforce:
    """Give the workforce another name (unique, whatever its case)."""
    name = _clean_name(name)
    _check_name_free(name, workforce)
    workforce.name = name
    _commit_name(name)
    return workforce


def delete_workforce(workforce: Workforce) -> None:
    """Delete the workforce: its members hand back their open images of its tasks, and the
    datasets it was attached to no longer give them a role."""
    _lock(workforce)
    task_ids = _task_ids(workforce)
    for user_id in db.session.scalars(select(WorkforceMember.user_id).where(WorkforceMember.workforce_id == workforce.id)):
        hand_back(user_id, task_ids)
    db.session.delete(workforce)
    db.session.commit()


def list_workforces(user: User, *, limit: int = 50, offset: int = 0) -> tuple[list[Workforce], int]:
    """One page of the workforces the user may see, by name, and how many there are in all."""
    if not is_int(limit) or not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be between 1 and {MAX_PAGE}", details={"field": "limit"})
    if not is_int(offset) or offset < 0:
        raise Invalid("offset must be a whole number, not negative", details={"field": "offset"})
    query = visible_workforces(select(Workforce), user)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    items = db.session.scalars(query.order_by(func.lower(Workforce.name), Workforce.id).limit(limit).offset(offset)).all()
    return list(items), total


def sees_any_workforce(user: User) -> bool:
    """Whether the Workforces page has anything for the user: they may create one, or see one."""
    if can(user, "workforces:create"):
        return True
    return db.session.scalar(visible_workforces(select(Workforce.id), user).limit(1)) is not None


def member_counts(workforces: list[Workforce]) -> dict[int, int]:
    """How many members each workforce has, in one query."""
    ids = [w.id for w in workforces]
    rows = db.session.execute(
        select(WorkforceMember.workforce_id, func.count()).where(WorkforceMember.workforce_id.in_(ids)).group_by(WorkforceMember.workforce_id)
    )
    return {workforce_id: 0 for workforce_id in ids} | dict(rows.all())


def roles_in(user: User, workforces: list[Workforce]) -> dict[int, WorkforceRole | None]:
    """The user's team role in each workforce (None: not a member), in one query."""
    ids = [w.id for w in workforces]
    rows = db.session.execute(
        select(WorkforceMember.workforce_id, WorkforceMember.role).where(WorkforceMember.workforce_id.in_(ids), WorkforceMember.user_id == user.id)
    )
    return {workforce_id: None for workforce_id in ids} | {workforce_id: WorkforceRole(role) for workforce_id, role in rows}


# ---- members ---------------------------------------------------------------------------------


def list_members(workforce: Workforce) -> list[tuple[WorkforceMember, User]]:
    """The workforce's members with their accounts, team admins first, then by name."""
    order = {WorkforceRole.team_admin: 0, WorkforceRole.reviewer: 1, WorkforceRole.labeler: 2}
    rows = db.session.execute(
        select(WorkforceMember, User).join(User, User.id == WorkforceMember.user_id).where(WorkforceMember.workforce_id == workforce.id)
    ).all()
    return sorted(((m, u) for m, u in rows), key=lambda row: (order[row[0].role], row[1].name.lower(), row[0].id))


def _member(workforce: Workforce, member_id) -> WorkforceMember:
    member = db.session.get(WorkforceMember, member_id) if is_int(member_id) else None
    if member is None or member.workforce_id != workforce.id:
        raise NotFound(f"Member {member_id} not found in this workforce")
    return member


def _check_keeps_a_team_admin(workforce: Workforce, member: WorkforceMember, new_role: WorkforceRole | None) -> None:
    """Refuse to take the last active team admin away (see the module's docstring). Call under _lock()."""
    if member.role != WorkforceRole.team_admin or new_role == WorkforceRole.team_admin:
        return
    others = db.session.scalar(
        select(func.count()).select_from(WorkforceMember).join(User, User.id == WorkforceMember.user_id)
        .where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.role == WorkforceRole.team_admin,
               WorkforceMember.id != member.id, User.active.is_(True))
    )
    if others == 0 and db.session.get(User, member.user_id).active:
        raise Conflict("A workforce always keeps a team admin: make another member team admin first")


def add_member(workforce: Workforce, email, role) -> tuple[WorkforceMember, User]:
    """Add an existing, active user to the workforce with a team role."""
    role = parse_team_role(role)
    if not isinstance(email, str) or not email.strip():
        raise Invalid("Give the email of the user to add", details={"field": "email"})
    user = User.by_email(email)
    if user is None:
        raise NotFound(f"No user with the email {email.strip()[:254]!r}; send them an invite link instead", details={"field": "email"})
    if not user.active:
        raise Invalid(f"{user.email}'s account is deactivated", details={"field": "email"})
    taken = db.session.scalar(select(WorkforceMember.role).where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.user_id == user.id))
    if taken is not None:
        raise Conflict(f"{user.email} is already a member ({WorkforceRole(taken).value}); change their role instead", details={"field": "email"})
    member = WorkforceMember(workforce_id=workforce.id, user_id=user.id, role=role)
    db.session.add(member)
    try:
        db.session.commit()
    except IntegrityError:  # added by someone else at the same moment
        db.session.rollback()
        raise Conflict(f"{user.email} was just added by someone else", details={"field": "email"}) from None
    return member, user


def change_role(workforce: Workforce, member_id, role) -> tuple[WorkforceMember, User]:
    """Give a member another team role (the last team admin stays one)."""
    role = parse_team_role(role)
    _lock(workforce)
    member = _member(workforce, member_id)
    db.session.refresh(member)  # as it is now, under the lock
    _check_keeps_a_team_admin(workforce, member, role)
    member.role = role
    db.session.commit()
    return member, db.session.get(User, member.user_id)


def remove_member(workforce: Workforce, member_id) -> None:
    """Take a member out of the workforce; they hand back their open images of its tasks."""
    _lock(workforce)
    member = _member(workforce, member_id)
    db.session.refresh(member)
    _check_keeps_a_team_admin(workforce, member, None)
    hand_back(member.user_id, _task_ids(workforce))
    db.session.delete(member)
    db.session.commit()


# ---- invite links ----------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(workforce: Workforce, role, hours=DEFAULT_INVITE_HOURS, *, by: User) -> tuple[WorkforceInvite, str]:
    """A one-time sign-up link into the workforce with a team role, valid for `hours`; the raw
    token is returned this once and only its hash is kept."""
    role = parse_team_role(role)
    if not is_int(hours) or not 1 <= hours <= MAX_INVITE_HOURS:
        raise Invalid(f"An invite link lasts 1 to {MAX_INVITE_HOURS} hours (30 days)", details={"field": "hours"})
    token = secrets.token_urlsafe(32)
    invite = WorkforceInvite(
        workforce_id=workforce.id, role=role, token_hash=_hash(token), created_by_id=by.id, expires_at=utcnow() + timedelta(hours=hours)
    )
    db.session.add(invite)
    db.session.commit()
    return invite, token


def usable_invite(token) -> tuple[WorkforceInvite, Workforce]:
    """The invite a token names and its workforce, or a clear error: unknown (404), used or expired (410)."""
    invite = None
    if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN:
        invite = db.session.scalar(select(WorkforceInvite).where(WorkforceInvite.token_hash == _hash(token)))
    if invite is None:
        raise NotFound("This invite link is not valid; ask for a new one", code="invite_not_found")
    if invite.used_at is not None:
        raise Gone("This invite link has already been used; ask for a new one", code="invite_used")
    if invite.expires_at <= utcnow():
        raise Gone(f"This invite link expired on {invite.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one", code="invite_expired")
    return invite, db.session.get(Workforce, invite.workforce_id)


def _claim(invite: WorkforceInvite, user_id: int, now: datetime) -> None:
    """Mark the invite used by the user, unless it was used or expired meanwhile.

    One conditional UPDATE (as services/revisions.claim_revision does): of two people using the
    link at once, the second waits for the first's row lock and then matches no row.
    """
    claimed = db.session.execute(
        update(WorkforceInvite)
        .where(WorkforceInvite.id == invite.id, WorkforceInvite.used_at.is_(None), WorkforceInvite.expires_at > now)
        .values(used_at=now, used_by_id=user_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        raise Gone("This invite link was just used by someone else; ask for a new one", code="invite_used")


def _join(invite: WorkforceInvite, user_id: int) -> WorkforceMember:
    member = WorkforceMember(workforce_id=invite.workforce_id, user_id=user_id, role=invite.role)
    db.session.add(member)
    return member


def accept_invite(token, user: User) -> tuple[WorkforceMember, Workforce]:
    """A signed-in user joins the workforce through an invite link (which is then used up).

    A member already is told so, and the link stays unused for whoever it was meant for.
    """
    invite, workforce = usable_invite(token)
    if db.session.scalar(select(WorkforceMember.id).where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.user_id == user.id)):
        raise Conflict(f"You are already a member of {workforce.name}; the link is still unused", code="already_member")
    _claim(invite, user.id, utcnow())
    member = _join(invite, user.id)
    try:
        db.session.commit()
    except IntegrityError:  # they joined in another tab at the same moment
        db.session.rollback()
        raise Conflict(f"You are already a member of {workforce.name}", code="already_member") from None
    return member, workforce


def sign_up_with_invite(token, *, email, display_name, password) -> tuple[User, Workforce]:
    """Create an account through an invite link and join the workforce, all or nothing.

    The account follows services.accounts' rules (address, password length); a display name is
    required. A used, expired or unknown link, or an address that has an account, creates nothing.
    """
    invite, workforce = usable_invite(token)
    email = _check_email(email)
    name = display_name.strip() if isinstance(display_name, str) else ""
    if not name or len(name) > MAX_DISPLAY_NAME:
        raise Invalid(f"Give your name, 1 to {MAX_DISPLAY_NAME} characters", details={"field": "display_name"})
    _check_password(password if isinstance(password, str) else "")
    exists_message = f"A user with the email {email} already exists: sign in, then open the link again"
    if User.by_email(email):
        raise Conflict(exists_message, details={"field": "email"})
    user = User(email=email, display_name=name)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:  # the same address signed up a moment ago
        db.session.rollback()
        raise Conflict(exists_message, details={"field": "email"}) from None
    _claim(invite, user.id, utcnow())  # rolls the account back too when the link was just used
    _join(invite, user.id)
    db.session.commit()
    return user, workforce


# ---- datasets --------------------------------------------------------------------------------


def workforces_of(dataset: Dataset) -> list[tuple[Workforce, DatasetWorkforce]]:
    """The workforces attached to the dataset, by name, with when each was attached."""
    rows = db.session.execute(
        select(Workforce, DatasetWorkforce).join(DatasetWorkforce, DatasetWorkforce.workforce_id == Workforce.id)
        .where(DatasetWorkforce.dataset_id == dataset.id).order_by(func.lower(Workforce.name), Workforce.id)
    ).all()
    return [(workforce, link) for workforce, link in rows]


def attachable(dataset: Dataset, user: User) -> list[Workforce]:
    """The workforces the user sees that are not attached to the dataset yet (the attach form's choices)."""
    attached = select(DatasetWorkforce.workforce_id).where(DatasetWorkforce.dataset_id == dataset.id)
    query = visible_workforces(select(Workforce), user).where(Workforce.id.not_in(attached))
    return list(db.session.scalars(query.order_by(func.lower(Workforce.name), Workforce.id).limit(MAX_PAGE)))


def datasets_of(workforce: Workforce, user: User) -> list[Dataset]:
    """The datasets the workforce is attached to, as far as the user may see them."""
    query = visible_datasets(select(Dataset), user).join(DatasetWorkforce, DatasetWorkforce.dataset_id == Dataset.id)
    return list(db.session.scalars(query.where(DatasetWorkforce.workforce_id == workforce.id).order_by(Dataset.name, Dataset.id)))


def attach(dataset: Dataset, workforce_id, *, by: User) -> tuple[Workforce, DatasetWorkforce]:
    """Attach a workforce the user may see to the dataset (the caller checked dataset:members):
    its members then hold their team roles on the dataset."""
    if not is_int(workforce_id):
        raise Invalid("workforce_id must be a workforce's id", details={"field": "workforce_id"})
    workforce = db.session.get(Workforce, workforce_id)
    if workforce is None or not can(by, "workforce:view", workforce):
        raise NotFound(f"Workforce {workforce_id} not found", details={"field": "workforce_id"})
    message = f"{workforce.name} is already attached to this dataset"
    if db.session.scalar(select(DatasetWorkforce.id).where(DatasetWorkforce.dataset_id == dataset.id, DatasetWorkforce.workforce_id == workforce.id)):
        raise Conflict(message, details={"field": "workforce_id"})
    link = DatasetWorkforce(dataset_id=dataset.id, workforce_id=workforce.id)
    db.session.add(link)
    try:
        db.session.commit()
    except IntegrityError:  # attached by someone else at the same moment
        db.session.rollback()
        raise Conflict(message, details={"field": "workforce_id"}) from None
    forget_roles(dataset)
    return workforce, link


def detach(dataset: Dataset, workforce: Workforce) -> None:
    """Detach the workforce from the dataset. Members left with no role on the dataset hand back
    their open images of its tasks, which they could no longer open."""
    link = db.session.scalar(
        select(DatasetWorkforce).where(DatasetWorkforce.dataset_id == dataset.id, DatasetWorkforce.workforce_id == workforce.id)
    )
    if link is None:
        raise NotFound(f"{workforce.name} is not attached to this dataset")
    db.session.delete(link)
    db.session.flush()
    forget_roles(dataset)
    members = db.session.scalars(select(User).join(WorkforceMember, WorkforceMember.user_id == User.id).where(WorkforceMember.workforce_id == workforce.id))
    gone = [user.id for user in members if role_of(user, dataset) is None]
    if gone:
        task_ids = list(db.session.scalars(select(LabelingTask.id).where(LabelingTask.dataset_id == dataset.id)))
        for user_id in gone:
            hand_back(user_id, task_ids)
    db.session.commit()
    forget_roles(dataset)
