"""Acceptance sampling: the Wilson interval, reproducible draws, verdicts, pass and fail, and the
failed lot's way back to review (services/sampling.py, workers/sampling.py)."""

import math

import pytest

from core.errors import Conflict, Invalid, NotFound
from core.extensions import db
from models import AcceptanceSample, AnnotationRevision, Image, ImageState, Job, JobStatus, SampleItem, SampleOutcome
from services import sampling
from tests.factories import make_dataset, make_user
from tests.support import insert_images
from tests.team_stats.support import accept, accepted_task, turn


@pytest.fixture
def lot(app_ctx):
    owner = make_user(name="Owner")
    dataset = make_dataset(owner, name="Parts")
    ids = insert_images(dataset, 12)
    task = accepted_task(dataset, owner, ids[:10], sampling_rate=0.3)
    return owner, dataset, task, ids


def states(ids) -> list[str]:
    db.session.expire_all()
    return [db.session.get(Image, image_id).state.value for image_id in ids]


@pytest.mark.parametrize("successes, n, low, high", [
    (8, 10, 0.4902, 0.9433), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (95, 100, 0.8882, 0.9785), (1, 1, 0.2065, 1.0),
])
def test_wilson_interval_matches_known_values(successes, n, low, high):
    got = sampling.wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_of_no_trials_is_none():
    assert sampling.wilson_interval(0, 0) is None


@pytest.mark.parametrize("rate, lot_size, size", [(0.1, 30, 3), (0.3, 10, 3), (0.25, 10, 3), (0.001, 10, 1), (1, 7, 7), (0.07, 100, 7)])
def test_sample_size_is_the_ceiling_of_rate_times_lot_and_at_least_one(rate, lot_size, size):
    assert sampling.sample_size(rate, lot_size) == size


def test_the_same_seed_draws_the_same_sample_whatever_the_order_of_the_lot():
    lot_ids = list(range(1, 1001))
    first = sampling.draw(lot_ids, 50, seed=7)
    assert sampling.draw(list(reversed(lot_ids)), 50, seed=7) == first
    assert sampling.draw(lot_ids, 50, seed=8) != first
    assert len(set(first)) == 50 and first == sorted(first)


def test_a_sample_of_a_task_is_reproducible_with_a_seed(lot):
    owner, _, task, ids = lot
    first = sampling.start_sample(task, owner, rate=0.3, seed=42)
    drawn = [item.image_id for item in sampling.items_of(first)]
    assert len(drawn) == 3 and set(drawn) <= set(ids[:10]) and first.lot_size == 10
    db.session.delete(first)
    db.session.commit()
    again = sampling.start_sample(task, owner, rate=0.3, seed=42)
    assert [item.image_id for item in sampling.items_of(again)] == drawn


def test_the_rate_defaults_to_the_tasks_and_the_required_accuracy_to_95_percent(lot):
    owner, _, task, _ = lot
    sample = sampling.start_sample(task, owner)
    assert (sample.rate, sample.required_accuracy, sample.outcome) == (0.3, 0.95, SampleOutcome.pending)
    assert len(sampling.items_of(sample)) == 3


BAD = [
    ("rate", 0), ("rate", 2), ("rate", -0.1), ("rate", 1.0000001), ("rate", math.nan), ("rate", math.inf), ("rate", "0.5"),
    ("rate", True), ("rate", [0.5]), ("rate", 10**30),
    ("required_accuracy", 0), ("required_accuracy", 1.5), ("required_accuracy", -1), ("required_accuracy", "high"),
    ("required_accuracy", math.nan),
    ("seed", "1"), ("seed", 2**70), ("seed", 1.5), ("seed", False),
]


@pytest.mark.parametrize("field, value", BAD)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(lot, field, value):
    owner, _, task, _ = lot
    args = {"rate": 0.3, "required_accuracy": 0.9, "seed": 1, field: value}
    with pytest.raises(Invalid) as refused:
        sampling.start_sample(task, owner, **args)
    assert refused.value.details == {"field": field} and field in refused.value.message
    assert db.session.scalar(db.select(db.func.count()).select_from(AcceptanceSample)) == 0


def test_no_rate_on_a_task_without_a_sampling_rate_is_refused(lot):
    owner, _, task, _ = lot
    task.sampling_rate = 0
    db.session.commit()
    with pytest.raises(Invalid, match="rate is required"):
        sampling.start_sample(task, owner)


def test_a_sample_bigger_than_anyone_checks_is_refused_with_the_largest_rate(lot, monkeypatch):
    owner, _, task, _ = lot
    monkeypatch.setattr(sampling, "MAX_SAMPLE", 4)
    with pytest.raises(Invalid, match="at most 0.4"):
        sampling.start_sample(task, owner, rate=0.5)


def test_one_pending_sample_per_task(lot):
    owner, _, task, _ = lot
    sampling.start_sample(task, owner, rate=0.3)
    with pytest.raises(Conflict) as second:
        sampling.start_sample(task, owner, rate=0.3)
    assert second.value.code == "sample_pending"


def test_a_task_without_accepted_images_has_nothing_to_sample(lot):
    owner, dataset, _, ids = lot
    from tests.team_stats.support import make_task

    empty = make_task(dataset, [owner], name="Fresh")
    turn(empty, ids[11], owner)
    with pytest.raises(Conflict) as refused:
        sampling.start_sample(empty, owner, rate=0.5)
    assert refused.value.code == "nothing_to_sample"


def test_verdicts_change_until_decided_and_the_estimate_shows_while_pending(lot):
    owner, _, task, _ = lot
    sample = sampling.start_sample(task, owner, rate=0.3, seed=3, required_accuracy=0.6)
    first, second, third = (item.image_id for item in sampling.items_of(sample))
    sampling.give_verdict(sample, first, "reject", owner)
    sampling.give_verdict(sample, first, "accept", owner)  # changed before the decision
    sampling.give_verdict(sample, second, "reject", owner)
    pending = sampling.estimate(sample)
    assert (pending["decided"], pending["accepted"], pending["accuracy"]) == (2, 1, 0.5)
    assert (pending["interval_low"], pending["interval_high"]) == pytest.approx(sampling.wilson_interval(1, 2))
    assert sample.outcome == SampleOutcome.pending
    sampling.give_verdict(sample, third, "accept", owner)
    assert sample.outcome == SampleOutcome.passed and sample.decided_at is not None  # 2/3 >= 0.6
    with pytest.raises(Conflict) as late:
        sampling.give_verdict(sample, third, "reject", owner)
    assert late.value.code == "sample_decided"
    assert db.session.scalar(db.select(SampleItem.verdict).where(SampleItem.image_id == third)) == "accept"


@pytest.mark.parametrize("verdict", ["maybe", "", None, 1, "ACCEPT "])
def test_an_unknown_verdict_is_refused(lot, verdict):
    owner, _, task, _ = lot
    sample = sampling.start_sample(task, owner, rate=0.3)
    with pytest.raises(Invalid) as refused:
        sampling.give_verdict(sample, sampling.items_of(sample)[0].image_id, verdict, owner)
    assert refused.value.details == {"field": "verdict"}


def test_a_verdict_on_an_image_outside_the_sample_is_not_found(lot):
    owner, _, task, ids = lot
    sample = sampling.start_sample(task, owner, rate=0.3, seed=5)
    outside = next(i for i in ids if i not in {item.image_id for item in sampling.items_of(sample)})
    with pytest.raises(NotFound):
        sampling.give_verdict(sample, outside, "accept", owner)
    assert sampling.estimate(sample)["decided"] == 0


def test_a_passed_sample_leaves_the_lot_accepted(lot):
    owner, _, task, ids = lot
    sample = sampling.start_sample(task, owner, rate=0.3)
    for item in sampling.items_of(sample):
        sampling.give_verdict(sample, item.image_id, "accept", owner)
    assert sample.outcome == SampleOutcome.passed
    assert states(ids[:10]) == ["accepted"] * 10 and db.session.scalar(db.select(db.func.count()).select_from(Job)) == 0


def test_a_failed_sample_sends_the_lot_back_to_review_and_the_history_records_it(lot, run_jobs):
    owner, dataset, task, ids = lot
    sample = sampling.start_sample(task, owner, rate=0.3, seed=9)
    # Accepted after the draw: not part of the lot the sample stands for.
    turn(task, ids[10], owner, opened=0, submitted=1)
    accept([ids[10]], owner)
    items = sampling.items_of(sample)
    sampling.give_verdict(sample, items[0].image_id, "reject", owner)
    for item in items[1:]:
        sampling.give_verdict(sample, item.image_id, "accept", owner)
    assert sample.outcome == SampleOutcome.failed  # 2/3 < 0.95
    assert sampling.lot_remaining(sample) == 10
    run_jobs()
    job = sampling.send_back_job(sample)
    assert job.status == JobStatus.finished and job.result == {"sent_back": 10}, job.message
    assert states(ids[:10]) == ["to_review"] * 10
    assert states([ids[10], ids[11]]) == ["accepted", "unlabeled"]
    actions = db.session.scalars(
        db.select(AnnotationRevision.action).where(AnnotationRevision.image_id == ids[0]).order_by(AnnotationRevision.number)
    ).all()
    assert actions == ["submit", "accept", "send_back"]
    assert sampling.describe(sample)["lot_remaining"] == 0


def test_an_interrupted_send_back_is_run_again_to_the_same_end(lot, run_jobs, monkeypatch):
    owner, _, task, ids = lot
    sample = sampling.start_sample(task, owner, rate=0.1, seed=1)
    monkeypatch.setattr(sampling, "send_back", lambda sample, user: None)  # decided, but its job not started yet
    sampling.give_verdict(sample, sampling.items_of(sample)[0].image_id, "reject", owner)
    monkeypatch.undo()
    monkeypatch.setattr(sampling, "CHUNK", 4)
    sampling.send_back_chunk(sample, owner, 0)  # what a worker killed after its first chunk left
    assert states(ids[:10]).count("to_review") == 4
    job = sampling.send_back(sample, owner)
    assert job.total == 6
    run_jobs()
    assert states(ids[:10]) == ["to_review"] * 10
    again = sampling.send_back(sample, owner)  # a second run finds nothing left to send
    run_jobs()
    assert db.session.get(Job, again.id).result == {"sent_back": 0}
    assert states(ids[:10]) == ["to_review"] * 10


def test_an_image_reviewed_again_since_the_draw_is_not_sent_back(lot, run_jobs):
    owner, _, task, ids = lot
    sample = sampling.start_sample(task, owner, rate=0.1, seed=2)
    from services import lifecycle
    from services.annotations import _store

    # ids[0] goes back to review and is accepted again after the draw: it has been looked at since.
    image = db.session.get(Image, ids[0])
    _store(image, owner, lifecycle.SEND_BACK, lambda fresh: lifecycle.after(lifecycle.SEND_BACK, fresh.state), None)
    accept_again = db.session.get(Image, ids[0])
    _store(accept_again, owner, lifecycle.ACCEPT, lambda fresh: lifecycle.after(lifecycle.ACCEPT, fresh.state), None)
    # ids[1] is corrected after the draw but stays accepted: still of the lot.
    from services.annotations import replace_annotations

    replace_annotations(db.session.get(Image, ids[1]), owner, [])
    assert sampling.lot_remaining(sample) == 9
    sampling.give_verdict(sample, sampling.items_of(sample)[0].image_id, "reject", owner)
    run_jobs()
    assert states(ids[:10]) == ["accepted"] + ["to_review"] * 9
    assert db.session.get(Image, ids[1]).state == ImageState.to_review
