"""Reviewers at once against a real HTTP server (threads, real connections), on SQLite and PostgreSQL:
of verdicts on one image exactly one wins and the others get a clear 409; the queue hands
reviewers asking together different images."""

from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from core.extensions import db
from models import Image, ImageState, Review
from tests.api.test_races import at_once, fresh
from tests.factories import token_for
from tests.reviews.conftest import make_desk
from tests.support import member

REVIEWERS = 8


@pytest.fixture
def crowd(app_ctx, live_server):
    desk = make_desk(images=10)
    headers = [token_for(member(desk.dataset, "reviewer")) for _ in range(REVIEWERS + 3)]
    # Plain values: the threads must not touch ORM objects of the test's session.
    return live_server, desk.dataset.id, desk.ids, headers


def verdict(base, dataset_id, image_id, headers, n: int, with_revision: bool):
    body = {"verdict": "accept"} if n % 2 == 0 else {"verdict": "reject", "comment": f"reviewer {n} says redo"}
    if with_revision:
        body["revision"] = 2
    return requests.post(f"{base}/api/v1/datasets/{dataset_id}/images/{image_id}/review", json=body, headers=headers, timeout=60)


def reviews_of(image_id: int) -> list[Review]:
    return list(db.session.scalars(select(Review).where(Review.image_id == image_id)))


@pytest.mark.parametrize("with_revision", [False, True], ids=["current", "named-revision"])
def test_two_reviewers_judging_one_image_at_once_one_wins_the_other_gets_a_409(crowd, with_revision):
    base, dataset_id, ids, headers = crowd
    for image_id in ids[:5]:  # several rounds: one race may be won by luck
        responses = at_once(2, lambda n: verdict(base, dataset_id, image_id, headers[n], n, with_revision))
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text[:300] for r in responses]
        [won] = [r for r in responses if r.status_code == 200]
        [lost] = [r for r in responses if r.status_code == 409]
        assert lost.json()["error"]["code"] == ("conflict" if with_revision else "wrong_state") and lost.json()["error"]["message"]
        fresh()
        [review] = reviews_of(image_id)
        state = db.session.scalar(select(Image.state).where(Image.id == image_id))
        assert review.verdict.value == won.json()["verdict"] and state.value == won.json()["state"]
        assert db.session.scalar(select(Image.revision).where(Image.id == image_id)) == 3


def test_eight_reviewers_judging_one_image_at_once_exactly_one_wins(crowd):
    base, dataset_id, ids, headers = crowd
    for image_id in ids[5:8]:
        responses = at_once(REVIEWERS, lambda n: verdict(base, dataset_id, image_id, headers[n], n, False))
        assert Counter(r.status_code for r in responses) == {200: 1, 409: REVIEWERS - 1}, [r.text[:200] for r in responses]
        fresh()
        assert len(reviews_of(image_id)) == 1


def test_reviewers_bulk_judging_the_same_images_at_once_judge_each_once(crowd):
    base, dataset_id, ids, headers = crowd
    url = f"{base}/api/v1/datasets/{dataset_id}/reviews"
    responses = at_once(4, lambda n: requests.post(url, json={"image_ids": ids, "verdict": "accept"}, headers=headers[n], timeout=120))
    assert [r.status_code for r in responses] == [200] * 4, [r.text[:300] for r in responses]
    answers = [r.json() for r in responses]
    assert sum(a["accepted"] for a in answers) == len(ids) and sum(a["refused"] for a in answers) == 3 * len(ids)
    refused = {item["code"] for a in answers for item in a["items"] if item["outcome"] == "refused"}
    assert refused == {"wrong_state"}
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Review)) == len(ids)
    assert set(db.session.scalars(select(Image.state).where(Image.id.in_(ids)))) == {ImageState.accepted}


def test_reviewers_asking_for_the_next_image_at_once_get_different_ones(crowd):
    base, dataset_id, ids, headers = crowd
    url = f"{base}/api/v1/datasets/{dataset_id}/reviews/next"
    responses = at_once(REVIEWERS, lambda n: requests.get(url, headers=headers[n], timeout=60))
    assert [r.status_code for r in responses] == [200] * REVIEWERS, [r.text[:300] for r in responses]
    handed = [r.json()["image_id"] for r in responses]
    assert sorted(handed) == ids[:REVIEWERS]
    # Asked again, each gets back the image they hold; the last two go to two more reviewers; then nothing is free.
    again = at_once(REVIEWERS, lambda n: requests.get(url, headers=headers[n], timeout=60))
    assert [r.json()["image_id"] for r in again] == handed
    late = at_once(2, lambda n: requests.get(url, headers=headers[REVIEWERS + n], timeout=60))
    assert sorted(r.json()["image_id"] for r in late) == ids[REVIEWERS:]
    assert requests.get(url, headers=headers[-1], timeout=60).status_code == 204
