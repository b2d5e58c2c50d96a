"""Labeling tasks through the API: building by a real job, dealing strategies, the labeler's queue,
reassigning, and the bad values a script can send (SPEC sections 3, 5 and 9)."""

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import Assignment, AssignmentState, Image, ImageState, Job, LabelingTask, Review, TaskMember, Verdict
from services import tasks as task_service
from tests.factories import image_bytes, imported_image, make_dataset, make_user, token_for
from tests.support import insert_images, member


@pytest.fixture
def team(app_ctx):
    owner = make_user(name="Olga Owner")
    dataset = make_dataset(owner, name="Street")
    ana, ben = member(dataset, "labeler", name="Ana"), member(dataset, "labeler", name="Ben")
    image_ids = insert_images(dataset, 10)
    return owner, dataset, ana, ben, image_ids


def create(client, owner, dataset, **body):
    return client.post(f"/api/v1/datasets/{dataset.id}/tasks", json=body, headers=token_for(owner))


def built(client, run_jobs, owner, dataset, **body) -> dict:
    response = create(client, owner, dataset, **body)
    assert response.status_code == 202, response.json
    run_jobs()
    task = client.get(f"/api/v1/tasks/{response.json['id']}", headers=token_for(owner)).json
    assert task["complete"], task
    return task


def deal(task_id: int) -> dict[int, list[int]]:
    """labeler id -> their image ids in queue order."""
    rows = db.session.execute(
        select(Assignment.labeler_id, Assignment.image_id).where(Assignment.task_id == task_id).order_by(Assignment.position)
    ).all()
    dealt: dict[int, list[int]] = {}
    for labeler_id, image_id in rows:
        dealt.setdefault(labeler_id, []).append(image_id)
    return dealt


def test_round_robin_deals_the_selection_in_turn(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:5], member_ids=[ana.id, ben.id])
    assert deal(task["id"]) == {ana.id: [ids[0], ids[2], ids[4]], ben.id: [ids[1], ids[3]]}
    assert task["image_count"] == 5 and task["progress"]["images"] == 5 and task["progress"]["unassigned"] == 0
    assert [(m["id"], m["open"], m["submitted"]) for m in task["members"]] == [(ana.id, 3, 0), (ben.id, 2, 0)]
    job = db.session.get(Job, task["job_id"])
    assert job.status.value == "finished" and (job.done, job.total) == (5, 5)


def test_batches_deal_runs_of_images(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", member_ids=[ana.id, ben.id], strategy="batch", batch_size=3)
    assert deal(task["id"]) == {ana.id: ids[0:3] + ids[6:9], ben.id: ids[3:6] + ids[9:10]}


def test_a_filter_takes_every_matching_image_and_other_tasks_keep_theirs(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    db.session.execute(db.update(Image).where(Image.id.in_(ids[:4])).values(split="train"))
    db.session.commit()
    first = built(client, run_jobs, owner, dataset, name="Train", split="train", member_ids=[ana.id])
    assert deal(first["id"]) == {ana.id: ids[:4]}
    second = built(client, run_jobs, owner, dataset, name="Everything else", member_ids=[ben.id])
    assert deal(second["id"]) == {ben.id: ids[4:]}, "an image belongs to one task at a time"


def test_two_tasks_built_over_the_same_images_share_none(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    a = create(client, owner, dataset, name="A", member_ids=[ana.id]).json
    b = create(client, owner, dataset, name="B", member_ids=[ben.id]).json
    run_jobs()
    dealt_a, dealt_b = deal(a["id"]).get(ana.id, []), deal(b["id"]).get(ben.id, [])
    assert sorted(dealt_a + dealt_b) == ids and not set(dealt_a) & set(dealt_b)


def test_a_build_resumes_from_its_checkpoint_and_deals_nothing_twice(client, run_jobs, team, monkeypatch):
    owner, dataset, ana, ben, ids = team
    monkeypatch.setattr(task_service, "CHUNK", 4)
    response = create(client, owner, dataset, name="Cars", member_ids=[ana.id, ben.id])
    task = db.session.get(LabelingTask, response.json["id"])
    job = db.session.get(Job, task.job_id)
    # What a worker killed after its first chunk's commit leaves: that chunk and its checkpoint.
    images = task_service.candidates(task, owner, *job.args[1:])
    last, count = task_service.deal_chunk(task, [ana.id, ben.id], images, 0, 0)
    job.result = {"last_image_id": last, "dealt": count}
    db.session.commit()
    run_jobs()
    assert deal(task.id) == {ana.id: ids[0::2], ben.id: ids[1::2]}
    assert db.session.scalar(select(func.count()).select_from(Assignment).where(Assignment.task_id == task.id)) == 10
    # And a second run of the finished job changes nothing.
    from services.jobs import rerun_job
    db.session.refresh(job)
    job.status = job.status.__class__.failed
    db.session.commit()
    rerun_job(job)
    run_jobs()
    assert deal(task.id) == {ana.id: ids[0::2], ben.id: ids[1::2]}


def test_the_labeler_works_through_their_queue(client, run_jobs, app_ctx, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:4], member_ids=[ana.id, ben.id])
    headers = token_for(ana)
    first = client.get(f"/api/v1/tasks/{task['id']}/next", headers=headers).json
    assert (first["image_id"], first["number"], first["total"]) == (ids[0], 1, 2)
    assert db.session.scalar(select(Assignment.opened_at).where(Assignment.image_id == ids[0])) is not None
    # "Later": the image stays open, at the end of the queue.
    after_later = client.post(f"/api/v1/tasks/{task['id']}/later", json={"image_id": ids[0]}, headers=headers).json
    assert after_later["image_id"] == ids[2]
    assert db.session.get(Image, ids[0]).state == ImageState.unlabeled
    submitted = client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[2]}/submit", json={}, headers=headers)
    assert submitted.status_code == 200 and submitted.json["state"] == "to_review"
    then = client.get(f"/api/v1/tasks/{task['id']}/next", headers=headers).json
    assert (then["image_id"], then["number"], then["total"], then["submitted"]) == (ids[0], 2, 2, 1)
    # A rejected image comes back first, with the reviewer's comment.
    image = db.session.get(Image, ids[2])
    image.state = ImageState.rejected
    db.session.add(Review(image_id=ids[2], reviewer_id=owner.id, verdict=Verdict.reject, comment="Missed the bike"))
    task_service.reopen(ids[2])
    db.session.commit()
    back = client.get(f"/api/v1/tasks/{task['id']}/next", headers=headers).json
    assert back["image_id"] == ids[2] and back["rejected"] == 1 and back["rejection"]["comment"] == "Missed the bike"
    assert back["rejection"]["reviewer"]["name"] == "Olga Owner"
    # Ben's queue is his own.
    assert client.get(f"/api/v1/tasks/{task['id']}/next", headers=token_for(ben)).json["image_id"] == ids[1]


def test_an_empty_queue_says_so(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="One", image_ids=ids[:1], member_ids=[ana.id])
    client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/skip", json={}, headers=token_for(ana))
    done = client.get(f"/api/v1/tasks/{task['id']}/next", headers=token_for(ana)).json
    assert done == {**done, "image_id": None, "open": 0, "submitted": 1, "total": 1}


def test_reassign_and_unassign_move_open_images_only(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:4], member_ids=[ana.id, ben.id])
    url, headers = f"/api/v1/tasks/{task['id']}", token_for(owner)
    client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/submit", json={}, headers=token_for(ana))
    moved = client.post(f"{url}/reassign", json={"from_member_id": ana.id, "to_member_id": ben.id}, headers=headers)
    assert moved.json == {"moved": 1}, "Ana's handed-in image stays hers"
    assert deal(task["id"]) == {ana.id: [ids[0]], ben.id: [ids[1], ids[3], ids[2]]}
    # Ana may no longer open or save the image taken from her.
    denied = client.put(f"/api/v1/datasets/{dataset.id}/images/{ids[2]}/annotations", json={"annotations": []}, headers=token_for(ana))
    assert denied.status_code == 404
    assert client.post(f"{url}/unassign", json={"image_ids": [ids[1], ids[2]]}, headers=headers).json == {"moved": 2}
    assert client.get(url, headers=headers).json["progress"]["unassigned"] == 2
    assert client.post(f"{url}/reassign", json={"from_member_id": None, "to_member_id": ana.id}, headers=headers).json == {"moved": 2}
    assert deal(task["id"])[ana.id] == [ids[0], ids[1], ids[2]]


def test_a_member_who_leaves_hands_back_their_open_images(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:4], member_ids=[ana.id, ben.id])
    client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/submit", json={}, headers=token_for(ana))
    left = client.delete(f"/api/v1/tasks/{task['id']}/members/{ana.id}", headers=token_for(owner))
    assert left.json == {"moved": 1}
    assert deal(task["id"]) == {ana.id: [ids[0]], None: [ids[2]], ben.id: [ids[1], ids[3]]}
    assert client.get(f"/api/v1/tasks/{task['id']}/next", headers=token_for(ana)).status_code == 404, "a labeler sees only their tasks"
    again = client.post(f"/api/v1/tasks/{task['id']}/members", json={"user_id": ana.id}, headers=token_for(owner))
    assert again.status_code == 201 and again.json["id"] == ana.id


def test_a_task_without_review_accepts_on_submit(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    built(client, run_jobs, owner, dataset, name="Quick", image_ids=ids[:1], member_ids=[ana.id], review_required=False)
    response = client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/submit", json={}, headers=token_for(ana))
    assert response.json["state"] == "accepted"


def test_deleting_a_task_frees_its_images_and_keeps_their_work(client, run_jobs, team):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:2], member_ids=[ana.id])
    client.post(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}/submit", json={}, headers=token_for(ana))
    assert client.delete(f"/api/v1/tasks/{task['id']}", headers=token_for(owner)).status_code == 204
    assert db.session.get(Image, ids[0]).state == ImageState.to_review
    assert not db.session.scalar(select(func.count()).select_from(Assignment))
    assert not db.session.scalar(select(func.count()).select_from(TaskMember))


def test_the_queue_is_refused_while_the_task_is_built(client, team):
    owner, dataset, ana, ben, ids = team
    task = create(client, owner, dataset, name="Cars", member_ids=[ana.id]).json
    response = client.get(f"/api/v1/tasks/{task['id']}/next", headers=token_for(ana))
    assert response.status_code == 409 and response.json["error"]["code"] == "task_building"


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "T"}, "member_ids"),
    ({"name": "T", "member_ids": []}, "member_ids"),
    ({"name": "T", "member_ids": "1"}, "member_ids"),
    ({"name": "T", "member_ids": [10**30]}, None),
    ({"name": "T", "member_ids": ["ana"]}, "member_ids"),
    ({"name": "T", "member_ids": "OUTSIDER"}, "member_ids"),
    ({"name": "T", "member_ids": "ANA", "workforce_id": 1}, "member_ids"),
    ({"name": "T", "workforce_id": 999}, "workforce_id"),
    ({"name": "T", "member_ids": "ANA", "strategy": "random"}, "strategy"),
    ({"name": "T", "member_ids": "ANA", "strategy": "batch"}, "batch_size"),
    ({"name": "T", "member_ids": "ANA", "strategy": "batch", "batch_size": 0}, "batch_size"),
    ({"name": "T", "member_ids": "ANA", "strategy": "batch", "batch_size": 10**6}, "batch_size"),
    ({"name": "T", "member_ids": "ANA", "batch_size": 5}, "batch_size"),
    ({"name": "T", "member_ids": "ANA", "repetition": 0}, "repetition"),
    ({"name": "T", "member_ids": "ANA", "repetition": 2}, "repetition"),
    ({"name": "T", "member_ids": "ANA", "repetition": 1.5}, "repetition"),
    ({"name": "T", "member_ids": "ANA", "review_required": "maybe"}, "review_required"),
    ({"name": "T", "member_ids": "ANA", "sampling_rate": 1.5}, "sampling_rate"),
    ({"name": "T", "member_ids": "ANA", "sampling_rate": -0.1}, "sampling_rate"),
    ({"name": "T", "member_ids": "ANA", "sampling_rate": "NaN"}, "sampling_rate"),
    ({"name": "T", "member_ids": "ANA", "image_ids": []}, "image_ids"),
    ({"name": "T", "member_ids": "ANA", "image_ids": [999999]}, "image_ids"),
    ({"name": "T", "member_ids": "ANA", "image_ids": list(range(1, 10_002))}, "image_ids"),
    ({"name": "T", "member_ids": "ANA", "image_ids": "IDS", "split": "train"}, "image_ids"),
    ({"name": "T", "member_ids": "ANA", "split": "nowhere"}, None),
    ({"name": "T", "member_ids": "ANA", "state": "done"}, None),
])
def test_bad_task_requests_are_refused_and_nothing_is_made(client, team, body, field):
    owner, dataset, ana, ben, ids = team
    outsider = make_user()
    other = make_dataset(owner, name="Other")
    other_image = insert_images(other, 1)[0]
    replacements = {"ANA": [ana.id], "OUTSIDER": [outsider.id], "IDS": ids[:2]}
    body = {k: replacements.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    if body.get("image_ids") == [999999]:
        body["image_ids"] = [other_image]
    response = create(client, owner, dataset, **body)
    assert response.status_code in (400, 422), response.json
    error = response.json["error"]
    assert error["message"]
    if field is not None:
        assert field in str(error.get("details")) or field in error["message"], error
    assert not db.session.scalar(select(func.count()).select_from(LabelingTask))


def test_a_deactivated_member_is_not_dealt_images(client, team):
    owner, dataset, ana, ben, ids = team
    ana.active = False
    db.session.commit()
    response = create(client, owner, dataset, name="T", member_ids=[ana.id, ben.id])
    assert response.status_code == 422 and str(ana.id) in response.json["error"]["message"]


@pytest.mark.parametrize("path, body, status", [
    ("later", {"image_id": 10**12}, 404),
    ("later", {"image_id": "x"}, 422),
    ("later", {}, 422),
    ("reassign", {"to_member_id": 10**6, "from_member_id": None}, 422),
    ("reassign", {"to_member_id": "BEN"}, 422),
    ("reassign", {"to_member_id": "BEN", "image_ids": "no"}, 422),
    ("unassign", {}, 422),
    ("unassign", {"from_member_id": "ana"}, 422),
    ("members", {"user_id": 10**6}, 422),
    ("members", {"user_id": "BEN"}, 409),
])
def test_bad_queue_and_reassign_requests_change_nothing(client, run_jobs, team, path, body, status):
    owner, dataset, ana, ben, ids = team
    task = built(client, run_jobs, owner, dataset, name="Cars", image_ids=ids[:4], member_ids=[ana.id, ben.id])
    before = deal(task["id"])
    body = {k: ben.id if v == "BEN" else v for k, v in body.items()}
    who = ana if path == "later" else owner
    response = client.post(f"/api/v1/tasks/{task['id']}/{path}", json=body, headers=token_for(who))
    assert response.status_code == status, response.json
    assert response.json["error"]["message"]
    assert deal(task["id"]) == before


def test_a_real_image_flows_through_a_task(client, run_jobs, app_ctx):
    """With stored bytes: the labeler opens and saves the image the task gave them."""
    owner = make_user()
    dataset = make_dataset(owner, name="Real")
    labeler = member(dataset, "labeler")
    image = imported_image(dataset, "a.jpg", image_bytes(seed=5), owner=owner)
    task = built(client, run_jobs, owner, dataset, name="Real", image_ids=[image.id], member_ids=[labeler.id])
    headers = token_for(labeler)
    assert client.get(f"/api/v1/tasks/{task['id']}/next", headers=headers).json["image_id"] == image.id
    assert client.get(f"/api/v1/datasets/{dataset.id}/images/{image.id}/file", headers=headers).status_code == 200
    saved = client.put(f"/api/v1/datasets/{dataset.id}/images/{image.id}/annotations", json={"annotations": []}, headers=headers)
    assert saved.status_code == 200
    assert db.session.scalar(select(Assignment.state).where(Assignment.image_id == image.id)) == AssignmentState.assigned
