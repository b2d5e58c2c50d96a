"""Building a labeling task: dealing its images out to its labelers (services/tasks.py)."""

from sqlalchemy import func, select

from core.errors import NotFound
from core.extensions import db
from models import Image, LabelingTask, TaskMember, User
from services.tasks import candidates, deal_chunk
from workers.runtime import app_context, job_run


def build_task(job_id: str, task_id: int, image_ids: list[int] | None, filter_args: dict, upto: int) -> dict:
    """Deal the task's images out, a chunk per transaction; the last image dealt and the count are
    kept on the job row in the chunk's own transaction, so a re-run after a crash continues
    exactly where the last commit left it and deals no image twice."""
    with app_context(), job_run(job_id) as run:
        task = db.session.get(LabelingTask, task_id)
        if task is None:
            raise NotFound("The task was deleted before it was built")
        creator = db.session.get(User, task.created_by_id) if task.created_by_id else None
        if creator is None:
            raise NotFound("The person who made this task no longer exists")
        labeler_ids = list(db.session.scalars(select(TaskMember.user_id).where(TaskMember.task_id == task.id).order_by(TaskMember.position)))
        images = candidates(task, creator, image_ids, filter_args, upto)
        state = {"last_image_id": 0, "dealt": 0, **(run.job.result or {})}
        left = images.with_only_columns(Image.id).where(Image.id > state["last_image_id"])
        total = state["dealt"] + db.session.scalar(select(func.count()).select_from(left.subquery()))
        run.progress(state["dealt"], total, f"Dealing {total:,} images to {len(labeler_ids)} labelers", force=True)
        while True:
            last, count = deal_chunk(task, labeler_ids, images, state["last_image_id"], state["dealt"])
            if not count:
                break
            state = {"last_image_id": last, "dealt": state["dealt"] + count}
            run.job.result = state
            task.image_count = state["dealt"]
            db.session.commit()
            run.progress(state["dealt"], max(total, state["dealt"]), f"Dealt {state['dealt']:,} of {total:,} images", force=True)
        task.image_count, task.complete = state["dealt"], True
        run.job.result = {**state, "task_id": task.id}
        run.job.message = f"Task {task.name!r}: {state['dealt']:,} images dealt to {len(labeler_ids)} labelers"
        return run.job.result
