"""Acceptance sampling of a labeling task: check a random sample of its accepted images, and judge
the whole lot by it.

The owner (or a site admin) draws a sample of the images of the task that are accepted (the lot):
ceil(rate x lot) of them, at least one. The draw is the images with the smallest sha256("seed:id")
(services.splits.sort_key), so a seed gives the same sample of the same lot on any machine and
database, and a lot that grew by a few images keeps most of its sample. They give each sampled
image a verdict: accept (the label is right) or reject (it is wrong), and may change a verdict
until the sample is decided. The estimated accuracy is accepted / decided, with a 95% Wilson
interval, shown while verdicts come in. The verdict that leaves no image undecided decides the
sample: passed when the estimate reaches the required accuracy, else failed, and a failed sample
sends its lot back to review.

The lot of a decided sample is the task's images that were accepted when it was drawn and have
stayed accepted since: read from the images' history (AnnotationRevision.state, recorded by every
change), so nothing beyond the sample's time needs storing, and an image a reviewer has looked at
again since (sent back, re-accepted) is not sent back twice. The send-back is a job
(workers/sampling.py), whatever the lot's size: each image goes back through
services.annotations._store with lifecycle.SEND_BACK, committed one by one, and an image sent back
leaves the lot, so a job that stopped (a killed worker) is re-run to the same end.
"""

import heapq
import math
import secrets
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import and_, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from core.errors import INT64_MAX, Conflict, Invalid, NotFound, is_finite_number, is_int, parse_choice
from core.extensions import db
from models import (
    AcceptanceSample, AnnotationRevision, Assignment, Dataset, Image, ImageState, Job, LabelingTask, SampleItem, SampleOutcome, User, Verdict,
)
from models.base import utcnow
from services import lifecycle
from services.annotations import _store
from services.job_kinds import SEND_BACK_LOT
from services.jobs import start_job
from services.splits import sort_key

DEFAULT_REQUIRED_ACCURACY = 0.95
# More verdicts than a person gives in a sitting; a bigger draw asks for a smaller rate.
MAX_SAMPLE = 10_000
Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% interval
CHUNK = 200  # lot images per round of the send-back job


# ---- the statistics -----------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (successes of n); None with no trials.

    Unlike p ± z·sqrt(p(1-p)/n) it stays inside [0, 1] and does not shrink to nothing when every
    sampled label is right (p = 1), the usual case of a good lot.
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_size(rate: float, lot: int) -> int:
    """ceil(rate x lot), at least 1; the rate read as the decimal it was written as (0.1 x 30 is 3, not 4)."""
    return max(1, math.ceil(Decimal(repr(rate)) * lot))


def draw(lot_ids: list[int], size: int, seed: int) -> list[int]:
    """The `size` images of the lot with the smallest sort keys for the seed, in id order."""
    return sorted(heapq.nsmallest(size, lot_ids, key=lambda image_id: sort_key(seed, image_id)))


# ---- input --------------------------------------------------------------------------------


def _fraction(value, field: str, what: str) -> float:
    """A number above 0 and at most 1 (JSON or an already parsed form value)."""
    if not is_finite_number(value):
        raise Invalid(f"{field} must be a number above 0 and at most 1, {what}", details={"field": field})
    if not 0 < value <= 1:
        raise Invalid(f"{field} must be above 0 and at most 1 ({what}); got {value!r}", details={"field": field})
    return float(value)


def parse_rate(value, task: LabelingTask) -> float:
    """The request's rate, or the task's sampling rate when none is sent."""
    if value is None:
        if not task.sampling_rate:
            raise Invalid("rate is required: the task has no sampling rate of its own", details={"field": "rate"})
        value = task.sampling_rate
    return _fraction(value, "rate", "the share of the accepted images to check, e.g. 0.1")


def parse_required_accuracy(value) -> float:
    if value is None:
        return DEFAULT_REQUIRED_ACCURACY
    return _fraction(value, "required_accuracy", "the share of right labels the lot needs, e.g. 0.95")


def parse_seed(value) -> int:
    if value is None:
        return secrets.randbelow(INT64_MAX)
    if not is_int(value, INT64_MAX):
        raise Invalid("seed must be a whole number (64-bit)", details={"field": "seed"})
    return value


# ---- drawing a sample ---------------------------------------------------------------------


def _accepted_now(task: LabelingTask):
    """The task's images that are accepted now, in id order."""
    in_task = exists().where(Assignment.task_id == task.id, Assignment.image_id == Image.id)
    return select(Image.id).where(Image.dataset_id == task.dataset_id, Image.state == ImageState.accepted, in_task).order_by(Image.id)


def pending_sample(task: LabelingTask) -> AcceptanceSample | None:
    return db.session.scalar(
        select(AcceptanceSample).where(AcceptanceSample.task_id == task.id, AcceptanceSample.outcome == SampleOutcome.pending)
    )


def start_sample(task: LabelingTask, user: User, rate=None, required_accuracy=None, seed=None) -> AcceptanceSample:
    """Draw a sample of the task's accepted images; Conflict while another sample of it is pending
    or when it has no accepted image."""
    rate, required_accuracy, seed = parse_rate(rate, task), parse_required_accuracy(required_accuracy), parse_seed(seed)
    if pending_sample(task) is not None:
        raise Conflict("This task already has a sample waiting for verdicts; finish it first", code="sample_pending")
    # The draw reads the lot before any lock: reading a million ids must not hold the database.
    lot_ids = list(db.session.scalars(_accepted_now(task)))
    if not lot_ids:
        raise Conflict("The task has no accepted images to sample yet", code="nothing_to_sample")
    size = sample_size(rate, len(lot_ids))
    if size > MAX_SAMPLE:
        largest = math.floor(Decimal(MAX_SAMPLE) / len(lot_ids) * 10_000) / 10_000
        raise Invalid(
            f"A rate of {rate} draws {size:,} of the {len(lot_ids):,} accepted images, more than the {MAX_SAMPLE:,} a sample "
            f"may hold; choose a rate of at most {largest}", details={"field": "rate"},
        )
    sampled = draw(lot_ids, size, seed)
    # Drawn after the lot was read: every sampled image was accepted before this time, which is
    # how the lot is found again from the history (see lot_query).
    drawn_at = utcnow()
    # One pending sample per task: the task's row is held to the commit, so of two starts at once
    # the second waits, then finds the first one's sample.
    db.session.execute(
        update(LabelingTask).where(LabelingTask.id == task.id).values(name=LabelingTask.name).execution_options(synchronize_session=False)
    )
    if pending_sample(task) is not None:
        db.session.rollback()
        raise Conflict("This task already has a sample waiting for verdicts; finish it first", code="sample_pending")
    sample = AcceptanceSample(
        task_id=task.id, rate=rate, required_accuracy=required_accuracy, lot_size=len(lot_ids), created_by_id=user.id, created_at=drawn_at,
    )
    db.session.add(sample)
    db.session.flush()
    db.session.execute(insert(SampleItem), [{"sample_id": sample.id, "image_id": image_id} for image_id in sampled])
    db.session.commit()
    return sample


def list_samples(task: LabelingTask) -> list[AcceptanceSample]:
    """The task's samples, newest first."""
    return list(db.session.scalars(
        select(AcceptanceSample).where(AcceptanceSample.task_id == task.id).order_by(AcceptanceSample.id.desc())
    ))


def items_of(sample: AcceptanceSample) -> list[SampleItem]:
    return list(db.session.scalars(select(SampleItem).where(SampleItem.sample_id == sample.id).order_by(SampleItem.id)))


def dataset_id_of(sample: AcceptanceSample) -> int:
    return db.session.scalar(select(LabelingTask.dataset_id).where(LabelingTask.id == sample.task_id))


def image_of(item: SampleItem) -> Image:
    return db.session.get(Image, item.image_id)


def sample_of_task(task: LabelingTask, sample: AcceptanceSample) -> AcceptanceSample:
    """The sample, if it is one of the task's (a URL naming both must not mix two tasks)."""
    if sample.task_id != task.id:
        raise NotFound("Sample not found")
    return sample


# ---- verdicts and the decision ------------------------------------------------------------


def estimate(sample: AcceptanceSample) -> dict:
    """The verdicts so far: counts, the estimated accuracy and its 95% Wilson interval."""
    counts = dict(db.session.execute(
        select(SampleItem.verdict, func.count()).where(SampleItem.sample_id == sample.id).group_by(SampleItem.verdict)
    ).all())
    accepted, rejected = counts.get(Verdict.accept.value, 0), counts.get(Verdict.reject.value, 0)
    decided = accepted + rejected
    interval = wilson_interval(accepted, decided)
    return {
        "size": decided + counts.get(None, 0), "decided": decided, "accepted": accepted, "rejected": rejected,
        "accuracy": accepted / decided if decided else None,
        "interval_low": interval[0] if interval else None, "interval_high": interval[1] if interval else None,
    }


def give_verdict(sample: AcceptanceSample, image_id: int, verdict, user: User) -> AcceptanceSample:
    """Record (or change) the verdict on one sampled image; the last one decides the sample.

    Conflict once the sample is decided; NotFound for an image the sample does not hold.
    """
    verdict = parse_choice(Verdict, verdict, "verdict", "verdict")
    # Every verdict holds the sample's row to its commit (and finds it still pending, or stops):
    # a verdict is never changed after the decision, and of two last verdicts at once one decides.
    held = db.session.execute(
        update(AcceptanceSample).where(AcceptanceSample.id == sample.id, AcceptanceSample.outcome == SampleOutcome.pending)
        .values(outcome=AcceptanceSample.outcome).execution_options(synchronize_session=False)
    ).rowcount
    if not held:
        db.session.rollback()
        db.session.refresh(sample)
        raise Conflict(f"This sample is decided ({sample.outcome.value}); its verdicts no longer change", code="sample_decided")
    changed = db.session.execute(
        update(SampleItem).where(SampleItem.sample_id == sample.id, SampleItem.image_id == image_id)
        .values(verdict=verdict.value, decided_by_id=user.id, decided_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        db.session.rollback()
        raise NotFound(f"Image {image_id} is not in this sample", details={"field": "image_id"})
    undecided = db.session.scalar(select(exists().where(SampleItem.sample_id == sample.id, SampleItem.verdict.is_(None))))
    failed = False
    if not undecided:
        figures = estimate(sample)
        passed = Fraction(figures["accepted"], figures["decided"]) >= Fraction(repr(sample.required_accuracy))
        sample.outcome, sample.decided_at = (SampleOutcome.passed if passed else SampleOutcome.failed), utcnow()
        failed = not passed
    db.session.commit()
    if failed:
        send_back(sample, user)
    return sample


# ---- a failed sample's lot ----------------------------------------------------------------


def lot_query(sample: AcceptanceSample, after: int = 0):
    """The sample's lot as it stands: the task's images accepted when it was drawn and ever since,
    by id (after `after`).

    Accepted then: the image's last change up to the draw left it accepted. Ever since: no change
    after the draw left it in another state (a correction keeps it accepted; a send-back does not).
    """
    task = db.session.get(LabelingTask, sample.task_id)
    before, since = aliased(AnnotationRevision), aliased(AnnotationRevision)
    state_then = (
        select(before.state).where(before.image_id == Image.id, before.created_at <= sample.created_at)
        .order_by(before.number.desc()).limit(1).scalar_subquery()
    )
    left = exists().where(since.image_id == Image.id, since.created_at > sample.created_at, since.state != ImageState.accepted.value)
    return _accepted_now(task).where(Image.id > after, and_(state_then == ImageState.accepted.value, ~left))


def lot_remaining(sample: AcceptanceSample) -> int:
    """How many of the lot's images are still accepted (of a failed sample: still to send back)."""
    return db.session.scalar(select(func.count()).select_from(lot_query(sample).order_by(None).subquery()))


def send_back(sample: AcceptanceSample, user: User) -> Job:
    """Start (or answer the running) job that sends a failed sample's lot back to review."""
    task = db.session.get(LabelingTask, sample.task_id)
    return start_job(
        SEND_BACK_LOT, sample.id, user.id, dataset=db.session.get(Dataset, task.dataset_id), user=user, total=lot_remaining(sample),
        message=f"Waiting for a worker to send the lot of sample {sample.id} back for review",
    )


def send_back_job(sample: AcceptanceSample) -> Job | None:
    """The latest job sending the sample's lot back, if any."""
    task = db.session.get(LabelingTask, sample.task_id)
    jobs = db.session.scalars(
        select(Job).where(Job.kind == SEND_BACK_LOT.key, Job.dataset_id == task.dataset_id).order_by(Job.created_at.desc())
    )
    return next((job for job in jobs if job.args and job.args[0] == sample.id), None)


def send_back_chunk(sample: AcceptanceSample, user: User, after: int) -> tuple[list[int], int]:
    """Send the next chunk of the lot (ids above `after`) back to review, each image committed on
    its own through the one write path, so its history records it. (ids looked at, ids sent back)."""
    image_ids = list(db.session.scalars(lot_query(sample, after).limit(CHUNK)))
    sent = 0
    for image in db.session.scalars(select(Image).where(Image.id.in_(image_ids)).order_by(Image.id)).all():
        try:
            _store(image, user, lifecycle.SEND_BACK, lambda fresh: lifecycle.after(lifecycle.SEND_BACK, fresh.state), None)
        except Conflict:
            continue  # it left accepted between the query and its claim (a reviewer's change): no longer of the lot
        sent += 1
    return image_ids, sent


def describe(sample: AcceptanceSample) -> dict:
    """Everything the API and the page show of a sample."""
    out = {
        "id": sample.id, "task_id": sample.task_id, "rate": sample.rate, "required_accuracy": sample.required_accuracy,
        "lot_size": sample.lot_size, "outcome": sample.outcome.value, "created_by_id": sample.created_by_id,
        "created_at": sample.created_at, "decided_at": sample.decided_at, **estimate(sample),
    }
    if sample.outcome == SampleOutcome.failed:
        out["lot_remaining"] = lot_remaining(sample)
        out["job"] = send_back_job(sample)
    return out
