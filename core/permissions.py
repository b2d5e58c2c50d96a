"""THE permission table (SPEC section 4) and the only ways to ask it.

Every page, HTMX partial, API route and file download goes through `requires()` or `can()`;
lists are scoped with `visible_datasets()` / `visible_images()`. A user who may not see a dataset
gets 404 rather than 403, so its existence does not leak.
"""

from functools import wraps
from typing import Callable

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import exists, or_, select

from core.errors import Forbidden, NotFound
from core.extensions import db
from models import Assignment, Dataset, DatasetMember, Image, ImageState, Job, Role, User

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


def role_of(user: User, dataset: Dataset) -> Role | None:
    """The user's role on the dataset, memoised per request."""
    if not user.is_authenticated:
        return None
    cache = _request_memo("roles")
    key = (user.id, dataset.id)
    if key not in cache:
        if dataset.owner_id == user.id:
            cache[key] = Role.owner
        else:
            cache[key] = db.session.scalar(
                select(DatasetMember.role).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == user.id)
            )
    return cache[key]


def _dataset_of(obj) -> Dataset:
    return obj if isinstance(obj, Dataset) else obj.dataset if isinstance(obj, Job) else db.session.get(Dataset, obj.dataset_id)


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


def is_assigned(user: User, image: Image) -> bool:
    """Whether the image is assigned to the user, memoised per request (viewing and annotating both ask)."""
    cache = _request_memo("assigned")
    key = (user.id, image.id)
    if key not in cache:
        cache[key] = bool(
            db.session.scalar(select(exists().where(Assignment.image_id == image.id, Assignment.labeler_id == user.id)))
        )
    return cache[key]


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
    "dataset:labels": role_at_least(Role.manager),
    "dataset:export": role_at_least(Role.manager),
    "dataset:review": role_at_least(Role.reviewer),
    "image:view": sees_image,
    "image:annotate": annotates,
    "job:view": owns_job_or(sees_dataset),
    "job:cancel": owns_job_or(role_at_least(Role.manager)),
    "users:manage": is_admin,
}


def can(user: User, scope: str, obj=None) -> bool:
    """The only question anyone asks: may this user do `scope` on `obj`?"""
    if not user.is_authenticated or not user.is_active:
        return False
    return SCOPES[scope](user, obj)


def _load(view_args: dict) -> dict:
    """Load the URL's objects, 404 for anything missing or not visible to the current user."""
    loaded = {}
    if "dataset_id" in view_args:
        dataset = db.session.get(Dataset, view_args.pop("dataset_id"))
        if dataset is None or not can(current_user, "dataset:view", dataset):
            raise NotFound("Dataset not found")
        loaded["dataset"] = dataset
    if "image_id" in view_args:
        image_id = view_args.pop("image_id")
        image = db.session.get(Image, image_id)
        if image is None or image.dataset_id != loaded["dataset"].id or not can(current_user, "image:view", image):
            raise NotFound(f"Image {image_id} not found")
        loaded["image"] = image
    if "job_id" in view_args:
        job = db.session.get(Job, view_args.pop("job_id"))
        if job is None or not can(current_user, "job:view", job):
            raise NotFound("Job not found")
        loaded["job"] = job
    return loaded


def requires(scope: str):
    """Load the URL's objects and check `scope` on the most specific one; pass them to the view."""
    if scope not in SCOPES:
        raise KeyError(f"unknown permission scope {scope!r}")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            loaded = _load(kwargs)
            # The scope's noun names the object it is checked on: image:view on the image, etc.
            target = loaded.get(scope.split(":", 1)[0])
            if not can(current_user, scope, target):
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
    return query.where(or_(Dataset.owner_id == user.id, Dataset.public, member))


def sees_all_images(user: User, dataset: Dataset) -> bool:
    """Everyone who sees a dataset sees all its images, except labelers (their assigned ones)."""
    return is_admin(user) or dataset.public or role_of(user, dataset) != Role.labeler


def visible_images(query, user: User, dataset: Dataset):
    """Scope an Image query of one dataset: labelers see only the images assigned to them."""
    query = query.where(Image.dataset_id == dataset.id)
    if sees_all_images(user, dataset):
        return query
    return query.where(exists().where(Assignment.image_id == Image.id, Assignment.labeler_id == user.id))
