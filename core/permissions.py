"""THE permission table (SPEC section 4) and the only ways to ask it.

Every page, HTMX partial, API route and file download goes through `requires()` or `can()`;
lists are scoped with `visible_datasets()` / `visible_images()`. A user who may not see a dataset
gets 404 rather than 403, so its existence does not leak.
"""

from dataclasses import dataclass
from functools import wraps
from typing import Callable

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import bindparam, case, exists, func, or_, select

from core.errors import Forbidden, NotFound
from core.extensions import db
from models import (
    AcceptanceSample,
    Assignment,
    Dataset,
    DatasetMember,
    DatasetWorkforce,
    Export,
    Image,
    ImageState,
    Job,
    LabelingTask,
    Role,
    TaskMember,
    User,
    Workforce,
    WorkforceMember,
    WorkforceRole,
)

Rule = Callable[[User, object], bool]


def _request_memo(name: str) -> dict:
    """A dict that lives as long as the current request (a fresh one outside requests).

    Not `g`: a request reuses an app context that is already pushed (tests, jobs), so `g` can
    outlive the request and serve a role or an assignment that has changed since.
    """
    if not has_request_context():
        return {}
    memo = request._get_current_object().__dict__.setdefault("_loupe_memo", {})
    return memo.setdefault(name, {})


# The dataset role a workforce attached to a dataset gives each of its team roles there.
TEAM_ROLES = {WorkforceRole.labeler: Role.labeler, WorkforceRole.reviewer: Role.reviewer, WorkforceRole.team_admin: Role.manager}


def _team_roles_query():
    """The team roles the user (bound `user_id`) holds on the dataset (correlated) through attached workforces."""
    return (
        select(WorkforceMember.role)
        .join(DatasetWorkforce, DatasetWorkforce.workforce_id == WorkforceMember.workforce_id)
        .where(WorkforceMember.user_id == bindparam("user_id"), DatasetWorkforce.dataset_id == Dataset.id)
    )


def strongest_role(member_role: Role | str | None, team_roles) -> Role | None:
    """The one role a person holds: the strongest of their own membership and what their workforces give."""
    roles = [Role(member_role)] if member_role else []
    roles += [TEAM_ROLES[WorkforceRole(team_role)] for team_role in team_roles if team_role]
    return max(roles, key=lambda role: role.rank) if roles else None


def role_of(user: User, dataset: Dataset) -> Role | None:
    """The user's role on the dataset: ownership, their membership, or the roles their workforces
    attached to the dataset give (the strongest). Memoised per request (`_load` reads it with the dataset)."""
    if not user.is_authenticated:
        return None
    if dataset.owner_id == user.id:
        return Role.owner
    cache = _request_memo("roles")
    key = (user.id, dataset.id)
    if key not in cache:
        member_role = db.session.scalar(
            select(DatasetMember.role).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == user.id)
        )
        team_roles = db.session.scalars(_team_roles_query().where(Dataset.id == dataset.id), {"user_id": user.id}).all()
        cache[key] = strongest_role(member_role, team_roles)
    return cache[key]


def forget_roles(dataset: Dataset) -> None:
    """Drop the request's memoised roles on the dataset: its membership has just changed, and the
    answer to that change (the members partial) is rendered in the same request."""
    cache = _request_memo("roles")
    for key in [key for key in cache if key[1] == dataset.id]:
        del cache[key]


def _dataset_of(obj) -> Dataset:
    if isinstance(obj, Dataset):
        return obj
    if isinstance(obj, AcceptanceSample):
        obj = db.session.get(LabelingTask, obj.task_id)
    return obj.dataset if isinstance(obj, Job) else db.session.get(Dataset, obj.dataset_id)


def is_admin(user: User, obj=None) -> bool:
    return bool(user.is_authenticated and user.is_admin)


def role_at_least(minimum: Role) -> Rule:
    def rule(user: User, obj) -> bool:
        if is_admin(user):
            return True
        role = role_of(user, _dataset_of(obj))
        return role is not None and role.rank >= minimum.rank

    return rule


def sees_dataset(user: User, dataset: Dataset) -> bool:
    return is_admin(user) or dataset.public or role_of(user, dataset) is not None


def sees_whole_dataset(user: User, dataset: Dataset) -> bool:
    """Whether the user sees the dataset and every image of it, and so its kept counters and its jobs."""
    return sees_dataset(user, dataset) and sees_all_images(user, dataset)


def _repetition_query(image_id, user_id):
    """The repetition of the task in which the image is the user's (NULL: it is not theirs)."""
    return (
        select(func.max(LabelingTask.repetition))
        .where(Assignment.image_id == image_id, Assignment.labeler_id == user_id, Assignment.task_id == LabelingTask.id)
        .scalar_subquery()
    )


def assigned_repetition(user: User, image: Image) -> int | None:
    """None unless a task gives the image to the user; else that task's repetition (above 1: the user
    labels a version of their own, services/repetition.py). Memoised per request: viewing, annotating
    and saving all ask, and `load_user` reads it with the URL's image."""
    cache = _request_memo("assigned")
    key = (user.id, image.id)
    if key not in cache:
        cache[key] = db.session.scalar(select(_repetition_query(image.id, user.id)))
    return cache[key]


def is_assigned(user: User, image: Image) -> bool:
    return assigned_repetition(user, image) is not None


def sees_image(user: User, image: Image) -> bool:
    dataset = db.session.get(Dataset, image.dataset_id)
    return sees_dataset(user, dataset) and (sees_all_images(user, dataset) or is_assigned(user, image))


def annotates(user: User, image: Image) -> bool:
    """Reviewers and up annotate any image of the dataset; a labeler only their assigned images, until accepted."""
    if is_admin(user):
        return True
    role = role_of(user, db.session.get(Dataset, image.dataset_id))
    if role is None:
        return False
    if role.rank >= Role.reviewer.rank:
        return True
    return image.state != ImageState.accepted and is_assigned(user, image)


def annotatable(user: User, dataset: Dataset, images: list[Image]) -> set[int]:
    """Which of the dataset's images the user may annotate: annotates() for many images, in one query."""
    if is_admin(user):
        return {i.id for i in images}
    role = role_of(user, dataset)
    if role is None:
        return set()
    if role.rank >= Role.reviewer.rank:
        return {i.id for i in images}
    assigned = set(db.session.scalars(
        select(Assignment.image_id).where(Assignment.labeler_id == user.id, Assignment.image_id.in_([i.id for i in images]))
    ))
    return {i.id for i in images if i.id in assigned and i.state != ImageState.accepted}


def works_on_task(user: User, task: LabelingTask) -> bool:
    """Whether the task hands images to the user."""
    return bool(db.session.scalar(select(exists().where(TaskMember.task_id == task.id, TaskMember.user_id == user.id))))


def sees_task(user: User, task: LabelingTask) -> bool:
    """Reviewers and up see every task of the dataset; a labeler the tasks they work on."""
    return role_at_least(Role.reviewer)(user, task) or (sees_dataset(user, _dataset_of(task)) and works_on_task(user, task))


def _workforce_role(user: User, workforce: Workforce) -> WorkforceRole | None:
    role = db.session.scalar(
        select(WorkforceMember.role).where(WorkforceMember.workforce_id == workforce.id, WorkforceMember.user_id == user.id)
    )
    return WorkforceRole(role) if role else None


def sees_workforce(user: User, workforce: Workforce) -> bool:
    return is_admin(user) or workforce.created_by_id == user.id or _workforce_role(user, workforce) is not None


def manages_workforce(user: User, workforce: Workforce) -> bool:
    return is_admin(user) or workforce.created_by_id == user.id or _workforce_role(user, workforce) == WorkforceRole.team_admin


def manages_any_dataset(user: User, obj=None) -> bool:
    """Site admins, and whoever owns or manages a dataset, make workforces (SPEC section 4)."""
    if is_admin(user):
        return True
    managed = exists().where(DatasetMember.user_id == user.id, DatasetMember.role.in_([Role.manager, Role.owner]))
    owned = exists().where(Dataset.owner_id == user.id)
    return bool(db.session.scalar(select(or_(owned, managed))))


def owns_job_or(rule: Rule) -> Rule:
    def check(user: User, job: Job) -> bool:
        if is_admin(user) or job.user_id == user.id:
            return True
        return job.dataset_id is not None and job.dataset is not None and rule(user, job.dataset)

    return check


SCOPES: dict[str, Rule] = {
    "dataset:view": sees_dataset,
    "dataset:manage": role_at_least(Role.owner),  # rename, archive, publish, delete
    "dataset:import": role_at_least(Role.manager),  # upload, delete images, splits, folders
    "dataset:members": role_at_least(Role.manager),
    "dataset:owners": role_at_least(Role.owner),  # grant or take away the owner role
    "dataset:labels": role_at_least(Role.manager),
    "dataset:export": role_at_least(Role.manager),
    "dataset:review": role_at_least(Role.reviewer),
    "dataset:tasks": role_at_least(Role.manager),  # create, reassign, delete labeling tasks
    "dataset:sampling": role_at_least(Role.owner),  # acceptance sampling verdicts
    "image:view": sees_image,
    "image:annotate": annotates,
    "job:view": owns_job_or(sees_whole_dataset),
    "job:cancel": owns_job_or(role_at_least(Role.manager)),
    "export:view": role_at_least(Role.manager),  # an export and its file: whoever may export the dataset
    "task:view": sees_task,
    "task:work": works_on_task,  # ask the task for one's next image, put an image back ("Later")
    "task:manage": role_at_least(Role.manager),
    "task:sampling": role_at_least(Role.owner),  # draw and list a task's acceptance samples
    "sample:view": role_at_least(Role.owner),
    "sample:decide": role_at_least(Role.owner),
    "workforce:view": sees_workforce,
    "workforce:manage": manages_workforce,  # members, invites, attaching to datasets
    "workforces:create": manages_any_dataset,
    "users:manage": is_admin,
}


def can(user: User, scope: str, obj=None) -> bool:
    """The only question anyone asks: may this user do `scope` on `obj`?"""
    if not user.is_authenticated or not user.is_active:
        return False
    return SCOPES[scope](user, obj)


@dataclass(frozen=True)
class UrlObject:
    """An object a URL names by id: `requires()` loads it, and 404s unless `visible` allows the user to see it."""

    param: str  # the URL parameter, e.g. task_id
    name: str  # the view's keyword argument, and the noun of the scopes checked on it
    model: type
    visible: str  # the scope that must allow the user to see it
    parent: str | None = None  # a column that must match the URL's dataset, when the URL names one


# Every URL object but the dataset and its image, which `_dataset_and_image` reads in one query
# with the user. A new route naming a new kind of object adds one row here.
URL_OBJECTS = (
    UrlObject("export_id", "export", Export, "dataset:view"),
    UrlObject("job_id", "job", Job, "job:view"),
    UrlObject("task_id", "task", LabelingTask, "task:view", parent="dataset_id"),
    UrlObject("sample_id", "sample", AcceptanceSample, "sample:view"),
    UrlObject("workforce_id", "workforce", Workforce, "workforce:view"),
)


def _load(view_args: dict, user: User) -> dict:
    """Load the URL's objects, 404 for anything missing or not visible to the user."""
    loaded = {}
    if "dataset_id" in view_args:
        image_id = view_args.pop("image_id", None)
        dataset, image = _dataset_and_image(user, view_args.pop("dataset_id"), image_id)
        if dataset is None or not can(user, "dataset:view", dataset):
            raise NotFound("Dataset not found")
        loaded["dataset"] = dataset
        if image_id is not None:
            if image is None or not can(user, "image:view", image):
                raise NotFound(f"Image {image_id} not found")
            loaded["image"] = image
    for url_object in URL_OBJECTS:
        if url_object.param not in view_args:
            continue
        obj = db.session.get(url_object.model, view_args.pop(url_object.param))
        in_dataset = url_object.parent is None or "dataset" not in loaded or getattr(obj, url_object.parent, None) == loaded["dataset"].id
        # A dataset scope is asked of the object's dataset (an export is seen by whoever sees its dataset).
        seen = obj is not None and can(user, url_object.visible, _dataset_of(obj) if url_object.visible.startswith("dataset:") else obj)
        if not in_dataset or not seen:
            raise NotFound(f"{url_object.name.capitalize()} not found")
        loaded[url_object.name] = obj
    return loaded


def _dataset_and_image(user: User, dataset_id: int, image_id: int | None) -> tuple[Dataset | None, Image | None]:
    """The URL's dataset and image (None: missing, or of another dataset), read with the user's
    role and assignment (see `load_user`), or as the session's user loader read them already."""
    if not user.is_authenticated:
        image = db.session.get(Image, image_id) if image_id is not None else None
        return db.session.get(Dataset, dataset_id), image if image is not None and image.dataset_id == dataset_id else None
    loaded = _request_memo("url").get((user.id, dataset_id, image_id))
    return loaded if loaded is not None else _read_user_and_url(user.id, dataset_id, image_id)[1:]


def load_user(user_id: int) -> User | None:
    """The user of a request's session, read with what `requires()` asks of the URL next.

    When the URL names a dataset (and an image), the same query reads it, the user's membership
    of it, the image and whether the image is assigned to the user, into the request's memos:
    every page and save of an image asks them all, so that is one round trip instead of five.
    """
    view_args = request.view_args or {}
    if "dataset_id" not in view_args:
        return db.session.get(User, user_id)
    return _read_user_and_url(user_id, view_args["dataset_id"], view_args.get("image_id"))[0]


def _user_and_url_query(with_image: bool):
    """The query of `_read_user_and_url`, its values bound at execution (user_id, dataset_id, image_id)."""
    # The strongest team role (or NULL), so the row stays one row.
    strength = case({team_role: TEAM_ROLES[team_role].rank for team_role in WorkforceRole}, value=WorkforceMember.role)
    team_roles = _team_roles_query().order_by(strength.desc()).limit(1).scalar_subquery()
    query = (
        select(User, Dataset, DatasetMember.role, team_roles)
        .select_from(User)
        .outerjoin(Dataset, Dataset.id == bindparam("dataset_id"))
        .outerjoin(DatasetMember, (DatasetMember.dataset_id == Dataset.id) & (DatasetMember.user_id == User.id))
        .where(User.id == bindparam("user_id"))
    )
    if not with_image:
        return query
    return query.outerjoin(Image, (Image.id == bindparam("image_id")) & (Image.dataset_id == Dataset.id)).add_columns(
        Image, _repetition_query(Image.id, User.id)
    )


# Built once: building this query and its cache key cost more than running it, on every request.
_USER_AND_URL = {with_image: _user_and_url_query(with_image) for with_image in (False, True)}


def _read_user_and_url(user_id: int, dataset_id: int, image_id: int | None) -> tuple[User | None, Dataset | None, Image | None]:
    """One query: the user, the dataset and the image (None: missing, or of another dataset), with
    the user's role and the image's assignment to them memoised for this request."""
    with_image = image_id is not None
    row = db.session.execute(
        _USER_AND_URL[with_image], {"user_id": user_id, "dataset_id": dataset_id, "image_id": image_id}
    ).one_or_none()
    if row is None:
        return None, None, None
    user, dataset, image = row[0], row[1], row[4] if with_image else None
    if dataset is not None:
        _request_memo("roles")[(user_id, dataset.id)] = strongest_role(row[2], [row[3]])
    if image is not None:
        _request_memo("assigned")[(user_id, image.id)] = row[5]
    _request_memo("url")[(user_id, dataset_id, image_id)] = (dataset, image)
    return user, dataset, image


def requires(scope: str):
    """Load the URL's objects and check `scope` on the most specific one; pass them to the view."""
    if scope not in SCOPES:
        raise KeyError(f"unknown permission scope {scope!r}")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = current_user._get_current_object()  # once: every check reads it, and the proxy costs per read
            loaded = _load(kwargs, user)
            # The scope's noun names the object it is checked on: image:view on the image, etc.
            target = loaded.get(scope.split(":", 1)[0])
            if not can(user, scope, target):
                raise Forbidden("You do not have permission to do this")
            return view(*args, **kwargs, **loaded)

        wrapper.permission_scope = scope
        return wrapper

    return decorator


def public(view):
    """Mark a view as reachable without signing in (everything else requires login)."""
    view.public = True
    return view


def visible_datasets(query, user: User):
    """Scope a Dataset query to what the user may see."""
    if is_admin(user):
        return query
    member = exists().where(DatasetMember.dataset_id == Dataset.id, DatasetMember.user_id == user.id)
    team = exists(_team_roles_query().params(user_id=user.id))
    return query.where(or_(Dataset.owner_id == user.id, Dataset.public, member, team))


def visible_workforces(query, user: User):
    """Scope a Workforce query to what the user may see: sees_workforce() for many."""
    if is_admin(user):
        return query
    member = exists().where(WorkforceMember.workforce_id == Workforce.id, WorkforceMember.user_id == user.id)
    return query.where(or_(Workforce.created_by_id == user.id, member))


def sees_all_images(user: User, dataset: Dataset) -> bool:
    """Everyone who sees a dataset sees all its images, except labelers (their assigned ones)."""
    return is_admin(user) or dataset.public or role_of(user, dataset) != Role.labeler


def visible_images(query, user: User, dataset: Dataset):
    """Scope an Image query of one dataset: labelers see only the images assigned to them.

    Everything derived from images (tag and folder names, counts) is scoped through this too, so
    a labeler learns nothing about the images they may not see.
    """
    query = query.where(Image.dataset_id == dataset.id)
    if sees_all_images(user, dataset):
        return query
    return query.where(exists().where(Assignment.image_id == Image.id, Assignment.labeler_id == user.id))


def visible_jobs(query, user: User, dataset: Dataset):
    """Scope a Job query to one dataset's jobs the user may see: all of them, or (labelers) those they started."""
    query = query.where(Job.dataset_id == dataset.id)
    if sees_whole_dataset(user, dataset):
        return query
    return query.where(Job.user_id == user.id)
