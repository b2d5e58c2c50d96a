"""Tasks under concurrency, over real HTTP with a real worker, on SQLite and PostgreSQL: builds at
the same moment share no image; a hand-in racing a reassign gives one owner and a clear answer."""

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from core.extensions import db
from models import Assignment, AssignmentState, Image, LabelingTask
from tests.api.test_races import at_once
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, member


def wait_built(base: str, headers: dict, task_ids: list[int]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(requests.get(f"{base}/api/v1/tasks/{t}", headers=headers, timeout=30).json()["complete"] for t in task_ids):
            return
        time.sleep(0.2)
    raise AssertionError("the tasks were not built in time")


def test_tasks_made_at_the_same_moment_share_no_image(app_ctx, live_server):
    owner = make_user()
    dataset = make_dataset(owner, name="Rush")
    labelers = [member(dataset, "labeler") for _ in range(5)]
    ids = insert_images(dataset, 200)
    headers = token_for(owner)
    base, dataset_id, labeler_ids = live_server, dataset.id, [u.id for u in labelers]

    def create(i):
        return requests.post(
            f"{base}/api/v1/datasets/{dataset_id}/tasks", json={"name": f"T{i}", "member_ids": [labeler_ids[i]]}, headers=headers, timeout=60
        )

    responses = at_once(5, create)
    assert [r.status_code for r in responses] == [202] * 5, [r.text for r in responses]
    wait_built(base, headers, [r.json()["id"] for r in responses])
    db.session.commit()
    held = db.session.execute(select(Assignment.image_id, func.count()).group_by(Assignment.image_id)).all()
    assert sorted(image_id for image_id, _ in held) == ids and {count for _, count in held} == {1}
    assert sum(db.session.scalars(select(LabelingTask.image_count))) == 200


def test_a_hand_in_racing_a_reassign_leaves_one_owner(app_ctx, live_server):
    owner = make_user()
    dataset = make_dataset(owner, name="Race")
    ana, ben = member(dataset, "labeler"), member(dataset, "labeler")
    ids = insert_images(dataset, 20)
    owner_headers, ana_headers = token_for(owner), token_for(ana)
    # Plain values: the threads must not touch ORM objects of the test's session.
    base, dataset_id, ana_id, ben_id = live_server, dataset.id, ana.id, ben.id
    task = requests.post(
        f"{base}/api/v1/datasets/{dataset_id}/tasks", json={"name": "Race", "member_ids": [ana_id, ben_id], "image_ids": ids},
        headers=owner_headers, timeout=60,
    ).json()
    wait_built(base, owner_headers, [task["id"]])
    db.session.commit()
    anas = list(db.session.scalars(select(Assignment.image_id).where(Assignment.labeler_id == ana_id).order_by(Assignment.image_id)))

    def submit(image_id):
        return requests.post(f"{base}/api/v1/datasets/{dataset_id}/images/{image_id}/submit", json={}, headers=ana_headers, timeout=60)

    def reassign():
        return requests.post(
            f"{base}/api/v1/tasks/{task['id']}/reassign", json={"from_member_id": ana_id, "to_member_id": ben_id},
            headers=owner_headers, timeout=60,
        )

    with ThreadPoolExecutor(len(anas) + 1) as pool:
        submits = [pool.submit(submit, image_id) for image_id in anas]
        moved = pool.submit(reassign).result()
        answers = [f.result() for f in submits]
    assert moved.status_code == 200
    assert {r.status_code for r in answers} <= {200, 404, 409}, [r.text for r in answers]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "not_assigned"
    db.session.commit()
    db.session.expire_all()
    for image_id, answer in zip(anas, answers):
        turn = db.session.scalar(select(Assignment).where(Assignment.image_id == image_id))
        state = db.session.get(Image, image_id).state.value
        if answer.status_code == 200:
            assert (turn.labeler_id, turn.state, state) == (ana_id, AssignmentState.submitted, "to_review")
        else:
            assert (turn.labeler_id, turn.state, state) == (ben_id, AssignmentState.assigned, "unlabeled")
    assert moved.json()["moved"] == sum(1 for r in answers if r.status_code != 200)
