"""THE permission table (SPEC section 4) and the only ways to ask it.

Every page, HTMX partial, API route and file download goes through `requires()` or `can()`;
lists are scoped with `visible_datasets()` / `visible_images()`. A user who may not see a dataset
gets 404 rather than 403, so its existence does not leak.
"""

from functools import wraps
from typing import Callable

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import bindparam, exists, or_, select

from core.errors import Forbidden, NotFound
from core.extensions import db
from models import Assignment, Dataset, DatasetMember, Export, Image, ImageState, Job, Role, User

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
    """The user's role on the dataset; the membership is memoised per request (`_load` reads it with the dataset)."""
    if not user.is_authenticated:
        return None
    if dataset.owner_id == user.id:
        return Role.owner
    cache = _request_memo("roles")
    key = (user.id, dataset.id)
    if key not in cache:
        cache[key] = db.session.scalar(
            select(DatasetMember.role).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == user.id)
        )
    return cache[key]


def forget_roles(dataset: Dataset) -> None:
    """Drop the request's memoised roles on the dataset: its membership has just changed, and the
    answer to that change (the members partial) is rendered in the same request."""
    cache = _request_memo("roles")
    for key in [key for key in cache if key[1] == dataset.id]:
        del cache[key]


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


def sees_whole_dataset(user: User, dataset: Dataset) -> bool:
    """Whether the user sees the dataset and every image of it, and so its kept counters and its jobs."""
    return sees_dataset(user, dataset) and sees_all_images(user, dataset)


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
    "image:view": sees_image,
    "image:annotate": annotates,
    "job:view": owns_job_or(sees_whole_dataset),
    "job:cancel": owns_job_or(role_at_least(Role.manager)),
    "export:view": role_at_least(Role.manager),  # an export and its file: whoever may export the dataset
    "users:manage": is_admin,
}


def can(user: User, scope: str, obj=None) -> bool:
    """The only question anyone asks: may this user do `scope` on `obj`?"""
    if not user.is_authenticated or not user.is_active:
        return False
    return SCOPES[scope](user, obj)


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
    if "export_id" in view_args:
        export = db.session.get(Export, view_args.pop("export_id"))
        if export is None or not can(user, "dataset:view", db.session.get(Dataset, export.dataset_id)):
            raise NotFound("Export not found")
        loaded["export"] = export
    if "job_id" in view_args:
        job = db.session.get(Job, view_args.pop("job_id"))
        if job is None or not can(user, "job:view", job):
            raise NotFound("Job not found")
        loaded["job"] = job
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
    query = (
        select(User, Dataset, DatasetMember.role)
        .select_from(User)
        .outerjoin(Dataset, Dataset.id == bindparam("dataset_id"))
        .outerjoin(DatasetMember, (DatasetMember.dataset_id == Dataset.id) & (DatasetMember.user_id == User.id))
        .where(User.id == bindparam("user_id"))
    )
    if not with_image:
        return query
    assigned = exists().where(Assignment.image_id == Image.id, Assignment.labeler_id == User.id)
    return query.outerjoin(Image, (Image.id == bindparam("image_id")) & (Image.dataset_id == Dataset.id)).add_columns(Image, assigned)


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
    user, dataset, image = row[0], row[1], row[3] if with_image else None
    if dataset is not None:
        _request_memo("roles")[(user_id, dataset.id)] = row[2]
    if image is not None:
        _request_memo("assigned")[(user_id, image.id)] = bool(row[4])
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
    return query.where(or_(Dataset.owner_id == user.id, Dataset.public, member))


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
