"""Datasets: create, list, update, members, delete (a job) and counters."""

from dataclasses import dataclass

from sqlalchemy import func, select

from core.errors import Conflict, Invalid, NotFound, parse_choice
from core.extensions import db
from core.permissions import visible_datasets, visible_images
from models import Annotation, Dataset, DatasetMember, DatasetType, Image, ImageState, Job, Label, Role, User
from services.jobs import start_job
from services.images import recount_tags
from services.labels import recount_labels

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
    """Start the delete job; the dataset shows as deleting until it is gone."""
    running = db.session.scalar(
        select(Job).where(Job.dataset_id == dataset.id, Job.kind == "delete_dataset", Job.status.in_(["queued", "running"]))
    )
    if running:
        return running
    return start_job("delete_dataset", "workers.datasets.delete_dataset", dataset.id, queue="datasets", dataset=dataset, user=user, total=dataset.image_count)


def request_refresh_counters(dataset: Dataset, user: User) -> Job:
    return start_job("refresh_counters", "workers.datasets.refresh_counters", dataset.id, queue="datasets", dataset=dataset, user=user)


def parse_role(value) -> Role:
    return parse_choice(Role, value, "role", "role")


def list_members(dataset: Dataset) -> list[DatasetMember]:
    return db.session.scalars(select(DatasetMember).where(DatasetMember.dataset_id == dataset.id).order_by(DatasetMember.id)).all()


def add_member(dataset: Dataset, email: str, role: str) -> DatasetMember:
    """Give an existing user a role on the dataset (or change the role they have)."""
    role = parse_role(role)
    user = User.by_email(email or "")
    if user is None:
        raise NotFound(f"No user with the email {email!r}; an admin can create the account first", details={"field": "email"})
    if user.id == dataset.owner_id:
        raise Conflict(f"{user.email} owns this dataset")
    member = db.session.scalar(select(DatasetMember).where(DatasetMember.dataset_id == dataset.id, DatasetMember.user_id == user.id))
    if member is None:
        member = DatasetMember(dataset_id=dataset.id, user_id=user.id, role=role)
        db.session.add(member)
    member.role = role
    db.session.commit()
    return member


def remove_member(dataset: Dataset, member_id: int) -> None:
    member = db.session.get(DatasetMember, member_id)
    if member is None or member.dataset_id != dataset.id:
        raise NotFound(f"Member {member_id} not found")
    if member.user_id == dataset.owner_id:
        raise Conflict("The owner cannot be removed")
    db.session.delete(member)
    db.session.commit()


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


def stats(dataset: Dataset) -> dict:
    """Counts by state and split for the overview page and the API."""
    def grouped(column):
        rows = db.session.execute(select(column, func.count()).where(Image.dataset_id == dataset.id).group_by(column))
        return {getattr(key, "value", key): n for key, n in rows}

    return {
        "images": dataset.image_count,
        "total_bytes": dataset.total_bytes,
        "by_state": grouped(Image.state),
        "by_split": grouped(Image.split),
    }
