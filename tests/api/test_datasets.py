"""Datasets, jobs, members, tokens and the caller through the API."""

import pytest

from tests.factories import token_for


@pytest.fixture
def headers(world):
    return token_for(world.owner)


def test_dataset_lifecycle(client, world, headers, run_jobs):
    created = client.post("/api/v1/datasets", json={"name": "Dogs", "type": "classification", "description": "good"}, headers=headers)
    assert created.status_code == 201
    dog = created.get_json()
    assert dog["type"] == "classification" and dog["image_count"] == 0 and dog["status"] == "ready" and dog["labels"] == []
    patched = client.patch(f"/api/v1/datasets/{dog['id']}", json={"name": "Good dogs", "public": True}, headers=headers).get_json()
    assert patched["name"] == "Good dogs" and patched["public"] is True and patched["description"] == "good"
    listing = client.get("/api/v1/datasets?sort=name&order=asc&preview=1&with_labels=true", headers=headers).get_json()
    assert [d["name"] for d in listing["items"]] == ["Good dogs", "Private cats"] and listing["next_offset"] is None
    cats = listing["items"][1]
    assert cats["image_count"] == 2 and cats["total_bytes"] == sum(map(len, world.originals.values())) and cats["labels"] == []
    assert len(cats["preview"]) == 2 and client.get(cats["preview"][0], headers=headers).mimetype == "image/jpeg"
    plain = client.get("/api/v1/datasets?limit=1&search=cat", headers=headers).get_json()
    assert plain["total"] == 1 and "preview" not in plain["items"][0] and "labels" not in plain["items"][0]
    assert client.get("/api/v1/datasets?limit=1", headers=headers).get_json()["next_offset"] == 1
    stats = client.get(f"/api/v1/datasets/{world.dataset.id}/stats", headers=headers).get_json()
    assert stats["images"] == 2 and stats["by_split"] == {"unassigned": 2} and stats["by_state"] == {"unlabeled": 2}
    deleting = client.delete(f"/api/v1/datasets/{dog['id']}", headers=headers)
    assert deleting.status_code == 202 and deleting.get_json()["kind"] == "delete_dataset"
    assert client.get(f"/api/v1/datasets/{dog['id']}", headers=headers).get_json()["status"] == "deleting"
    run_jobs()
    assert client.get(f"/api/v1/jobs/{deleting.get_json()['id']}", headers=headers).get_json()["status"] == "finished"
    assert client.get(f"/api/v1/datasets/{dog['id']}", headers=headers).status_code == 404
    archived = client.patch(f"/api/v1/datasets/{world.dataset.id}", json={"archived": True}, headers=headers).get_json()
    assert archived["archived"] is True
    assert client.get("/api/v1/datasets", headers=headers).get_json()["total"] == 0
    assert client.get("/api/v1/datasets?archived=true", headers=headers).get_json()["total"] == 1


def test_refresh_counters_and_cancel_jobs(client, world, headers, run_jobs):
    ds = f"/api/v1/datasets/{world.dataset.id}"
    job = client.post(f"{ds}/refresh-counters", headers=headers).get_json()
    assert job["status"] == "queued" and job["kind"] == "refresh_counters"
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert client.get("/api/v1/jobs/no-such-job", headers=headers).status_code == 404


def test_members_and_tokens(client, world, headers):
    ds = f"/api/v1/datasets/{world.dataset.id}"
    added = client.post(f"{ds}/members", json={"email": world.candidate.email.upper(), "role": "reviewer"}, headers=headers)
    assert added.status_code == 201 and added.get_json()["role"] == "reviewer" and added.get_json()["email"] == world.candidate.email
    members = client.get(f"{ds}/members", headers=headers).get_json()
    assert {(m["email"], m["role"]) for m in members} == {(world.owner.email, "owner"), (world.candidate.email, "reviewer")}
    bad_role = client.post(f"{ds}/members", json={"email": world.candidate.email, "role": "boss"}, headers=headers)
    assert bad_role.status_code == 422 and "labeler" in bad_role.get_json()["error"]["message"]
    nobody = client.post(f"{ds}/members", json={"email": "nobody@example.com", "role": "labeler"}, headers=headers)
    assert nobody.status_code == 404

    me = client.get("/api/v1/me", headers=headers).get_json()
    assert me["email"] == world.owner.email and "password_hash" not in me
    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    secret = created.get_json()["token"]
    assert secret.startswith(created.get_json()["prefix"])
    listed = client.get("/api/v1/tokens", headers={"Authorization": f"Token {secret}"}).get_json()
    assert "ci" in [t["name"] for t in listed] and all("token" not in t for t in listed)
    assert client.delete(f"/api/v1/tokens/{created.get_json()['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers={"Authorization": f"Token {secret}"}).status_code == 401
    assert client.post("/api/v1/tokens", json={"name": "  "}, headers=headers).status_code == 422


def test_deleting_again_answers_the_active_deletion_and_the_document_promises_no_conflict(client, world, headers):
    url = f"/api/v1/datasets/{world.dataset.id}"
    first = client.delete(url, headers=headers)
    again = client.delete(url, headers=headers)
    assert first.status_code == again.status_code == 202 and again.get_json()["id"] == first.get_json()["id"]
    responses = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/datasets/{dataset_id}"]["delete"]["responses"]
    assert "409" not in responses and {"202", "503"} <= set(responses)
    # Every other job route can meet a deletion: nothing new starts on a dataset being deleted.
    refresh = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/datasets/{dataset_id}/refresh-counters"]["post"]
    assert "409" in refresh["responses"]
    assert client.post(f"{url}/refresh-counters", headers=headers).status_code == 409
