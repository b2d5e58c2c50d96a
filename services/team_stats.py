"""Statistics of labeling tasks, per task and per member: progress, speed and quality.

Every figure is an aggregate query (GROUP BY, and window functions for the medians) over the task's
assignments, so a task of a million assignments costs a few index scans (ix_assignment_queue leads
with task_id), never a million rows in Python. Python only folds the grouped rows into dicts.

What the numbers mean, for one member or a whole task:
- assigned: their turns at images (with repetition r an image has r turns); open: turns not handed
  in (a rejected image's turn is open again, services/tasks.reopen); submitted: turns handed in;
  accepted / rejected: those turns whose image is now accepted / rejected (with repetition r an
  image counts once per labeler, as its turns do).
- progress: submitted turns as a percentage of all turns.
- images per hour: turns handed in, over the hours from the first opened to the last handed in.
- median seconds per image: of submitted_at - opened_at, over the turns that have both.
- rejection rate: reject verdicts over all verdicts given on the member's turns (Review.assignment_id).
- agreement: see `agreement`.

Whoever sees the dataset sees the statistics (SPEC section 4), over the images they see: a labeler
sees only their own row, and a task's figures over their own turns.
"""

from sqlalchemy import and_, case, extract, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from core.extensions import db
from core.permissions import sees_all_images, visible_datasets
from models import Assignment, AssignmentState, Dataset, Image, ImageState, LabelingTask, Review, TaskMember, User, Verdict, Workforce
from services import repetition

COUNTS = ("assigned", "open", "submitted", "accepted", "rejected")
_TASK, _LABELER = Assignment.task_id.label("task_id"), Assignment.labeler_id.label("labeler_id")


def _seconds(start: ColumnElement, end: ColumnElement) -> ColumnElement:
    """end - start in seconds, as each database computes it."""
    if db.session.get_bind().dialect.name == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return extract("epoch", end - start)


def _counts(keys: list, where) -> dict[tuple, dict]:
    """The counts and the active period of each group of assignments (grouped by `keys`)."""
    handed_in = Assignment.submitted_at.is_not(None)
    started = func.coalesce(Assignment.opened_at, Assignment.submitted_at)

    rows = db.session.execute(
        select(
            *keys,
            func.count(Assignment.id),
            func.count(case((Assignment.state == AssignmentState.assigned, 1))),
            func.count(case((Assignment.state == AssignmentState.submitted, 1))),
            # Turns, not distinct images: COUNT(DISTINCT) per group costs a sort of every row.
            func.count(case((Image.state == ImageState.accepted, 1))),
            func.count(case((Image.state == ImageState.rejected, 1))),
            func.count(case((and_(Assignment.state == AssignmentState.assigned, Assignment.labeler_id.is_(None)), 1))),
            func.count(case((handed_in, 1))),
            func.min(case((handed_in, started))),
            func.max(Assignment.submitted_at),
        )
        .join(Image, Image.id == Assignment.image_id)
        .where(where)
        .group_by(*keys)
    )
    out = {}
    for row in rows:
        key, values = tuple(row[: len(keys)]), row[len(keys):]
        assigned, open_, submitted, accepted, rejected, unassigned, handed, first, last = values
        hours = (last - first).total_seconds() / 3600 if first is not None and last is not None else 0
        out[key] = {
            "assigned": assigned, "open": open_, "submitted": submitted, "accepted": accepted, "rejected": rejected,
            "unassigned": unassigned,
            "progress": round(100 * submitted / assigned, 1) if assigned else 0.0,
            "images_per_hour": round(handed / hours, 2) if hours > 0 else None,
        }
    return out


def _reviews(keys: list, where) -> dict[tuple, tuple[int, int]]:
    """(verdicts, reject verdicts) given on each group's assignments."""
    rows = db.session.execute(
        select(*keys, func.count(Review.id), func.count(case((Review.verdict == Verdict.reject, 1))))
        .join(Assignment, Assignment.id == Review.assignment_id)
        .where(where)
        .group_by(*keys)
    )
    return {tuple(row[: len(keys)]): (row[-2], row[-1]) for row in rows}


def _medians(keys: list, where) -> dict[tuple, float]:
    """The median of submitted_at - opened_at (seconds) in each group, over the turns with both.

    Window functions rather than percentile_cont, which SQLite lacks: number each group's durations
    in order, and average the middle one (odd count) or two (even count).
    """
    seconds = _seconds(Assignment.opened_at, Assignment.submitted_at)
    ranked = (
        select(
            *keys, seconds.label("seconds"),
            func.row_number().over(partition_by=keys, order_by=seconds).label("rank"),
            func.count().over(partition_by=keys).label("n"),
        )
        .where(where, Assignment.opened_at.is_not(None), Assignment.submitted_at.is_not(None))
        .subquery()
    )
    columns = [ranked.c[key.name] for key in keys]
    # Whole-number division on both databases: the middle ranks of n are (n + 1) // 2 and (n + 2) // 2.
    middle = or_(ranked.c.rank == (ranked.c.n + 1) // 2, ranked.c.rank == (ranked.c.n + 2) // 2)
    rows = db.session.execute(select(*columns, func.avg(ranked.c.seconds)).where(middle).group_by(*columns))
    return {tuple(row[:-1]): round(float(row[-1]), 2) for row in rows}


def agreement(task: LabelingTask | None, labeler_id: int | None = None) -> float | None:
    """How well the labelers who saw the same images agree (services/repetition.task_agreement):
    None for a task with repetition 1, where each image has one labeler and nobody to agree with."""
    return repetition.task_agreement(task, labeler_id) if task is not None else None


def _figures(counts: dict | None, reviews: tuple[int, int] | None, median: float | None) -> dict:
    nothing = {**dict.fromkeys((*COUNTS, "unassigned"), 0), "progress": 0.0, "images_per_hour": None}
    figures = dict(counts or nothing)
    given, rejected = reviews or (0, 0)
    figures.update(reviews=given, rejection_rate=round(rejected / given, 4) if given else None, median_seconds=median)
    return figures


def _all(keys: list, where) -> tuple[dict, dict, dict]:
    return _counts(keys, where), _reviews(keys, where), _medians(keys, where)


def _names(user_ids) -> dict[int, str]:
    user_ids = [user_id for user_id in set(user_ids) if user_id is not None]
    if not user_ids:
        return {}
    users = db.session.execute(select(User.id, User.display_name, User.email).where(User.id.in_(user_ids)))
    return {user_id: name or email for user_id, name, email in users}


def _scope(user: User, dataset: Dataset):
    """The assignments whose figures the user may see: all of them, or (a labeler) their own."""
    return true() if sees_all_images(user, dataset) else Assignment.labeler_id == user.id


def _member_row(user_id: int, names: dict, counts, reviews, median, task: LabelingTask | None) -> dict:
    row = {"user_id": user_id, "name": names.get(user_id, f"user {user_id}")}
    row.update(_figures(counts, reviews, median))
    row.pop("unassigned")
    row["agreement"] = agreement(task, user_id)
    return row


def tasks_stats(dataset: Dataset, user: User, tasks: list[LabelingTask]) -> list[dict]:
    """Each task's figures with a row per member (a labeler: their own row only), in task order."""
    if not tasks:
        return []
    task_ids = [task.id for task in tasks]
    where = and_(Assignment.task_id.in_(task_ids), _scope(user, dataset))
    by_task = _all([_TASK], where)
    by_member = _all([_TASK, _LABELER], and_(where, Assignment.labeler_id.is_not(None)))
    # A task's members: who it deals images to, and whoever holds a turn (a member who left keeps
    # what they handed in).
    members: dict[int, set[int]] = {task_id: set() for task_id in task_ids}
    for task_id, labeler_id in by_member[0]:
        members[task_id].add(labeler_id)
    roster = select(TaskMember.task_id, TaskMember.user_id).where(TaskMember.task_id.in_(task_ids))
    if not sees_all_images(user, dataset):
        roster = roster.where(TaskMember.user_id == user.id)
    for task_id, user_id in db.session.execute(roster):
        members[task_id].add(user_id)
    names = _names(user_id for ids in members.values() for user_id in ids)
    out = []
    for task in tasks:
        key = (task.id,)
        row = {"id": task.id, "dataset_id": task.dataset_id, "name": task.name, "repetition": task.repetition}
        row.update(_figures(by_task[0].get(key), by_task[1].get(key), by_task[2].get(key)))
        row["agreement"] = agreement(task)
        row["members"] = [
            _member_row(user_id, names, *(part.get((task.id, user_id)) for part in by_member), task)
            for user_id in sorted(members[task.id], key=lambda user_id: (names.get(user_id, "").lower(), user_id))
        ]
        out.append(row)
    return out


def task_stats(task: LabelingTask, user: User) -> dict:
    """One task's figures and its members' (GET /api/v1/tasks/{id}/stats, the task page)."""
    return tasks_stats(db.session.get(Dataset, task.dataset_id), user, [task])[0]


def dataset_team_stats(dataset: Dataset, user: User) -> dict:
    """The dataset's tasks (each with its members) and its members over all its tasks, as the
    overview and GET /api/v1/datasets/{ds}/stats show them."""
    tasks = list(db.session.scalars(select(LabelingTask).where(LabelingTask.dataset_id == dataset.id).order_by(LabelingTask.id)))
    task_ids = select(LabelingTask.id).where(LabelingTask.dataset_id == dataset.id).scalar_subquery()
    where = and_(Assignment.task_id.in_(task_ids), Assignment.labeler_id.is_not(None), _scope(user, dataset))
    parts = _all([_LABELER], where)
    names = _names(labeler_id for (labeler_id,) in parts[0])
    members = [
        _member_row(labeler_id, names, *(part.get((labeler_id,)) for part in parts), None)
        for (labeler_id,) in sorted(parts[0], key=lambda key: (names.get(key[0], "").lower(), key[0]))
    ]
    return {"tasks": tasks_stats(dataset, user, tasks), "members": members}


def workforce_team_stats(workforce: Workforce, user: User) -> dict:
    """The figures of the tasks made for the workforce, on the datasets the user sees (its page)."""
    tasks = db.session.scalars(
        visible_datasets(select(LabelingTask).join(Dataset, Dataset.id == LabelingTask.dataset_id), user)
        .where(LabelingTask.workforce_id == workforce.id).order_by(LabelingTask.dataset_id, LabelingTask.id)
    ).all()
    by_dataset: dict[int, list[LabelingTask]] = {}
    for task in tasks:
        by_dataset.setdefault(task.dataset_id, []).append(task)
    rows = [row for dataset_id, of_dataset in by_dataset.items() for row in tasks_stats(db.session.get(Dataset, dataset_id), user, of_dataset)]
    return {"tasks": rows}
