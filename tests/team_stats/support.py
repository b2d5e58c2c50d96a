"""Hand-built task histories for the statistics and sampling tests: tasks, turns and verdicts as
rows (services/tasks.py and services/reviews.py build real ones), and accepted images made through
the one write path, so their history is real."""

from datetime import datetime, timedelta

from core.extensions import db
from models import Assignment, AssignmentState, Image, LabelingTask, Review, TaskMember, User, Verdict
from services import lifecycle
from services.annotations import _store

T0 = datetime(2026, 3, 2, 9, 0, 0)


def make_task(dataset, members: list[User], *, name: str = "Boxes", **columns) -> LabelingTask:
    task = LabelingTask(dataset_id=dataset.id, name=name, complete=True, **columns)
    db.session.add(task)
    db.session.flush()
    for position, user in enumerate(members):
        db.session.add(TaskMember(task_id=task.id, user_id=user.id, position=position))
    db.session.commit()
    return task


def turn(task: LabelingTask, image_id: int, labeler: User | None, *, opened: float | None = None, submitted: float | None = None,
         state: AssignmentState | None = None) -> Assignment:
    """A labeler's turn at an image; opened / submitted in seconds after T0."""
    assignment = Assignment(
        task_id=task.id, image_id=image_id, labeler_id=labeler.id if labeler else None,
        state=state or (AssignmentState.submitted if submitted is not None else AssignmentState.assigned),
        opened_at=T0 + timedelta(seconds=opened) if opened is not None else None,
        submitted_at=T0 + timedelta(seconds=submitted) if submitted is not None else None,
    )
    db.session.add(assignment)
    db.session.commit()
    return assignment


def verdict(assignment: Assignment, reviewer: User, value: str) -> Review:
    review = Review(image_id=assignment.image_id, assignment_id=assignment.id, reviewer_id=reviewer.id, verdict=Verdict(value))
    db.session.add(review)
    db.session.commit()
    return review


def set_state(image_ids: list[int], state) -> None:
    db.session.execute(db.update(Image).where(Image.id.in_(image_ids)).values(state=state))
    db.session.commit()


def accept(image_ids: list[int], user: User) -> None:
    """Submit and accept each image through services.annotations._store, as a labeler and a reviewer would."""
    for image_id in image_ids:
        for change in (lifecycle.SUBMIT, lifecycle.ACCEPT):
            image = db.session.get(Image, image_id)
            _store(image, user, change, lambda fresh, change=change: lifecycle.after(change, fresh.state), None)


def accepted_task(dataset, owner: User, image_ids: list[int], labeler: User | None = None, **columns) -> LabelingTask:
    """A task whose images are all handed in and accepted."""
    labeler = labeler or owner
    task = make_task(dataset, [labeler], **columns)
    for i, image_id in enumerate(image_ids):
        turn(task, image_id, labeler, opened=10 * i, submitted=10 * i + 5)
    accept(image_ids, owner)
    return task
