"""The review API: one verdict, many, the queue's next image, the last rejection; every field's bad input."""

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Image, ImageState, Review
from services import reviews
from tests.factories import token_for
from tests.reviews.conftest import make_desk
from tests.support import member, sign_in


def url(desk, image_id: int) -> str:
    return f"/api/v1/datasets/{desk.dataset.id}/images/{image_id}/review"


def state_of(image_id: int) -> ImageState:
    db.session.expire_all()
    return db.session.get(Image, image_id).state


def nothing_reviewed(desk) -> bool:
    return db.session.scalar(select(func.count()).select_from(Review)) == 0 and {state_of(i) for i in desk.ids} == {ImageState.to_review}


def error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()["error"]


def test_a_reviewer_accepts_and_the_history_shows_the_verdict(client, desk):
    headers = token_for(desk.reviewer)
    response = client.post(url(desk, desk.ids[0]), json={"verdict": "accept", "comment": "Good boxes", "revision": 2}, headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"image_id": desk.ids[0], "revision": 3, "state": "accepted", "verdict": "accept", "comment": "Good boxes"}
    history = client.get(f"/api/v1/datasets/{desk.dataset.id}/images/{desk.ids[0]}/history", headers=headers).get_json()["items"]
    assert {k: history[0][k] for k in ("number", "action", "verdict", "comment", "state")} == {
        "number": 3, "action": "accept", "verdict": "accept", "comment": "Good boxes", "state": "accepted"}
    assert history[1]["verdict"] is None and history[1]["comment"] is None


def test_a_reviewer_rejects_and_the_labeler_reads_the_comment(client, desk):
    response = client.post(url(desk, desk.ids[1]), json={"verdict": "reject", "comment": "Missed the truck"}, headers=token_for(desk.reviewer))
    assert response.get_json()["state"] == "rejected"
    seen = client.get(f"/api/v1/datasets/{desk.dataset.id}/images/{desk.ids[1]}/rejection", headers=token_for(desk.labeler))
    rejection = seen.get_json()["rejection"]
    assert rejection["comment"] == "Missed the truck" and rejection["reviewer"]["id"] == desk.reviewer.id and rejection["revision"] == 3
    assert rejection["created_at"].endswith("+00:00")
    never = client.get(f"/api/v1/datasets/{desk.dataset.id}/images/{desk.ids[0]}/rejection", headers=token_for(desk.labeler))
    assert never.get_json() == {"rejection": None}


def test_the_canvas_gives_verdicts_with_its_session_cookie(client, desk):
    sign_in(client, desk.reviewer)
    response = client.post(url(desk, desk.ids[0]), json={"verdict": "accept"})
    assert response.status_code == 200 and state_of(desk.ids[0]) == ImageState.accepted


@pytest.mark.parametrize("body,field,words", [
    ({"verdict": "reject"}, "comment", "needs a comment"),
    ({"verdict": "reject", "comment": "  "}, "comment", "needs a comment"),
    ({"verdict": "reject", "comment": None}, "comment", "needs a comment"),
    ({"verdict": "reject", "comment": ["fix"]}, "comment", "must be text"),
    ({"verdict": "accept", "comment": "x" * (reviews.MAX_COMMENT + 1)}, "comment", f"at most {reviews.MAX_COMMENT}"),
    ({"verdict": "approve"}, "verdict", "accept or reject"),
    ({"verdict": 1}, "verdict", "accept or reject"),
    ({"verdict": "accept", "revision": "2"}, "revision", "revision"),
    ({"verdict": "accept", "revision": -1}, "revision", "revision"),
])
def test_bad_input_for_each_field_is_a_clear_422_naming_it_and_changes_nothing(client, desk, body, field, words):
    refused = error(client.post(url(desk, desk.ids[0]), json=body, headers=token_for(desk.reviewer)), 422)
    assert refused["code"] == "invalid" and words in refused["message"] and refused["details"]["field"] == field
    assert nothing_reviewed(desk)


def test_a_missing_verdict_or_a_body_that_is_no_object_is_refused(client, desk):
    headers = token_for(desk.reviewer)
    missing = error(client.post(url(desk, desk.ids[0]), json={"comment": "hm"}, headers=headers), 422)
    assert "verdict" in missing["message"]
    assert client.post(url(desk, desk.ids[0]), data="verdict=accept", headers={**headers, "Content-Type": "text/plain"}).status_code == 415
    assert client.post(url(desk, desk.ids[0]), data="{not json", headers={**headers, "Content-Type": "application/json"}).status_code == 400
    assert nothing_reviewed(desk)


def test_a_huge_comment_is_refused_before_it_is_read(client, desk):
    refused = error(client.post(url(desk, desk.ids[0]), json={"verdict": "reject", "comment": "x" * 2_200_000}, headers=token_for(desk.reviewer)), 413)
    assert refused["code"] == "request_too_large" and "2 MB" in refused["message"]
    assert nothing_reviewed(desk)


def test_a_verdict_on_an_image_not_in_review_is_a_409_saying_so(client, desk):
    headers = token_for(desk.reviewer)
    client.post(url(desk, desk.ids[0]), json={"verdict": "accept"}, headers=headers)
    again = error(client.post(url(desk, desk.ids[0]), json={"verdict": "reject", "comment": "late"}, headers=headers), 409)
    assert again["code"] == "wrong_state" and "accepted" in again["message"]
    assert db.session.scalar(select(func.count()).select_from(Review)) == 1


def test_a_verdict_on_a_revision_changed_since_is_a_409_with_the_current_work(client, desk):
    stale = error(client.post(url(desk, desk.ids[0]), json={"verdict": "accept", "revision": 1}, headers=token_for(desk.reviewer)), 409)
    assert stale["code"] == "conflict" and stale["details"]["current_revision"] == 2 and len(stale["details"]["annotations"]) == 1
    assert nothing_reviewed(desk)


def test_labelers_may_not_review_even_their_own_images(client, desk):
    headers = token_for(desk.labeler)
    assert error(client.post(url(desk, desk.ids[0]), json={"verdict": "accept"}, headers=headers), 403)["code"] == "forbidden"
    bulk = client.post(f"/api/v1/datasets/{desk.dataset.id}/reviews", json={"image_ids": desk.ids, "verdict": "accept"}, headers=headers)
    assert error(bulk, 403)["code"] == "forbidden"
    assert error(client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next", headers=headers), 403)["code"] == "forbidden"
    assert nothing_reviewed(desk)


def test_an_image_of_another_dataset_is_not_found_through_this_one(client, desk):
    other = make_desk(images=1, name="Elsewhere")
    member(other.dataset, "reviewer")
    response = client.post(url(desk, other.ids[0]), json={"verdict": "accept"}, headers=token_for(desk.reviewer))
    assert error(response, 404)["code"] == "not_found"
    outsider = client.post(url(other, other.ids[0]), json={"verdict": "accept"}, headers=token_for(desk.reviewer))
    assert error(outsider, 404)["code"] == "not_found"
    assert state_of(other.ids[0]) == ImageState.to_review


# ---- many at once --------------------------------------------------------------------------


def test_a_bulk_verdict_answers_each_images_outcome(client, desk):
    other = make_desk(images=1, name="Elsewhere")
    client.post(url(desk, desk.ids[3]), json={"verdict": "accept"}, headers=token_for(desk.reviewer))
    body = {"image_ids": [desk.ids[0], desk.ids[1], desk.ids[3], other.ids[0]], "verdict": "reject", "comment": "Too loose"}
    response = client.post(f"/api/v1/datasets/{desk.dataset.id}/reviews", json=body, headers=token_for(desk.reviewer))
    answer = response.get_json()
    assert response.status_code == 200 and (answer["accepted"], answer["rejected"], answer["refused"]) == (0, 2, 2)
    assert [(i["image_id"], i["outcome"], i["code"]) for i in answer["items"]] == [
        (desk.ids[0], "rejected", None), (desk.ids[1], "rejected", None), (desk.ids[3], "refused", "wrong_state"), (other.ids[0], "refused", "not_found")]
    assert state_of(other.ids[0]) == ImageState.to_review


@pytest.mark.parametrize("body,field,words", [
    ({"image_ids": [], "verdict": "accept"}, "image_ids", "at least one"),
    ({"image_ids": "1,2", "verdict": "accept"}, "image_ids", "list of image ids"),
    ({"image_ids": [1.5], "verdict": "accept"}, "image_ids", "list of image ids"),
    ({"image_ids": list(range(1, reviews.MAX_BULK + 2)), "verdict": "accept"}, "image_ids", str(reviews.MAX_BULK)),
    ({"image_ids": [1], "verdict": "nope"}, "verdict", "accept or reject"),
    ({"image_ids": [1], "verdict": "reject"}, "comment", "needs a comment"),
    ({"image_ids": [1], "verdict": "reject", "comment": "x" * (reviews.MAX_COMMENT + 1)}, "comment", str(reviews.MAX_COMMENT)),
])
def test_a_bad_bulk_request_is_a_clear_422_and_reviews_nothing(client, desk, body, field, words):
    body = {**body, "image_ids": [desk.ids[0], *body["image_ids"][1:]] if body["image_ids"] == [1] else body["image_ids"]}
    response = client.post(f"/api/v1/datasets/{desk.dataset.id}/reviews", json=body, headers=token_for(desk.reviewer))
    refused = error(response, 422)
    assert words in refused["message"] and refused["details"]["field"] == field
    assert nothing_reviewed(desk)


def test_a_bulk_request_without_ids_or_verdict_is_a_422(client, desk):
    for body in ({"verdict": "accept"}, {"image_ids": desk.ids}):
        response = client.post(f"/api/v1/datasets/{desk.dataset.id}/reviews", json=body, headers=token_for(desk.reviewer))
        assert error(response, 422)["code"] == "invalid"
    assert nothing_reviewed(desk)


# ---- the queue -----------------------------------------------------------------------------


def test_next_gives_two_reviewers_different_images_with_the_urls_to_use(client, desk):
    first = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next", headers=token_for(desk.reviewer))
    second = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next", headers=token_for(desk.owner))
    one, two = first.get_json(), second.get_json()
    assert (one["image_id"], two["image_id"]) == (desk.ids[0], desk.ids[1])
    base = f"/api/v1/datasets/{desk.dataset.id}/images/{desk.ids[0]}"
    assert one == {
        "image_id": desk.ids[0], "revision": 2, "state": "to_review", "annotations_url": f"{base}/annotations",
        "review_url": f"{base}/review", "canvas_url": f"/datasets/{desk.dataset.id}/images/{desk.ids[0]}/label?review=1",
        "lease_seconds": reviews.LEASE_SECONDS,
    }
    moved = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next?after={desk.ids[0]}", headers=token_for(desk.reviewer))
    assert moved.get_json()["image_id"] == desk.ids[2]
    narrowed = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next?task_id={desk.task.id}", headers=token_for(desk.reviewer))
    assert narrowed.get_json()["canvas_url"].endswith(f"review=1&task_id={desk.task.id}")


def test_next_answers_204_when_nothing_waits(client, desk):
    headers = token_for(desk.reviewer)
    client.post(f"/api/v1/datasets/{desk.dataset.id}/reviews", json={"image_ids": desk.ids, "verdict": "accept"}, headers=headers)
    response = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next", headers=headers)
    assert response.status_code == 204 and response.data == b""


@pytest.mark.parametrize("query,field", [
    ("task_id=0", "task_id"), ("task_id=abc", "task_id"), (f"task_id={2**31}", "task_id"), ("after=-1", "after"), ("after=x", "after"),
])
def test_bad_queue_arguments_are_a_422(client, desk, query, field):
    refused = error(client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next?{query}", headers=token_for(desk.reviewer)), 422)
    assert field in refused["message"]


def test_the_queue_refuses_another_datasets_task(client, desk):
    other = make_desk(images=1, name="Elsewhere")
    response = client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next?task_id={other.task.id}", headers=token_for(desk.reviewer))
    refused = error(response, 422)
    assert refused["details"]["field"] == "task_id" and "not a labeling task of this dataset" in refused["message"]


def test_the_queue_says_503_when_redis_is_unreachable(client, desk, monkeypatch):
    from redis.exceptions import ConnectionError

    def down(*args, **kwargs):
        raise ConnectionError("gone")

    monkeypatch.setattr("redis.Redis.mget", down)
    refused = error(client.get(f"/api/v1/datasets/{desk.dataset.id}/reviews/next", headers=token_for(desk.reviewer)), 503)
    assert refused["code"] == "unavailable" and "Redis" in refused["message"]
