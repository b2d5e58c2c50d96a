"""Labeling tasks: a batch of a dataset's images dealt out to labelers, and each labeler's queue.

A task is built by a job (workers/tasks.py) that deals the images out in id order, a chunk per
transaction with its checkpoint, so a task over a million images never holds the database for long
and a crashed build resumes where it stopped. Each labeler's open images form a queue ordered by
`Assignment.position`: rejected images come first, "Later" sends one to the end.

An image belongs to one task at a time: a new task leaves out the images another task holds.
"""

from dataclasses import dataclass

from sqlalchemy import and_, case, delete, exists, func, insert, literal, select, update

from core.errors import INT64_MAX, Conflict, Invalid, NotFound, is_finite_number, is_id_list, is_int, parse_choice, parse_flag
from core.extensions import db
from core.permissions import role_of
from models import (
    Assignment,
    AssignmentState,
    Dataset,
    DatasetWorkforce,
    Image,
    ImageState,
    Job,
    LabelingTask,
    Role,
    TaskMember,
    TaskStrategy,
    User,
    WorkforceMember,
    WorkforceRole,
)
from models.base import utcnow
from services.images import ImageFilter, filtered_query
from services.job_kinds import BUILD_TASK
from services.jobs import start_job

MAX_NAME = 200
MAX_SELECTION = 10_000  # image_ids a request may name; more images are chosen by the grid's filter
MAX_MEMBERS = 500
MAX_BATCH = 100_000
CHUNK = 20_000  # images dealt per transaction of the build
FILTER_FIELDS = ("split", "state", "folder", "search", "tag")


@dataclass
class TaskPlan:
    """A validated request for a task: what `create_task` builds."""

    name: str
    labeler_ids: list[int]
    strategy: TaskStrategy
    batch_size: int | None
    repetition: int
    review_required: bool
    sampling_rate: float
    workforce_id: int | None
    image_ids: list[int] | None  # a selection, or None for every image the filter matches
    image_filter: ImageFilter


# ---- creating -------------------------------------------------------------------------------


def plan_task(dataset: Dataset, fields: dict) -> TaskPlan:
    """Check a task request (the API's JSON or the page's form, as a dict); Invalid names the field."""
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("A task needs a name", details={"field": "name"})
    if len(name.strip()) > MAX_NAME:
        raise Invalid(f"A task name is at most {MAX_NAME} characters", details={"field": "name"})
    strategy = parse_choice(TaskStrategy, fields.get("strategy") or "round_robin", "strategy", "strategy")
    batch_size = fields.get("batch_size")
    if strategy == TaskStrategy.batch:
        if not is_int(batch_size) or not 1 <= batch_size <= MAX_BATCH:
            raise Invalid(f"batch_size must be a whole number from 1 to {MAX_BATCH:,} for the batch strategy", details={"field": "batch_size"})
    elif batch_size is not None:
        raise Invalid("batch_size applies to the batch strategy only", details={"field": "batch_size"})
    labeler_ids, workforce_id = _labelers(dataset, fields.get("member_ids"), fields.get("workforce_id"))
    repetition = fields.get("repetition", 1)
    if not is_int(repetition) or repetition < 1:
        raise Invalid("repetition must be a whole number of at least 1", details={"field": "repetition"})
    if repetition > len(labeler_ids):
        raise Invalid(f"repetition {repetition} needs as many labelers; the task has {len(labeler_ids)}", details={"field": "repetition"})
    review_required = parse_flag(fields.get("review_required", True), "review_required")
    if repetition > 1 and not review_required:
        # Someone has to keep one of the versions, or merge them (services/repetition.py).
        raise Invalid("With repetition above 1 a reviewer keeps or merges the versions: review is required", details={"field": "review_required"})
    sampling_rate = fields.get("sampling_rate", 0)
    if not is_finite_number(sampling_rate) or not 0 <= sampling_rate <= 1:
        raise Invalid("sampling_rate must be a number from 0 to 1", details={"field": "sampling_rate"})
    image_ids = fields.get("image_ids")
    filter_args = {key: fields[key] for key in FILTER_FIELDS if fields.get(key) not in (None, "")}
    if image_ids is not None:
        if filter_args:
            raise Invalid("Send image_ids or the grid's filter fields, not both", details={"field": "image_ids"})
        if not is_id_list(image_ids, INT64_MAX) or not image_ids:
            raise Invalid("image_ids must be a non-empty list of image ids", details={"field": "image_ids"})
        if len(image_ids) > MAX_SELECTION:
            raise Invalid(f"At most {MAX_SELECTION:,} image_ids; choose more images with the filter", details={"field": "image_ids"})
        image_ids = sorted(set(image_ids))
        found = set(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.id.in_(image_ids))))
        missing = [i for i in image_ids if i not in found]
        if missing:
            raise Invalid(f"Images not in this dataset: {', '.join(map(str, missing[:20]))}", details={"field": "image_ids"})
    if any(not isinstance(value, str) for value in filter_args.values()):
        raise Invalid("The filter fields are text", details={"field": next(k for k, v in filter_args.items() if not isinstance(v, str))})
    return TaskPlan(
        name=name.strip(), labeler_ids=labeler_ids, strategy=strategy, batch_size=batch_size, repetition=repetition,
        review_required=review_required, sampling_rate=float(sampling_rate), workforce_id=workforce_id,
        image_ids=image_ids, image_filter=ImageFilter.from_args(filter_args),
    )


def _labelers(dataset: Dataset, member_ids, workforce_id) -> tuple[list[int], int | None]:
    """The labelers a task deals to, in order: named members of the dataset, or a workforce
    attached to it (its members with the labeler team role)."""
    if (member_ids is None) == (workforce_id is None):
        raise Invalid("Send member_ids or workforce_id (one of them)", details={"field": "member_ids"})
    if workforce_id is not None:
        if not is_int(workforce_id):
            raise Invalid("workforce_id must be a workforce id", details={"field": "workforce_id"})
        attached = db.session.scalar(select(exists().where(DatasetWorkforce.dataset_id == dataset.id, DatasetWorkforce.workforce_id == workforce_id)))
        if not attached:
            raise Invalid(f"Workforce {workforce_id} is not attached to this dataset; attach it first", details={"field": "workforce_id"})
        ids = list(db.session.scalars(
            select(WorkforceMember.user_id).join(User, User.id == WorkforceMember.user_id)
            .where(WorkforceMember.workforce_id == workforce_id, WorkforceMember.role == WorkforceRole.labeler, User.active.is_(True))
            .order_by(WorkforceMember.id)
        ))
        if not ids:
            raise Invalid(f"Workforce {workforce_id} has no active labelers", details={"field": "workforce_id"})
        return ids, workforce_id
    if not is_id_list(member_ids, INT64_MAX) or not member_ids:
        raise Invalid("member_ids must be a non-empty list of user ids", details={"field": "member_ids"})
    if len(member_ids) > MAX_MEMBERS:
        raise Invalid(f"At most {MAX_MEMBERS} members in a task", details={"field": "member_ids"})
    ids = list(dict.fromkeys(member_ids))
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}
    outsiders = [i for i in ids if i not in users or not users[i].active or role_of(users[i], dataset) is None]
    if outsiders:
        raise Invalid(
            f"Not active members of this dataset: {', '.join(map(str, outsiders[:20]))}; add them to the dataset first",
            details={"field": "member_ids"},
        )
    return ids, None


def create_task(dataset: Dataset, user: User, plan: TaskPlan) -> LabelingTask:
    """Record the task and its labelers, and start the job that deals its images out."""
    task = LabelingTask(
        dataset_id=dataset.id, name=plan.name, workforce_id=plan.workforce_id, strategy=plan.strategy, batch_size=plan.batch_size,
        repetition=plan.repetition, review_required=plan.review_required, sampling_rate=plan.sampling_rate,
        created_by_id=user.id, complete=False,
    )
    db.session.add(task)
    db.session.flush()
    db.session.execute(insert(TaskMember), [{"task_id": task.id, "user_id": uid, "position": i} for i, uid in enumerate(plan.labeler_ids)])
    # Images uploaded while the task is built are not swept in: the build stops at today's newest.
    upto = db.session.scalar(select(func.max(Image.id)).where(Image.dataset_id == dataset.id)) or 0
    job = start_job(
        BUILD_TASK, task.id, plan.image_ids, plan.image_filter.args(), upto,
        dataset=dataset, user=user, message=f"Waiting for a worker to build the task {plan.name!r}",
    )
    task.job_id = job.id
    db.session.commit()
    return task


def count_candidates(dataset: Dataset, user: User, source: dict) -> int:
    """How many images a new task made from `source` (image_ids as "1,2,3", or the grid's filter
    fields) would take now: the new-task form says it before anything is made."""
    query = filtered_query(dataset, user, ImageFilter.from_args({k: v for k, v in source.items() if k in FILTER_FIELDS}))
    if source.get("image_ids"):
        ids = [int(i) for i in source["image_ids"].split(",") if i.strip().isdigit()][:MAX_SELECTION]
        query = query.where(Image.id.in_(ids))
    query = query.where(~exists().where(Assignment.image_id == Image.id)).with_only_columns(Image.id)
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def build_job(task: LabelingTask) -> Job | None:
    return db.session.get(Job, task.job_id) if task.job_id else None


def candidates(task: LabelingTask, creator: User, image_ids: list[int] | None, filter_args: dict, upto: int):
    """The Select of the images the task is made of, in no order: the selection or the filter's
    matches up to image `upto`, less those another task holds."""
    dataset = db.session.get(Dataset, task.dataset_id)
    query = filtered_query(dataset, creator, ImageFilter.from_args(filter_args)).where(Image.id <= upto)
    if image_ids is not None:
        query = query.where(Image.id.in_(image_ids))
    return query.where(~exists().where(Assignment.image_id == Image.id, Assignment.task_id != task.id))


def deal_chunk(task: LabelingTask, labeler_ids: list[int], images, after: int, dealt: int) -> tuple[int, int]:
    """Deal the next chunk of images (id order, after image `after`) to the labelers, continuing
    the deal at image number `dealt`; (the last image id dealt, how many), (after, 0) when none are left.
    One INSERT ... SELECT: the deal is arithmetic on each image's number in the task."""
    chunk = images.with_only_columns(Image.id).where(Image.id > after).order_by(Image.id).limit(CHUNK).subquery()
    # Two tasks built at once over the same images: each chunk waits for the other's to commit,
    # then leaves out what that one took (`candidates`).
    Dataset.lock(task.dataset_id)
    bounds = db.session.execute(select(func.max(chunk.c.id), func.count())).one()
    if not bounds[1]:
        return after, 0
    number = func.row_number().over(order_by=Image.id) + (dealt - 1)
    turn = number if task.strategy == TaskStrategy.round_robin else number // task.batch_size
    labelers = {i: labeler_id for i, labeler_id in enumerate(labeler_ids)}
    # With repetition r, image n also goes to the r - 1 labelers after its first: r different people.
    for extra in range(task.repetition):
        labeler = case(labelers, value=(turn + extra) % len(labeler_ids))
        rows = images.with_only_columns(
            literal(task.id), Image.id, labeler, literal(AssignmentState.assigned.name), number,
        ).where(Image.id > after, Image.id <= bounds[0])
        db.session.execute(insert(Assignment).from_select(["task_id", "image_id", "labeler_id", "state", "position"], rows))
    return bounds[0], bounds[1]


# ---- reading --------------------------------------------------------------------------------


def tasks_of(dataset: Dataset, user: User, newest_first: bool = True) -> list[LabelingTask]:
    """The dataset's tasks the user sees (core.permissions.sees_task), newest (or oldest) first."""
    order = LabelingTask.id.desc() if newest_first else LabelingTask.id
    query = select(LabelingTask).where(LabelingTask.dataset_id == dataset.id).order_by(order)
    if role_of(user, dataset) == Role.labeler and not user.is_admin:
        query = query.where(exists().where(TaskMember.task_id == LabelingTask.id, TaskMember.user_id == user.id))
    return list(db.session.scalars(query))


def my_tasks(user: User) -> list[tuple[LabelingTask, Dataset, dict]]:
    """Every task that hands images to the user, with their own progress, newest first."""
    rows = db.session.execute(
        select(LabelingTask, Dataset).join(Dataset, Dataset.id == LabelingTask.dataset_id)
        .join(TaskMember, (TaskMember.task_id == LabelingTask.id) & (TaskMember.user_id == user.id))
        .order_by(LabelingTask.id.desc())
    ).all()
    return [(task, dataset, progress_of(task, user)) for task, dataset in rows]


def progress_of(task: LabelingTask, user: User) -> dict:
    """The user's images in the task: how many in all, handed in, open, and of those rejected."""
    counts = dict(db.session.execute(
        select(Assignment.state, func.count()).where(Assignment.task_id == task.id, Assignment.labeler_id == user.id).group_by(Assignment.state)
    ).all())
    submitted, open_ = counts.get(AssignmentState.submitted, 0), counts.get(AssignmentState.assigned, 0)
    # From the dataset's few rejected images to their turns (ix_image_dataset_state), not from the
    # labeler's whole queue to its images: this runs on every "next".
    mine = exists().where(
        Assignment.image_id == Image.id, Assignment.task_id == task.id, Assignment.labeler_id == user.id,
        Assignment.state == AssignmentState.assigned,
    )
    rejected = db.session.scalar(
        select(func.count()).select_from(Image).where(Image.dataset_id == task.dataset_id, Image.state == ImageState.rejected, mine)
    ) if open_ else 0
    return {"total": submitted + open_, "submitted": submitted, "open": open_, "rejected": rejected}


def task_progress(task: LabelingTask) -> dict:
    """The whole task: images by state, and each member's open and handed-in counts."""
    by_state = dict(db.session.execute(
        select(Image.state, func.count(func.distinct(Image.id))).join(Assignment, Assignment.image_id == Image.id)
        .where(Assignment.task_id == task.id).group_by(Image.state)
    ).all())
    per_member = db.session.execute(
        select(Assignment.labeler_id, Assignment.state, func.count()).where(Assignment.task_id == task.id)
        .group_by(Assignment.labeler_id, Assignment.state)
    ).all()
    members = {}
    for labeler_id, state, count in per_member:
        members.setdefault(labeler_id, {"open": 0, "submitted": 0})["open" if state == AssignmentState.assigned else "submitted"] += count
    return {
        "images": sum(by_state.values()),
        "states": {state.value: by_state.get(state, 0) for state in ImageState},
        "unassigned": members.pop(None, {"open": 0})["open"],
        "members": members,
    }


def members_of(task: LabelingTask) -> list[User]:
    return list(db.session.scalars(
        select(User).join(TaskMember, TaskMember.user_id == User.id).where(TaskMember.task_id == task.id).order_by(TaskMember.position)
    ))


# ---- a labeler's queue ----------------------------------------------------------------------


def place_in_queue(task: LabelingTask, user: User, image: Image) -> dict:
    """Where the image stands in the user's queue of the task: its number ("n of N"), and whether it is open."""
    progress = progress_of(task, user)
    is_open = db.session.scalar(select(exists(_open_turns(task, user).where(Assignment.image_id == image.id))))
    number = progress["submitted"] + 1 if is_open else progress["submitted"]
    return {"open": bool(is_open), "number": min(number, progress["total"]), "total": progress["total"]}


def _open_turns(task: LabelingTask, user: User):
    return select(Assignment).where(
        Assignment.task_id == task.id, Assignment.labeler_id == user.id, Assignment.state == AssignmentState.assigned
    )


def next_image(task: LabelingTask, user: User) -> dict:
    """The user's next open image in the task (rejected ones first), marked opened now for the
    speed statistics; `image_id` None when their queue is empty. With their place: "n of N"."""
    if not task.complete:
        raise Conflict("This task is still being built; try again in a moment", code="task_building")
    turn = db.session.scalar(_open_turns(task, user).order_by(Assignment.position, Assignment.id).limit(1))
    progress = progress_of(task, user)
    if turn is None:
        return {"image_id": None, **progress, "number": progress["total"]}
    if turn.opened_at is None:
        turn.opened_at = utcnow()
        db.session.commit()
    return {"image_id": turn.image_id, **progress, "number": progress["submitted"] + 1}


def _turn(task: LabelingTask, user: User, image_id) -> Assignment:
    if not is_int(image_id, INT64_MAX):
        raise Invalid("image_id must be an image id", details={"field": "image_id"})
    turn = db.session.scalar(_open_turns(task, user).where(Assignment.image_id == image_id))
    if turn is None:
        raise NotFound(f"Image {image_id} is not open in your queue of this task")
    return turn


def later(task: LabelingTask, user: User, image_id) -> dict:
    """"Later": the image stays open and goes to the end of the user's queue. The next image."""
    turn = _turn(task, user, image_id)
    turn.position = _queue_end(task.id, user.id, first=False)
    db.session.commit()
    return next_image(task, user)


def _queue_end(task_id: int, labeler_id: int, first: bool) -> int:
    """The position before the first (or after the last) of the labeler's images in the task."""
    edge = func.min(Assignment.position) if first else func.max(Assignment.position)
    value = db.session.scalar(select(edge).where(Assignment.task_id == task_id, Assignment.labeler_id == labeler_id))
    return (value or 0) - 1 if first else (value or 0) + 1


def reopen(image_id: int) -> None:
    """A reviewer rejected the image: its handed-in turns go back to their labelers, first in their queues.

    Part of the caller's transaction (the verdict's).
    """
    turns = db.session.execute(
        select(Assignment.id, Assignment.task_id, Assignment.labeler_id)
        .where(Assignment.image_id == image_id, Assignment.state == AssignmentState.submitted, Assignment.labeler_id.is_not(None))
    ).all()
    for turn_id, task_id, labeler_id in turns:
        db.session.execute(
            update(Assignment).where(Assignment.id == turn_id)
            .values(state=AssignmentState.assigned, submitted_at=None, position=_queue_end(task_id, labeler_id, first=True))
        )


# ---- changing who does what -----------------------------------------------------------------


def hand_back(user_id: int, task_ids) -> int:
    """A member who leaves hands their open images of these tasks back (unassigned, for a manager
    to reassign) and stops being dealt images by them; what they handed in stays theirs. How many
    images went back. Part of the caller's transaction."""
    task_ids = list(task_ids)
    if not task_ids:
        return 0
    handed = db.session.execute(
        update(Assignment)
        .where(Assignment.task_id.in_(task_ids), Assignment.labeler_id == user_id, Assignment.state == AssignmentState.assigned)
        .values(labeler_id=None, opened_at=None)
    ).rowcount
    db.session.execute(delete(TaskMember).where(TaskMember.task_id.in_(task_ids), TaskMember.user_id == user_id))
    return handed


def _open_selection(task: LabelingTask, fields: dict):
    """The open turns a reassign or unassign moves: of `from_member_id` (null: the unassigned
    ones), optionally only `image_ids`."""
    conditions = [Assignment.task_id == task.id, Assignment.state == AssignmentState.assigned]
    if "from_member_id" in fields:
        source = fields["from_member_id"]
        if source is not None and not is_int(source):
            raise Invalid("from_member_id must be a user id, or null for the unassigned images", details={"field": "from_member_id"})
        conditions.append(Assignment.labeler_id.is_(None) if source is None else Assignment.labeler_id == source)
    image_ids = fields.get("image_ids")
    if image_ids is not None:
        if not is_id_list(image_ids, INT64_MAX) or len(image_ids) > MAX_SELECTION:
            raise Invalid(f"image_ids must be a list of at most {MAX_SELECTION:,} image ids", details={"field": "image_ids"})
        conditions.append(Assignment.image_id.in_(image_ids))
    if "from_member_id" not in fields and image_ids is None:
        raise Invalid("Say whose images move: from_member_id (null: the unassigned ones) or image_ids", details={"field": "from_member_id"})
    return and_(*conditions)


def reassign(task: LabelingTask, fields: dict) -> int:
    """Move open images to `to_member_id` (a member of the task; the dataset's members may be added
    with `add_member`), at the end of their queue. Handed-in work stays with whoever did it. How many moved."""
    target = fields.get("to_member_id")
    if not is_int(target) or not db.session.scalar(select(exists().where(TaskMember.task_id == task.id, TaskMember.user_id == target))):
        raise Invalid("to_member_id must be a member of this task", details={"field": "to_member_id"})
    selection = _open_selection(task, fields)
    # The target's own turn at an image stays theirs: never two turns of one labeler at one image.
    theirs = select(Assignment.image_id).where(Assignment.task_id == task.id, Assignment.labeler_id == target).scalar_subquery()
    start = _queue_end(task.id, target, first=False)
    ids = db.session.scalars(select(Assignment.id).where(selection, Assignment.image_id.not_in(theirs)).order_by(Assignment.position)).all()
    moved = 0
    for offset, turn_id in enumerate(ids):
        # Still open: a labeler handing the image in meanwhile keeps it (services.annotations._mark_assignment).
        moved += db.session.execute(
            update(Assignment).where(Assignment.id == turn_id, Assignment.state == AssignmentState.assigned)
            .values(labeler_id=target, position=start + offset, opened_at=None)
        ).rowcount
    db.session.commit()
    return moved


def unassign(task: LabelingTask, fields: dict) -> int:
    """Take open images away from their labelers (unassigned, to reassign later). How many."""
    moved = db.session.execute(update(Assignment).where(_open_selection(task, fields)).values(labeler_id=None, opened_at=None)).rowcount
    db.session.commit()
    return moved


def add_member(task: LabelingTask, user_id) -> TaskMember:
    """Add a member of the dataset to the task, to reassign images to them."""
    dataset = db.session.get(Dataset, task.dataset_id)
    ids, _ = _labelers(dataset, [user_id] if is_int(user_id) else user_id, None)
    if db.session.scalar(select(exists().where(TaskMember.task_id == task.id, TaskMember.user_id == ids[0]))):
        raise Conflict("This person is already a member of the task")
    position = (db.session.scalar(select(func.max(TaskMember.position)).where(TaskMember.task_id == task.id)) or 0) + 1
    member = TaskMember(task_id=task.id, user_id=ids[0], position=position)
    db.session.add(member)
    db.session.commit()
    return member


def remove_member(task: LabelingTask, user_id) -> int:
    """Take a member off the task: their open images go back unassigned. How many."""
    if not is_int(user_id) or not db.session.scalar(select(exists().where(TaskMember.task_id == task.id, TaskMember.user_id == user_id))):
        raise NotFound("No such member of this task")
    handed = hand_back(user_id, [task.id])
    db.session.commit()
    return handed


def delete_task(task: LabelingTask) -> None:
    """Delete the task and its assignments; the images keep their annotations and states."""
    job = build_job(task)
    if job is not None and job.status.active:
        raise Conflict("This task is still being built; cancel its job first", code="task_building")
    db.session.delete(task)
    db.session.commit()
