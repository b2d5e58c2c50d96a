"""Repetition above 1: each image dealt to r labelers, each labeling a version of their own; the
last hand-in sends it to review; the reviewer sees the versions with their agreement and keeps
one or merges them, then gives the verdict (SPEC section 3, issue 9 item 5)."""

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Assignment, Image
from services.labels import create_label
from tests.api.test_races import at_once
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, member
from tests.tasks.test_tasks_api import built, create, deal


@pytest.fixture
def trio(app_ctx):
    owner = make_user(name="Olga")
    dataset = make_dataset(owner, name="Street")
    labelers = [member(dataset, "labeler", name=name) for name in ("Ana", "Ben", "Cy")]
    car = create_label(dataset, name="car", default_shape="box")
    return owner, dataset, labelers, car, insert_images(dataset, 4, width=200, height=100)


def box(label, x, y=10, w=40, h=30):
    return {"label_id": label.id, "shape": "box", "geometry": {"x": x, "y": y, "width": w, "height": h}}


def version_url(task, image_id, rest=""):
    return f"/api/v1/tasks/{task['id']}/images/{image_id}/version{rest}"


def test_each_image_goes_to_r_different_labelers(client, run_jobs, trio):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", member_ids=[ana.id, ben.id, cy.id], repetition=2)
    dealt = deal(task["id"])
    assert dealt == {ana.id: [ids[0], ids[2], ids[3]], ben.id: [ids[0], ids[1], ids[3]], cy.id: [ids[1], ids[2]]}
    assert task["image_count"] == 4 and task["progress"]["images"] == 4


def test_versions_are_private_and_the_last_hand_in_sends_the_image_to_review(client, run_jobs, trio):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", image_ids=ids[:1], member_ids=[ana.id, ben.id], repetition=2)
    first = ids[0]
    a, b = token_for(ana), token_for(ben)
    saved = client.put(version_url(task, first), json={"revision": 0, "annotations": [box(car, 10)]}, headers=a)
    assert saved.status_code == 200 and saved.json["revision"] == 1
    assert client.get(version_url(task, first), headers=b).json["annotations"] == [], "Ben never sees Ana's version"
    client.put(version_url(task, first), json={"revision": 0, "annotations": [box(car, 12), box(car, 120)]}, headers=b)
    # The shared annotations are not theirs to write.
    shared = client.put(f"/api/v1/datasets/{dataset.id}/images/{first}/annotations", json={"annotations": []}, headers=a)
    assert shared.status_code == 409 and shared.json["error"]["code"] == "versioned"
    assert client.post(f"/api/v1/datasets/{dataset.id}/images/{first}/submit", json={}, headers=a).json["error"]["code"] == "versioned"
    stale = client.put(version_url(task, first), json={"revision": 0, "annotations": []}, headers=a)
    assert stale.status_code == 409 and stale.json["error"]["details"]["current_revision"] == 1
    assert client.post(version_url(task, first, "/submit"), json={}, headers=a).status_code == 200
    assert db.session.get(Image, first).state.value == "unlabeled", "one version of two handed in"
    again = client.post(version_url(task, first, "/submit"), json={}, headers=a)
    assert again.status_code == 409 and again.json["error"]["code"] == "wrong_state"
    late = client.put(version_url(task, first), json={"revision": 1, "annotations": []}, headers=a)
    assert late.status_code == 409
    assert client.post(version_url(task, first, "/submit"), json={"revision": 1}, headers=b).status_code == 200
    db.session.expire_all()
    assert db.session.get(Image, first).state.value == "to_review"

    # The reviewer: both versions with their agreement (1 matched box of 2).
    versions = client.get(f"/api/v1/datasets/{dataset.id}/images/{first}/versions", headers=token_for(owner)).json
    assert [(v["labeler"]["name"], len(v["annotations"]), v["submitted"]) for v in versions["versions"]] == [("Ana", 1, True), ("Ben", 2, True)]
    assert versions["agreement"] == pytest.approx(0.5)
    kept = client.post(f"/api/v1/datasets/{dataset.id}/images/{first}/versions/keep", json={"merge": True}, headers=token_for(owner))
    assert kept.status_code == 200 and [a["geometry"]["x"] for a in kept.json["annotations"]] == [10, 120]
    assert [a["author_id"] for a in kept.json["annotations"]] == [ana.id, ben.id], "each annotation keeps its labeler"
    only_ben = client.post(
        f"/api/v1/datasets/{dataset.id}/images/{first}/versions/keep", json={"labeler_id": ben.id, "revision": kept.json["revision"]},
        headers=token_for(owner),
    )
    assert [a["geometry"]["x"] for a in only_ben.json["annotations"]] == [12, 120] and only_ben.json["state"] == "to_review"
    accepted = client.post(f"/api/v1/datasets/{dataset.id}/images/{first}/review", json={"verdict": "accept"}, headers=token_for(owner))
    assert accepted.status_code == 200 and accepted.json["state"] == "accepted"
    history = client.get(f"/api/v1/datasets/{dataset.id}/images/{first}/history", headers=token_for(owner)).json["items"]
    assert [h["action"] for h in history][:4] == ["accept", "keep", "merge", "submit"]


def test_nothing_to_label_hands_in_an_empty_version(client, run_jobs, trio):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", image_ids=ids[:1], member_ids=[ana.id, ben.id], repetition=2)
    client.put(version_url(task, ids[0]), json={"revision": 0, "annotations": [box(car, 10)]}, headers=token_for(ana))
    skipped = client.post(version_url(task, ids[0], "/skip"), json={}, headers=token_for(ana))
    assert skipped.status_code == 200 and skipped.json["annotations"] == [] and skipped.json["state"] == "submitted"


def test_two_last_hand_ins_at_once_send_the_image_to_review_once(client, run_jobs, trio, live_server):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", image_ids=ids[:1], member_ids=[ana.id, ben.id], repetition=2)
    import requests

    url = live_server + version_url(task, ids[0], "/submit")
    headers = [token_for(ana), token_for(ben)]
    answers = at_once(2, lambda i: requests.post(url, json={}, headers=headers[i], timeout=60))
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Image, ids[0]).state.value == "to_review"
    assert set(db.session.scalars(select(Assignment.state).where(Assignment.image_id == ids[0]))) == {"submitted"}


@pytest.mark.parametrize("body, status", [
    ({"name": "T", "member_ids": "TWO", "repetition": 2, "review_required": False}, 422),
    ({"name": "T", "member_ids": "TWO", "repetition": 3}, 422),
])
def test_repetition_needs_review_and_enough_labelers(client, trio, body, status):
    owner, dataset, (ana, ben, cy), car, ids = trio
    body = {**body, "member_ids": [ana.id, ben.id]}
    assert create(client, owner, dataset, **body).status_code == status


@pytest.mark.parametrize("body, status", [
    ({}, 422),
    ({"revision": 0}, 422),
    ({"revision": "x", "annotations": []}, 422),
    ({"revision": 0, "annotations": [{"label_id": 999999, "shape": "box", "geometry": {}}]}, 422),
    ({"revision": 0, "annotations": "boxes"}, 422),
])
def test_bad_versions_are_refused_and_keep_what_was_saved(client, run_jobs, trio, body, status):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", image_ids=ids[:1], member_ids=[ana.id, ben.id], repetition=2)
    client.put(version_url(task, ids[0]), json={"revision": 0, "annotations": [box(car, 10)]}, headers=token_for(ana))
    response = client.put(version_url(task, ids[0]), json=body, headers=token_for(ana))
    assert response.status_code == status and response.json["error"]["message"]
    assert len(client.get(version_url(task, ids[0]), headers=token_for(ana)).json["annotations"]) == 1


def test_keep_refuses_what_is_not_there(client, run_jobs, trio):
    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Twice", image_ids=ids[:1], member_ids=[ana.id, ben.id], repetition=2)
    url, headers = f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/versions/keep", token_for(owner)
    assert client.post(url, json={"merge": True}, headers=headers).json["error"]["code"] == "wrong_state"
    client.post(version_url(task, ids[0], "/submit"), json={}, headers=token_for(ana))
    assert client.post(url, json={"labeler_id": ben.id}, headers=headers).status_code == 404
    assert client.post(url, json={}, headers=headers).status_code == 422
    assert client.post(url, json={"labeler_id": ana.id, "merge": True}, headers=headers).status_code == 422
    assert client.post(url, json={"merge": True}, headers=token_for(ana)).status_code == 403
    # Someone else's version of an image of theirs is not Cy's to read.
    assert client.get(version_url(task, ids[0]), headers=token_for(cy)).status_code == 404


def test_the_task_and_each_labeler_have_an_agreement(client, run_jobs, trio):
    from models import LabelingTask
    from services.repetition import task_agreement

    owner, dataset, (ana, ben, cy), car, ids = trio
    task = built(client, run_jobs, owner, dataset, name="Thrice", image_ids=ids[:1], member_ids=[ana.id, ben.id, cy.id], repetition=3)
    for user, boxes in ((ana, [box(car, 10)]), (ben, [box(car, 11)]), (cy, [box(car, 150)])):
        client.put(version_url(task, ids[0]), json={"revision": 0, "annotations": boxes}, headers=token_for(user))
    row = db.session.get(LabelingTask, task["id"])
    assert task_agreement(row) is None, "nothing handed in yet"
    for user in (ana, ben, cy):
        client.post(version_url(task, ids[0], "/submit"), json={}, headers=token_for(user))
    # Ana and Ben agree (1), each disagrees with Cy (0): three pairs.
    assert task_agreement(row) == pytest.approx(1 / 3, abs=1e-4)
    assert task_agreement(row, ana.id) == pytest.approx(0.5) and task_agreement(row, cy.id) == 0
