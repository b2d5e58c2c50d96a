"""The sampling API: draw, list, read, verdicts, bad input for every field, and races."""

import pytest
import requests

from core.extensions import db
from models import AcceptanceSample, Image, SampleItem
from tests.api.test_races import at_once, fresh
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images
from tests.team_stats.support import accepted_task


@pytest.fixture
def setup(app_ctx):
    owner = make_user(name="Owner")
    dataset = make_dataset(owner, name="Parts")
    ids = insert_images(dataset, 10)
    task = accepted_task(dataset, owner, ids, sampling_rate=0.2)
    return owner, dataset, task, ids, token_for(owner)


def test_draw_read_judge_and_fail_a_sample_through_the_api(client, setup, run_jobs):
    owner, dataset, task, ids, headers = setup
    created = client.post(f"/api/v1/tasks/{task.id}/samples", json={"rate": 0.3, "required_accuracy": 0.9, "seed": 11}, headers=headers)
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert (body["size"], body["lot_size"], body["outcome"], body["accuracy"]) == (3, 10, "pending", None)
    items = [item["image_id"] for item in body["items"]]
    assert len(items) == 3 and body["items"][0]["thumbnail_url"].endswith(f"/images/{items[0]}/thumbnail")
    listing = client.get(f"/api/v1/tasks/{task.id}/samples", headers=headers).get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == body["id"] and "items" not in listing["items"][0]
    base = f"/api/v1/samples/{body['id']}"
    first = client.post(f"{base}/items/{items[0]}", json={"verdict": "reject"}, headers=headers).get_json()
    assert (first["decided"], first["accuracy"], first["interval_low"]) == (1, 0.0, 0.0)
    for image_id in items[1:]:
        last = client.post(f"{base}/items/{image_id}", json={"verdict": "accept"}, headers=headers)
    decided = last.get_json()
    assert decided["outcome"] == "failed" and decided["accuracy"] == pytest.approx(2 / 3)
    assert decided["interval_low"] == pytest.approx(0.2077, abs=1e-4) and decided["interval_high"] == pytest.approx(0.9385, abs=1e-4)
    assert decided["job"]["kind"] == "send_back_lot"
    run_jobs()
    shown = client.get(base, headers=headers).get_json()
    assert shown["lot_remaining"] == 0 and shown["job"]["status"] == "finished"
    assert {item["image_id"]: item["verdict"] for item in shown["items"]} == {items[0]: "reject", items[1]: "accept", items[2]: "accept"}
    assert {state.value for state in db.session.scalars(db.select(Image.state).where(Image.dataset_id == dataset.id))} == {"to_review"}
    again = client.post(f"{base}/items/{items[0]}", json={"verdict": "accept"}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "sample_decided"


BAD_STARTS = [
    ({"rate": 0}, "rate"), ({"rate": 2}, "rate"), ({"rate": -1}, "rate"), ({"rate": "0.5"}, "rate"), ({"rate": True}, "rate"),
    ({"rate": None, "required_accuracy": 0.9}, None), ({"rate": {"x": 1}}, "rate"), ({"rate": 1e30}, "rate"), ({"rate": 3}, "rate"),
    ({"required_accuracy": 0}, "required_accuracy"), ({"required_accuracy": 1.01}, "required_accuracy"),
    ({"required_accuracy": "0.9"}, "required_accuracy"), ({"seed": "seven"}, "seed"), ({"seed": 0.5}, "seed"),
]


@pytest.mark.parametrize("body, field", BAD_STARTS)
def test_bad_start_is_refused_with_the_field_named_and_no_sample_stored(client, setup, body, field):
    _, _, task, _, headers = setup
    response = client.post(f"/api/v1/tasks/{task.id}/samples", json={"rate": 0.3, **body}, headers=headers)
    if field is None:  # rate null: the task's own rate (0.2)
        assert response.status_code == 201 and response.get_json()["rate"] == 0.2
        return
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["message"] and field in error["message"]
    assert db.session.scalar(db.select(db.func.count()).select_from(AcceptanceSample)) == 0


@pytest.mark.parametrize("raw", ['{"rate": 100000000000000000000}', '{"rate": NaN}', '{"rate": Infinity}', '{"rate": 1e400}', '{"rate": 0.1', "rate=0.1"])
def test_numbers_json_cannot_hold_and_broken_bodies_are_refused(client, setup, raw):
    _, _, task, _, headers = setup
    response = client.post(f"/api/v1/tasks/{task.id}/samples", data=raw, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code in (400, 422) and response.get_json()["error"]["message"]
    assert db.session.scalar(db.select(db.func.count()).select_from(AcceptanceSample)) == 0


def test_a_second_start_while_one_is_pending_is_409(client, setup):
    _, _, task, _, headers = setup
    assert client.post(f"/api/v1/tasks/{task.id}/samples", json={}, headers=headers).status_code == 201
    second = client.post(f"/api/v1/tasks/{task.id}/samples", json={}, headers=headers)
    assert second.status_code == 409 and second.get_json()["error"]["code"] == "sample_pending"


@pytest.mark.parametrize("body", [{"verdict": "maybe"}, {"verdict": ""}, {"verdict": 1}, {"verdict": None}, {}, {"verdict": ["accept"]}])
def test_unknown_verdicts_are_refused_and_nothing_changes(client, setup, body):
    _, _, task, _, headers = setup
    sample = client.post(f"/api/v1/tasks/{task.id}/samples", json={"rate": 0.3}, headers=headers).get_json()
    response = client.post(f"/api/v1/samples/{sample['id']}/items/{sample['items'][0]['image_id']}", json=body, headers=headers)
    assert response.status_code == 422 and "verdict" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count()).select_from(SampleItem).where(SampleItem.verdict.is_not(None))) == 0


def test_a_verdict_on_an_image_outside_the_sample_is_404(client, setup):
    _, _, task, ids, headers = setup
    sample = client.post(f"/api/v1/tasks/{task.id}/samples", json={"rate": 0.1}, headers=headers).get_json()
    outside = next(i for i in ids if i != sample["items"][0]["image_id"])
    for image_id in (outside, 2**40):
        response = client.post(f"/api/v1/samples/{sample['id']}/items/{image_id}", json={"verdict": "accept"}, headers=headers)
        assert response.status_code == 404


def test_a_sample_of_another_task_or_nothing_is_404(client, setup):
    _, _, _, _, headers = setup
    assert client.get("/api/v1/samples/999999", headers=headers).status_code == 404
    assert client.get("/api/v1/tasks/999999/samples", headers=headers).status_code == 404


@pytest.fixture
def racing(app_ctx, live_server):
    owner = make_user(name="Owner")
    dataset = make_dataset(owner, name="Race")
    ids = insert_images(dataset, 6)
    task = accepted_task(dataset, owner, ids)
    return live_server, task.id, token_for(owner)


def test_two_starts_at_once_make_exactly_one_sample(racing):
    base, task_id, headers = racing
    responses = at_once(2, lambda i: requests.post(f"{base}/api/v1/tasks/{task_id}/samples", json={"rate": 0.5}, headers=headers, timeout=60))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    fresh()
    assert db.session.scalar(db.select(db.func.count()).select_from(AcceptanceSample)) == 1


def test_two_last_verdicts_at_once_decide_once(racing):
    base, task_id, headers = racing
    sample = requests.post(f"{base}/api/v1/tasks/{task_id}/samples", json={"rate": 0.3}, headers=headers, timeout=60).json()
    first, last = (item["image_id"] for item in sample["items"])
    url = f"{base}/api/v1/samples/{sample['id']}/items"
    assert requests.post(f"{url}/{first}", json={"verdict": "accept"}, headers=headers, timeout=60).status_code == 200
    responses = at_once(2, lambda i: requests.post(f"{url}/{last}", json={"verdict": ["accept", "reject"][i]}, headers=headers, timeout=60))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 200)
    fresh()
    stored = db.session.get(AcceptanceSample, sample["id"])
    assert stored.outcome.value == winner["outcome"] and winner["outcome"] in ("passed", "failed")
