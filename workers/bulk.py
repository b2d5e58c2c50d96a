"""The grid's bulk action on every image a filter matches, when there are too many for a request."""

from core.errors import NotFound
from core.extensions import db
from models import Dataset, User
from services.bulk import CHUNK, apply_chunk, matching_ids
from services.images import ImageFilter
from workers.runtime import app_context, job_run


def edit_matching(job_id: str, dataset_id: int, user_id: int, action: str, params: dict, filter_args: dict, upto: int) -> dict:
    """Apply `action` to the images matching the filter, in id-ordered chunks up to image `upto`.

    Each chunk commits on its own and the last id done is kept on the row, so a re-run continues
    after it; every action is idempotent, so a chunk done twice (a crash between its commit and
    the checkpoint's) changes nothing more.
    """
    with app_context(), job_run(job_id) as run:
        dataset, user = db.session.get(Dataset, dataset_id), db.session.get(User, user_id)
        if dataset is None or user is None:
            raise NotFound("The dataset or the person who asked for this change no longer exists")
        f = ImageFilter.from_args(filter_args)
        result = {"last_image_id": 0, "changed": 0, **(run.job.result or {})}
        done = run.done
        while ids := matching_ids(dataset, user, f, after=result["last_image_id"], upto=upto, limit=CHUNK):
            changed = apply_chunk(dataset, user, action, ids, params)
            result = {**result, "last_image_id": ids[-1], "changed": result["changed"] + changed}
            done += len(ids)
            run.job.result = result
            db.session.commit()
            run.progress(done, max(run.total, done), f"Went through {done:,} images, changed {result['changed']:,}", force=True)
        run.job.result = result
        run.job.message = f"Changed {result['changed']:,} of {done:,} images"
        return result
