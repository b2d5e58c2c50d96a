"""Reviews: a reviewer's verdict on an image handed in (accept, or reject with a comment), on one
image or many at once, and the review queue.

A verdict is a change like any other (`services.annotations._store`): it claims the image's next
revision under the image's row lock, so of two reviewers giving verdicts on one image at once
exactly one wins. The other finds the image no longer waiting for review (409 `wrong_state`) or,
if it named the revision it saw, that revision gone (409 `conflict`). The Review row and, on a
reject, the labelers' reopened turns (`services.tasks.reopen`) commit in the verdict's transaction.

The queue hands reviewers different images: asking for the next one takes a short lease on it in
Redis (SET NX EX), which other reviewers' asks skip until it expires or a verdict ends it.
"""

from redis.exceptions import RedisError
from sqlalchemy import exists, func, select

from core.errors import INT32_MAX, INT64_MAX, Conflict, Invalid, NotFound, Unavailable, is_id_list, is_int
from core.extensions import db
from core.queues import get_redis
from models import Assignment, AssignmentState, Dataset, Image, ImageState, LabelingTask, Review, User, Verdict
from services import annotations, lifecycle, tasks

MAX_COMMENT = 5000
MAX_BULK = 500
# Long enough to look at an image and correct a shape; short enough that an abandoned one comes back soon.
LEASE_SECONDS = 300
# Waiting images read per query while skipping the ones other reviewers hold.
QUEUE_SCAN = 50
PAGE = 100

_CHANGES = {Verdict.accept: lifecycle.ACCEPT, Verdict.reject: lifecycle.REJECT}
# Delete a lease only while it is still the caller's: it may have expired and been taken by another.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def parse_verdict(value) -> Verdict:
    """The verdict named by `value` (accept, reject), or Invalid saying which exist."""
    if isinstance(value, str) and value in {member.value for member in Verdict}:
        return Verdict(value)
    shown = repr(value)[:40] if isinstance(value, str) else "not text"
    raise Invalid(f"verdict must be accept or reject ({shown})", details={"field": "verdict"})


def clean_comment(verdict: Verdict, comment) -> str:
    """The comment, stripped; a reject needs one (the labeler must learn what to fix)."""
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise Invalid("comment must be text", details={"field": "comment"})
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"comment: at most {MAX_COMMENT} characters, got {len(comment)}", details={"field": "comment"})
    if "\x00" in comment:
        raise Invalid("comment must not contain NUL characters", details={"field": "comment"})
    if verdict == Verdict.reject and not comment:
        raise Invalid("A rejection needs a comment: tell the labeler what to fix", details={"field": "comment"})
    return comment


def _handed_in_assignment(image_id: int) -> int | None:
    """The turn at the image its labeler handed in last (the one the verdict judges), if any."""
    return db.session.scalar(
        select(Assignment.id).where(Assignment.image_id == image_id, Assignment.state == AssignmentState.submitted)
        .order_by(Assignment.submitted_at.desc(), Assignment.id.desc()).limit(1)
    )


def give_verdict(image: Image, user: User, verdict, comment="", based_on_revision=None) -> dict:
    """Accept or reject an image waiting for review, as a revision of its own; the image's new state.

    Args:
        based_on_revision: the revision the reviewer looked at; 409 if anyone changed the image
            since. None judges whatever is current (still 409 unless it waits for review).
    """
    verdict = parse_verdict(verdict)
    comment = clean_comment(verdict, comment)
    change = _CHANGES[verdict]
    image_id = image.id  # the commit expires the image

    def next_state(fresh: Image) -> ImageState:
        return lifecycle.after(change, fresh.state)

    def record(fresh: Image) -> None:
        db.session.add(Review(
            image_id=fresh.id, assignment_id=_handed_in_assignment(fresh.id), reviewer_id=user.id,
            verdict=verdict, comment=comment, revision=fresh.revision,
        ))
        if verdict == Verdict.reject:
            tasks.reopen(fresh.id)

    saved = annotations._store(image, user, change, next_state, based_on_revision, before_commit=record)
    release(image_id, user)
    return {"image_id": image_id, "revision": saved["revision"], "state": saved["state"], "verdict": verdict.value, "comment": comment}


def give_verdicts(dataset: Dataset, user: User, image_ids, verdict, comment="") -> dict:
    """The same verdict on many images (the grid review), each image in its own transaction.

    Every image gets an outcome: accepted, rejected, or refused with the reason (not in this
    dataset, not waiting for review, another reviewer was first). One refusal stops no other.
    """
    if not is_id_list(image_ids, INT64_MAX):
        raise Invalid("image_ids must be a list of image ids", details={"field": "image_ids"})
    ids = list(dict.fromkeys(image_ids))
    if not ids:
        raise Invalid("Select at least one image first", details={"field": "image_ids"})
    if len(ids) > MAX_BULK:
        raise Invalid(f"At most {MAX_BULK} images at once, got {len(ids)}", details={"field": "image_ids"})
    verdict = parse_verdict(verdict)
    comment = clean_comment(verdict, comment)
    mine = set(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id, Image.id.in_(ids))))
    done = {Verdict.accept: "accepted", Verdict.reject: "rejected"}[verdict]
    items = []
    for image_id in ids:
        # Read one by one: each verdict commits, and an image may be deleted meanwhile.
        image = db.session.get(Image, image_id) if image_id in mine else None
        if image is None:
            items.append(_refused(image_id, NotFound(f"Image {image_id} is not in this dataset")))
            continue
        try:
            saved = give_verdict(image, user, verdict, comment)
        except (Conflict, NotFound) as exc:
            items.append(_refused(image_id, exc))
            continue
        items.append({"image_id": image_id, "outcome": done, "state": saved["state"], "revision": saved["revision"], "code": None, "reason": None})
    counts = {outcome: sum(item["outcome"] == outcome for item in items) for outcome in ("accepted", "rejected", "refused")}
    return {"items": items, **counts}


def _refused(image_id: int, exc) -> dict:
    return {"image_id": image_id, "outcome": "refused", "state": None, "revision": None, "code": exc.code, "reason": exc.message}


def latest_rejection(image: Image) -> dict | None:
    """The image's last rejection (comment, reviewer, time), for the canvas to show its labeler."""
    row = db.session.execute(
        select(Review, User).outerjoin(User, User.id == Review.reviewer_id)
        .where(Review.image_id == image.id, Review.verdict == Verdict.reject).order_by(Review.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    review, reviewer = row
    return {"comment": review.comment, "reviewer": annotations._person(reviewer), "created_at": review.created_at, "revision": review.revision}


# ---- the queue -------------------------------------------------------------------------------


def check_task(dataset: Dataset, task_id) -> int | None:
    """The task id, if it names a task of this dataset (None: every task); Invalid otherwise."""
    if task_id is None:
        return None
    if not is_int(task_id, INT32_MAX) or task_id < 1 or db.session.scalar(
        select(LabelingTask.dataset_id).where(LabelingTask.id == task_id)
    ) != dataset.id:
        raise Invalid(f"task_id {str(task_id)[:24]} is not a labeling task of this dataset", details={"field": "task_id"})
    return task_id


def _waiting(dataset: Dataset, task_id: int | None, *columns):
    """The dataset's images waiting for review (of one task, or all), on ix_image_dataset_state."""
    query = select(*columns).where(Image.dataset_id == dataset.id, Image.state == ImageState.to_review)
    if task_id is not None:
        query = query.where(exists().where(Assignment.image_id == Image.id, Assignment.task_id == task_id))
    return query


def _lease_key(image_id: int) -> str:
    return f"loupe:review-lease:{image_id}"


def next_to_review(dataset: Dataset, user: User, task_id=None, after_id=None) -> Image | None:
    """The next image waiting for review (id order, after `after_id`), leased to the user for a
    few minutes so other reviewers asking meanwhile get other images; None when there is none.

    An image the user holds already comes back to them (a reload); naming it as `after_id` moves
    on and gives it back to the others.
    """
    task_id = check_task(dataset, task_id)
    if after_id is not None and (not is_int(after_id, INT64_MAX) or after_id < 0):
        raise Invalid("after must be an image id", details={"field": "after"})
    me = str(user.id).encode()
    try:
        redis = get_redis()
        if after_id:
            release(after_id, user)
        after = after_id or 0
        while True:
            # Index-driven: an equality on (dataset_id, state) and a range on id, in id order.
            ids = db.session.scalars(_waiting(dataset, task_id, Image.id).where(Image.id > after).order_by(Image.id).limit(QUEUE_SCAN)).all()
            if not ids:
                return None
            holders = redis.mget([_lease_key(image_id) for image_id in ids])
            for image_id, holder in zip(ids, holders):
                if holder == me:
                    redis.expire(_lease_key(image_id), LEASE_SECONDS)
                elif holder is None and redis.set(_lease_key(image_id), me, nx=True, ex=LEASE_SECONDS):
                    pass
                else:
                    continue
                # Read again once held, in a new transaction (SQLite's snapshot would not show it): a
                # verdict commits, then gives its lease back, so an image read as waiting a moment
                # ago may have been judged meanwhile.
                db.session.commit()
                image = db.session.get(Image, image_id, populate_existing=True)
                if image is not None and image.state == ImageState.to_review:
                    return image
                release(image_id, user)
            after = ids[-1]
    except RedisError:
        raise Unavailable("The review queue cannot reach Redis right now; try again in a moment") from None


def release(image_id: int, user: User) -> None:
    """Give back the user's lease on the image (after a verdict, or moving on), if they hold it."""
    try:
        get_redis().eval(_RELEASE, 1, _lease_key(image_id), str(user.id))
    except RedisError:
        pass  # the lease runs out by itself; the verdict is committed already


def review_page(dataset: Dataset, task_id=None, after: int = 0, limit: int = PAGE) -> tuple[list[Image], int | None]:
    """One keyset page of the images waiting for review (id order) and the next page's cursor."""
    task_id = check_task(dataset, task_id)
    query = _waiting(dataset, task_id, Image).where(Image.id > after).order_by(Image.id).limit(limit + 1)
    images = db.session.scalars(query).all()
    next_cursor = images[limit - 1].id if len(images) > limit else None
    return list(images[:limit]), next_cursor


def count_waiting(dataset: Dataset, task_id=None, cap: int = 1000) -> int:
    """How many images wait for review, counted up to `cap` (cap + 1 means "more")."""
    task_id = check_task(dataset, task_id)
    bounded = _waiting(dataset, task_id, Image.id).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(bounded))
