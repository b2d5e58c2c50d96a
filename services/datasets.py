"""Datasets: create, list, update, members, delete (a job) and counters."""

from dataclasses import dataclass

from sqlalchemy import func, select

from core.errors import Conflict, Forbidden, Invalid, NotFound, parse_choice
from core.extensions import db
from core.permissions import can, forget_roles, role_of, sees_all_images, visible_datasets, visible_images
from models import Annotation, Dataset, DatasetMember, DatasetType, Image, ImageState, Job, Label, LabelingTask, Role, User
from services.job_kinds import DELETE_DATASET, REFRESH_COUNTERS
from services.jobs import start_job
from services.images import recount_tags
from services.labels import recount_labels
from services.tasks import hand_back

SORTS = {"name": Dataset.name, "created_at": Dataset.created_at, "image_count": Dataset.image_count}
MAX_NAME = 200
MAX_DESCRIPTION = 5000


def parse_type(value) -> DatasetType:
    return parse_choice(DatasetType, value, "type", "dataset type")


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise Invalid("A dataset needs a name", details={"field": "name"})
    if len(name) > MAX_NAME:
        raise Invalid(f"The name is longer than {MAX_NAME} characters", details={"field": "name"})
    return name


def _clean_description(description) -> str:
    description = description or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise Invalid(f"The description must be text of at most {MAX_DESCRIPTION} characters", details={"field": "description"})
    return description


def create_dataset(owner: User, name: str, type: str, description: str = "") -> Dataset:
    """Create a dataset; its creator becomes its owner."""
    dataset = Dataset(name=_clean_name(name), type=parse_type(type), description=_clean_description(description), owner_id=owner.id)
    dataset.members.append(DatasetMember(user_id=owner.id, role=Role.owner))
    db.session.add(dataset)
    db.session.commit()
    return dataset


@dataclass
class DatasetQuery:
    search: str = ""
    type: str = ""
    archived: bool = False
    sort: str = "created_at"
    order: str = "desc"
    limit: int = 24
    offset: int = 0

    def validate(self) -> "DatasetQuery":
        if self.type:
            parse_type(self.type)
        if self.sort not in SORTS:
            raise Invalid(f"Unknown sort {self.sort!r}; use one of {', '.join(SORTS)}", details={"field": "sort"})
        if self.order not in ("asc", "desc"):
            raise Invalid("order must be asc or desc", details={"field": "order"})
        if not 1 <= self.limit <= 100:
            raise Invalid("limit must be between 1 and 100", details={"field": "limit"})
        if self.offset < 0:
            raise Invalid("offset must not be negative", details={"field": "offset"})
        return self


def list_datasets(user: User, q: DatasetQuery) -> tuple[list[Dataset], int]:
    """One page of the datasets the user may see, and how many match in all."""
    q.validate()
    query = visible_datasets(select(Dataset), user).where(Dataset.archived.is_(q.archived))
    if q.search:
        pattern = "%" + q.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Dataset.name.ilike(pattern, escape="\\"))
    if q.type:
        query = query.where(Dataset.type == parse_type(q.type))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    column = SORTS[q.sort]
    ordering = (column.asc(), Dataset.id.asc()) if q.order == "asc" else (column.desc(), Dataset.id.desc())
    items = db.session.scalars(query.order_by(*ordering).limit(q.limit).offset(q.offset)).all()
    return list(items), total


def preview_image_ids(datasets: list[Dataset], user: User, per_dataset: int = 4) -> dict[int, list[int]]:
    """The first few images of each dataset the user may see, for card thumbnails (one indexed query each)."""
    return {
        d.id: list(db.session.scalars(visible_images(select(Image.id), user, d).order_by(Image.id).limit(per_dataset)))
        for d in datasets
    }


def labels_of(datasets: list[Dataset]) -> dict[int, list[Label]]:
    """Each dataset's labels in display order, in one query for all of them."""
    by_dataset = {d.id: [] for d in datasets}
    query = select(Label).where(Label.dataset_id.in_(list(by_dataset))).order_by(Label.position, Label.id)
    for label in db.session.scalars(query):
        by_dataset[label.dataset_id].append(label)
    return by_dataset


def update_dataset(dataset: Dataset, **changes) -> Dataset:
    """Rename, describe, archive or publish a dataset."""
    unknown = set(changes) - {"name", "description", "archived", "public"}
    if unknown:
        raise Invalid(f"Cannot change {', '.join(sorted(unknown))}")
    if "name" in changes:
        dataset.name = _clean_name(changes["name"])
    if "description" in changes:
        dataset.description = _clean_description(changes["description"])
    for flag in ("archived", "public"):
        if flag in changes:
            if not isinstance(changes[flag], bool):
                raise Invalid(f"{flag} must be true or false", details={"field": flag})
            setattr(dataset, flag, changes[flag])
    db.session.commit()
    return dataset


def request_delete(dataset: Dataset, user: User) -> Job:
    """Start the delete job; the dataset shows as deleting until it is gone.

    A live delete job is answered again (DELETE_DATASET is one per dataset). While it is active
    nothing new starts on the dataset (services.jobs.start_job, uploads).
    """
    return start_job(DELETE_DATASET, dataset.id, dataset=dataset, user=user, total=dataset.image_count)


def request_refresh_counters(dataset: Dataset, user: User) -> Job:
    return start_job(REFRESH_COUNTERS, dataset.id, dataset=dataset, user=user)


def parse_role(value) -> Role:
    return parse_choice(Role, value, "role", "role")


def list_members(dataset: Dataset) -> list[DatasetMember]:
    return db.session.scalars(select(DatasetMember).where(DatasetMember.dataset_id == dataset.id).order_by(DatasetMember.id)).all()


def _lock_members(dataset: Dataset) -> None:
    """Serialise member changes of one dataset: without it, two owners demoting each other at once
    would both see the other one left.

    Then the dataset is read again, as its recorded owner may have changed since it was loaded.
    """
    Dataset.lock(dataset.id)
    db.session.refresh(dataset)


def _owner_ids(dataset: Dataset) -> list[int]:
    """Who owns the dataset: its recorded owner first, then every member holding the owner role."""
    others = db.session.scalars(
        select(DatasetMember.user_id)
        .where(DatasetMember.dataset_id == dataset.id, DatasetMember.role == Role.owner, DatasetMember.user_id != dataset.owner_id)
        .order_by(DatasetMember.id)
    )
    return [dataset.owner_id, *others]


def _check_role_change(dataset: Dataset, by: User, target: User, current: Role | None, new: Role | None) -> None:
    """The SPEC section 4 rules for changing `target`'s role from `current` to `new` (None: no role).

    Only an owner or a site admin grants or takes away the owner role; nobody raises their own
    role; a dataset always keeps at least one owner.
    """
    if Role.owner in (current, new) and current != new and not can(by, "dataset:owners", dataset):
        raise Forbidden("Only an owner or a site admin can grant or take away the owner role")
    if target.id == by.id and new is not None and (current is None or new.rank > current.rank):
        raise Forbidden("You cannot raise your own role")
    if current == Role.owner and new != Role.owner and _owner_ids(dataset) == [target.id]:
        raise Conflict(f"{target.email} is the dataset's last owner: make someone else owner first")


def _hand_over_ownership(dataset: Dataset, leaving: User) -> None:
    # The recorded owner is who role_of() sees as owner; when they stop being one, the next owner is.
    if dataset.owner_id == leaving.id:
        dataset.owner_id = next(user_id for user_id in _owner_ids(dataset) if user_id != leaving.id)


def add_member(dataset: Dataset, email: str, role: str, *, by: User) -> DatasetMember:
    """Give an existing user a role on the dataset, or change the role they have."""
    role = parse_role(role)
    user = User.by_email(email or "")
    if user is None:
        raise NotFound(f"No user with the email {email!r}; an admin can create the account first", details={"field": "email"})
    _lock_members(dataset)
    member = db.session.scalar(select(DatasetMember).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == user.id))
    current = Role.owner if user.id == dataset.owner_id else member.role if member else None
    _check_role_change(dataset, by, user, current, role)
    if current == Role.owner and role != Role.owner:
        _hand_over_ownership(dataset, user)
    if member is None:
        member = DatasetMember(dataset_id=dataset.id, user_id=user.id, role=role)
        db.session.add(member)
    member.role = role
    db.session.commit()
    forget_roles(dataset)
    return member


def remove_member(dataset: Dataset, member_id: int, *, by: User) -> None:
    """Take a user's role on the dataset away (anyone may leave, except its last owner)."""
    _lock_members(dataset)
    member = db.session.get(DatasetMember, member_id)
    if member is None or member.dataset_id != dataset.id:
        raise NotFound(f"Member {member_id} not found")
    current = Role.owner if member.user_id == dataset.owner_id else member.role
    _check_role_change(dataset, by, member.user, current, None)
    if current == Role.owner:
        _hand_over_ownership(dataset, member.user)
    db.session.delete(member)
    db.session.flush()
    forget_roles(dataset)
    # Left with no role there (an attached workforce may still give one), they hand their open images back.
    if role_of(member.user, dataset) is None:
        hand_back(member.user_id, db.session.scalars(select(LabelingTask.id).where(LabelingTask.dataset_id == dataset.id)).all())
    db.session.commit()
    forget_roles(dataset)


def recount(dataset_id: int) -> None:
    """Recompute a dataset's counters, its labels' included, from its rows (the refresh-counters job calls this)."""
    count, total = db.session.execute(
        select(func.count(Image.id), func.coalesce(func.sum(Image.byte_size), 0)).where(Image.dataset_id == dataset_id)
    ).one()
    annotated = db.session.scalar(
        select(func.count(Image.id)).where(Image.dataset_id == dataset_id, Image.state.not_in([ImageState.unlabeled]))
    )
    annotations = db.session.scalar(
        select(func.count(Annotation.id)).join(Image, Image.id == Annotation.image_id).where(Image.dataset_id == dataset_id)
    )
    dataset = db.session.get(Dataset, dataset_id)
    dataset.image_count, dataset.total_bytes = count, int(total)
    dataset.annotated_count, dataset.annotation_count = annotated, annotations
    recount_labels(dataset_id)
    recount_tags(dataset_id)


COUNTERS = ("image_count", "annotated_count", "annotation_count", "total_bytes")


def counters_of(datasets: list[Dataset], user: User) -> dict[int, dict]:
    """Each dataset's image counters as the user may see them, by dataset id.

    The kept counters for whoever sees every image; for a labeler, counted over the images
    assigned to them (two queries for each such dataset), so the numbers tell nothing of the rest.
    """
    counters = {}
    for dataset in datasets:
        if sees_all_images(user, dataset):
            counters[dataset.id] = {name: getattr(dataset, name) for name in COUNTERS}
            continue
        shown = visible_images(select(Image.id, Image.byte_size, Image.state), user, dataset).subquery()
        images, total, annotated = db.session.execute(select(
            func.count(), func.coalesce(func.sum(shown.c.byte_size), 0), func.count().filter(shown.c.state != ImageState.unlabeled)
        )).one()
        annotations = db.session.scalar(
            select(func.count(Annotation.id)).where(Annotation.image_id.in_(visible_images(select(Image.id), user, dataset)))
        )
        counters[dataset.id] = {"image_count": images, "annotated_count": annotated, "annotation_count": annotations, "total_bytes": int(total)}
    return counters


def stats(dataset: Dataset, user: User) -> dict:
    """Counts in all, by state and by split, over the images the user sees, for the overview page and the API."""
    def grouped(column):
        rows = db.session.execute(visible_images(select(column, func.count()), user, dataset).group_by(column))
        return {getattr(key, "value", key): n for key, n in rows}

    counters = counters_of([dataset], user)[dataset.id]
    return {
        "images": counters["image_count"],
        "total_bytes": counters["total_bytes"],
        "by_state": grouped(Image.state),
        "by_split": grouped(Image.split),
    }
