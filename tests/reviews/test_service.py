"""The verdict, the bulk verdict, the history, the last rejection and the queue, as services."""

import pytest
from sqlalchemy import func, select, text

from core.errors import Conflict, Invalid
from core.extensions import db
from core.queues import get_redis
from models import Assignment, AssignmentState, Image, ImageState, LabelingTask, Review, Verdict
from services import annotations, reviews, tasks
from tests.reviews.conftest import hand_in, make_desk
from tests.support import insert_images


def image(image_id: int) -> Image:
    db.session.expire_all()
    return db.session.get(Image, image_id)


def review_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Review))


# ---- one verdict ---------------------------------------------------------------------------


def test_accepting_records_a_revision_and_a_review_of_the_handed_in_assignment(desk):
    turn = db.session.scalar(select(Assignment.id).where(Assignment.image_id == desk.ids[0]))
    saved = reviews.give_verdict(image(desk.ids[0]), desk.reviewer, "accept", "  fine  ", based_on_revision=2)
    assert saved == {"image_id": desk.ids[0], "revision": 3, "state": "accepted", "verdict": "accept", "comment": "fine"}
    [review] = db.session.scalars(select(Review)).all()
    assert (review.image_id, review.assignment_id, review.reviewer_id, review.verdict, review.comment, review.revision) == (
        desk.ids[0], turn, desk.reviewer.id, Verdict.accept, "fine", 3)
    assert image(desk.ids[0]).state == ImageState.accepted
    assert len(annotations.get_annotations(image(desk.ids[0]))["annotations"]) == 1, "a verdict keeps the annotations"
    newest, submitted = annotations.history(image(desk.ids[0]))[:2]
    assert (newest["action"], newest["verdict"], newest["comment"], newest["state"], newest["author"]["id"]) == (
        "accept", "accept", "fine", "accepted", desk.reviewer.id)
    assert (submitted["action"], submitted["verdict"], submitted["comment"]) == ("submit", None, None)


def test_rejecting_gives_the_image_back_to_its_labeler_first_with_the_comment(desk):
    first, rejected = desk.ids[0], desk.ids[2]
    db.session.execute(Assignment.__table__.update().where(Assignment.image_id == first).values(state=AssignmentState.assigned))
    db.session.commit()
    saved = reviews.give_verdict(image(rejected), desk.reviewer, "reject", "The car on the left has no box")
    assert (saved["state"], saved["revision"]) == ("rejected", 3)
    turn = db.session.scalar(select(Assignment).where(Assignment.image_id == rejected))
    others = db.session.scalars(select(Assignment.position).where(Assignment.image_id != rejected, Assignment.labeler_id == desk.labeler.id))
    assert turn.state == AssignmentState.assigned and turn.submitted_at is None and turn.position < min(others)
    latest = reviews.latest_rejection(image(rejected))
    assert latest["comment"] == "The car on the left has no box" and latest["reviewer"]["id"] == desk.reviewer.id
    assert latest["revision"] == 3 and latest["created_at"] is not None
    [entry] = [e for e in annotations.history(image(rejected)) if e["action"] == "reject"]
    assert entry["comment"] == "The car on the left has no box" and entry["verdict"] == "reject"
    # The labeler fixes it and hands it in again; the reviewer accepts; the rejection stays the last one.
    annotations.submit(image(rejected), desk.labeler)
    assert image(rejected).state == ImageState.to_review
    reviews.give_verdict(image(rejected), desk.reviewer, "accept")
    assert reviews.latest_rejection(image(rejected))["comment"] == "The car on the left has no box"
    assert [e["action"] for e in annotations.history(image(rejected))][:3] == ["accept", "submit", "reject"]


def test_an_image_never_rejected_has_no_last_rejection(desk):
    assert reviews.latest_rejection(image(desk.ids[0])) is None


@pytest.mark.parametrize("verdict,comment,field,words", [
    ("reject", "", "comment", "needs a comment"),
    ("reject", "   \n ", "comment", "needs a comment"),
    ("reject", None, "comment", "needs a comment"),
    ("accept", "x" * (reviews.MAX_COMMENT + 1), "comment", f"at most {reviews.MAX_COMMENT}"),
    ("reject", 42, "comment", "must be text"),
    ("reject", "a\x00b", "comment", "NUL"),
    ("maybe", "", "verdict", "accept or reject"),
    ("ACCEPT", "", "verdict", "accept or reject"),
    (None, "", "verdict", "accept or reject"),
    (["accept"], "", "verdict", "accept or reject"),
])
def test_a_bad_verdict_or_comment_is_a_clear_422_and_changes_nothing(desk, verdict, comment, field, words):
    with pytest.raises(Invalid) as refused:
        reviews.give_verdict(image(desk.ids[0]), desk.reviewer, verdict, comment)
    assert refused.value.details["field"] == field and words in refused.value.message
    assert (image(desk.ids[0]).state, image(desk.ids[0]).revision, review_count()) == (ImageState.to_review, 2, 0)


def test_a_comment_of_exactly_the_limit_is_kept(desk):
    reviews.give_verdict(image(desk.ids[0]), desk.reviewer, "reject", "y" * reviews.MAX_COMMENT)
    assert db.session.scalar(select(Review.comment)) == "y" * reviews.MAX_COMMENT


@pytest.mark.parametrize("state", [ImageState.unlabeled, ImageState.in_progress, ImageState.accepted, ImageState.rejected])
@pytest.mark.parametrize("verdict", ["accept", "reject"])
def test_a_verdict_on_an_image_not_waiting_for_review_is_a_409_and_changes_nothing(desk, state, verdict):
    db.session.execute(Image.__table__.update().where(Image.id == desk.ids[0]).values(state=state))
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        reviews.give_verdict(image(desk.ids[0]), desk.reviewer, verdict, "why")
    assert refused.value.code == "wrong_state" and state.value.replace("_", " ") in refused.value.message
    assert (image(desk.ids[0]).state, image(desk.ids[0]).revision, review_count()) == (state, 2, 0)


def test_a_verdict_on_a_revision_someone_changed_since_is_a_409_conflict(desk):
    with pytest.raises(Conflict) as refused:
        reviews.give_verdict(image(desk.ids[0]), desk.reviewer, "accept", based_on_revision=1)
    assert refused.value.code == "conflict" and refused.value.details["current_revision"] == 2
    assert (image(desk.ids[0]).state, review_count()) == (ImageState.to_review, 0)


@pytest.mark.parametrize("revision", ["2", -1, 2.5, True])
def test_a_revision_that_is_no_revision_number_is_a_422(desk, revision):
    with pytest.raises(Invalid) as refused:
        reviews.give_verdict(image(desk.ids[0]), desk.reviewer, "accept", based_on_revision=revision)
    assert refused.value.details["field"] == "revision"


def test_a_failure_while_recording_the_review_rolls_the_whole_verdict_back(desk, monkeypatch):
    def broken(image_id):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(tasks, "reopen", broken)
    with pytest.raises(RuntimeError):
        reviews.give_verdict(image(desk.ids[0]), desk.reviewer, "reject", "redo")
    assert (image(desk.ids[0]).state, image(desk.ids[0]).revision, review_count()) == (ImageState.to_review, 2, 0)
    assert [e["action"] for e in annotations.history(image(desk.ids[0]))] == ["submit", "save"]
    assert db.session.scalar(select(Assignment.state).where(Assignment.image_id == desk.ids[0])) == AssignmentState.submitted


def test_a_verdict_on_an_image_with_no_assignment_links_none(desk):
    [loose] = insert_images(desk.dataset, 1, start=100)[-1:]
    annotations.submit(image(loose), desk.owner)  # no task asks for review: straight to accepted
    db.session.execute(Image.__table__.update().where(Image.id == loose).values(state=ImageState.to_review))
    db.session.commit()
    reviews.give_verdict(image(loose), desk.reviewer, "accept")
    assert db.session.scalar(select(Review.assignment_id).where(Review.image_id == loose)) is None


# ---- many at once --------------------------------------------------------------------------


def test_a_bulk_verdict_reports_each_image_and_one_refusal_stops_no_other(desk):
    other = make_desk(images=1, name="Elsewhere")
    reviews.give_verdict(image(desk.ids[1]), desk.reviewer, "accept")
    sent = [desk.ids[0], desk.ids[1], other.ids[0], 10**12, desk.ids[2], desk.ids[0]]
    outcome = reviews.give_verdicts(desk.dataset, desk.reviewer, sent, "reject", "Boxes too loose")
    by_id = {item["image_id"]: item for item in outcome["items"]}
    assert [item["image_id"] for item in outcome["items"]] == [desk.ids[0], desk.ids[1], other.ids[0], 10**12, desk.ids[2]]
    assert (outcome["accepted"], outcome["rejected"], outcome["refused"]) == (0, 2, 3)
    assert by_id[desk.ids[0]] == {"image_id": desk.ids[0], "outcome": "rejected", "state": "rejected", "revision": 3, "code": None, "reason": None}
    assert by_id[desk.ids[1]]["code"] == "wrong_state" and "accepted" in by_id[desk.ids[1]]["reason"]
    assert by_id[other.ids[0]]["code"] == by_id[10**12]["code"] == "not_found"
    assert image(other.ids[0]).state == ImageState.to_review, "another dataset's image is left alone"
    assert {image(i).state for i in (desk.ids[0], desk.ids[2])} == {ImageState.rejected}
    assert set(db.session.scalars(select(Review.comment).where(Review.verdict == Verdict.reject))) == {"Boxes too loose"}


@pytest.mark.parametrize("image_ids,words", [
    ([], "at least one"), ("1,2", "list of image ids"), ([1, "2"], "list of image ids"), ([True], "list of image ids"),
    (list(range(1, reviews.MAX_BULK + 2)), f"At most {reviews.MAX_BULK}"), (None, "list of image ids"),
])
def test_a_bad_bulk_list_is_a_clear_422_and_changes_nothing(desk, image_ids, words):
    with pytest.raises(Invalid) as refused:
        reviews.give_verdicts(desk.dataset, desk.reviewer, image_ids, "accept")
    assert words in refused.value.message and refused.value.details["field"] == "image_ids"
    assert review_count() == 0


def test_a_bulk_reject_needs_its_comment_before_touching_any_image(desk):
    with pytest.raises(Invalid):
        reviews.give_verdicts(desk.dataset, desk.reviewer, desk.ids, "reject", " ")
    assert review_count() == 0 and {image(i).state for i in desk.ids} == {ImageState.to_review}


def test_the_bulk_limit_itself_is_accepted(desk):
    outcome = reviews.give_verdicts(desk.dataset, desk.reviewer, desk.ids + list(range(10**9, 10**9 + reviews.MAX_BULK - 4)), "accept")
    assert (outcome["accepted"], outcome["refused"]) == (4, reviews.MAX_BULK - 4)


# ---- the queue -----------------------------------------------------------------------------


def test_reviewers_asking_for_the_next_image_get_different_ones_and_the_same_one_again(desk):
    other_reviewer = desk.owner
    mine = reviews.next_to_review(desk.dataset, desk.reviewer)
    theirs = reviews.next_to_review(desk.dataset, other_reviewer)
    assert (mine.id, theirs.id) == (desk.ids[0], desk.ids[1])
    assert reviews.next_to_review(desk.dataset, desk.reviewer).id == desk.ids[0], "a reload gives back the image held"
    ttl = get_redis().ttl(f"loupe:review-lease:{desk.ids[0]}")
    assert 0 < ttl <= reviews.LEASE_SECONDS


def test_moving_past_an_image_gives_it_back_and_a_verdict_ends_the_lease(desk):
    first = reviews.next_to_review(desk.dataset, desk.reviewer)
    second = reviews.next_to_review(desk.dataset, desk.reviewer, after_id=first.id)
    assert second.id == desk.ids[1]
    assert reviews.next_to_review(desk.dataset, desk.owner).id == desk.ids[0], "the skipped image is free again"
    reviews.give_verdict(image(second.id), desk.reviewer, "accept")
    assert get_redis().get(f"loupe:review-lease:{second.id}") is None
    assert reviews.next_to_review(desk.dataset, desk.reviewer).id == desk.ids[2]


def test_a_lease_that_ran_out_frees_the_image(desk):
    reviews.next_to_review(desk.dataset, desk.reviewer)
    get_redis().delete(f"loupe:review-lease:{desk.ids[0]}")  # what expiry does
    assert reviews.next_to_review(desk.dataset, desk.owner).id == desk.ids[0]


def test_the_queue_skips_more_held_images_than_one_read_returns(app_ctx):
    desk = make_desk(images=reviews.QUEUE_SCAN + 3)
    for image_id in desk.ids[: reviews.QUEUE_SCAN + 1]:
        get_redis().set(f"loupe:review-lease:{image_id}", "999999")
    assert reviews.next_to_review(desk.dataset, desk.reviewer).id == desk.ids[reviews.QUEUE_SCAN + 1]


def test_the_queue_is_empty_when_nothing_waits_or_everything_is_held(desk):
    for n in range(4):
        assert reviews.next_to_review(desk.dataset, desk.owner) is not None
        reviews.next_to_review(desk.dataset, desk.owner, after_id=None)
        get_redis().set(f"loupe:review-lease:{desk.ids[n]}", str(desk.owner.id))
    assert reviews.next_to_review(desk.dataset, desk.reviewer) is None
    reviews.give_verdicts(desk.dataset, desk.owner, desk.ids, "accept")
    assert reviews.next_to_review(desk.dataset, desk.owner) is None


def test_the_queue_narrows_to_one_task_and_refuses_another_datasets_task(desk):
    later = insert_images(desk.dataset, 2, start=50)[-2:]
    second = LabelingTask(dataset_id=desk.dataset.id, name="Second", review_required=True, complete=True)
    db.session.add(second)
    db.session.commit()
    hand_in(desk.dataset, second, desk.labeler, later, desk.label)
    assert reviews.next_to_review(desk.dataset, desk.reviewer, task_id=second.id).id == later[0]
    assert reviews.count_waiting(desk.dataset, second.id) == 2 and reviews.count_waiting(desk.dataset) == 6
    assert [i.id for i in reviews.review_page(desk.dataset, second.id)[0]] == later
    other = make_desk(images=1, name="Elsewhere")
    for bad in (other.task.id, 0, -3, 2**31, "1", True):
        with pytest.raises(Invalid) as refused:
            reviews.next_to_review(desk.dataset, desk.reviewer, task_id=bad)
        assert refused.value.details["field"] == "task_id"


@pytest.mark.parametrize("after", [-1, "3", 1.5])
def test_a_bad_after_is_a_422(desk, after):
    with pytest.raises(Invalid) as refused:
        reviews.next_to_review(desk.dataset, desk.reviewer, after_id=after)
    assert refused.value.details["field"] == "after"


def test_the_review_page_pages_by_id_and_counts_are_capped(desk):
    page, cursor = reviews.review_page(desk.dataset, limit=3)
    assert [i.id for i in page] == desk.ids[:3] and cursor == desk.ids[2]
    assert [i.id for i in reviews.review_page(desk.dataset, after=cursor, limit=3)[0]] == desk.ids[3:]
    assert reviews.count_waiting(desk.dataset, cap=2) == 3


def test_the_queue_query_reads_the_dataset_state_index(app_ctx):
    """Fast at a million images: an index range on (dataset_id, state, id), not a scan."""
    desk = make_desk(images=3)
    insert_images(desk.dataset, 3000, start=1000, state="accepted")
    query = reviews._waiting(desk.dataset, None, Image.id).where(Image.id > 0).order_by(Image.id).limit(reviews.QUEUE_SCAN)
    sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE image"))
        plan = "\n".join(db.session.scalars(text(f"EXPLAIN {sql}")))
    else:
        plan = "\n".join(str(row[-1]) for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "ix_image_dataset_state" in plan, plan
