"""Auto-split: plan the cuts over every candidate image, then assign the splits chunk by chunk."""

from core.errors import NotFound
from core.extensions import db
from models import Dataset, User
from services import splits as service
from services.images import ImageFilter
from workers.runtime import app_context, job_run


def auto_split(
    job_id: str, dataset_id: int, user_id: int, percentages: dict, seed: int, only_unassigned: bool,
    filter_args: dict, image_ids: list[int] | None, upto: int,
) -> dict:
    """Split the candidates up to image `upto` (the newest when it was asked: later uploads stay unassigned).

    The plan is kept in the job's result before any image moves, and each chunk commits with the
    last image it did, so a re-run follows the same plan from where the crashed run stopped.
    """
    with app_context(), job_run(job_id) as run:
        dataset, user = db.session.get(Dataset, dataset_id), db.session.get(User, user_id)
        if dataset is None or user is None:
            raise NotFound("The dataset or the person who asked for this split no longer exists")
        query = service.candidates(dataset, user, ImageFilter.from_args(filter_args), image_ids, only_unassigned)
        result = dict(run.job.result or {})
        if "cuts" not in result:
            keys: dict[str, list[int]] = {}
            after = seen = 0
            while ids := service.candidate_ids(query, after, upto):
                for image_id, stratum in service.strata_of(ids).items():
                    keys.setdefault(stratum, []).append(service.sort_key(seed, image_id))
                after, seen = ids[-1], seen + len(ids)
                run.progress(0, max(run.total, seen), f"Planning: went through {seen:,} images")
            result = {"cuts": service.plan_cuts(keys, percentages), "last_image_id": 0, "assigned": dict.fromkeys(service.SPLITS, 0)}
            del keys
            run.job.result = result
            db.session.commit()
        done = run.done
        while ids := service.candidate_ids(query, result["last_image_id"], upto):
            assigned = service.apply_chunk(dataset, ids, seed, result["cuts"], percentages, only_unassigned)
            result = {
                **result, "last_image_id": ids[-1],
                "assigned": {split: result["assigned"][split] + assigned.get(split, 0) for split in service.SPLITS},
            }
            done += len(ids)
            run.job.result = result
            db.session.commit()
            run.progress(done, max(run.total, done), f"Split {done:,} images", force=True)
        counts = ", ".join(f"{result['assigned'][split]:,} {split}" for split in service.SPLITS)
        run.job.message = f"Split {sum(result['assigned'].values()):,} images: {counts}"
        return result
