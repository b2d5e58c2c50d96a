"""A labeler learns nothing through the API about the images not assigned to them: tag names, counts
(the labels' included), jobs.

Every other role (and a signed-in visitor of a public dataset) sees the whole dataset.
"""

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Dataset, Image, Job, Label, User
from services.annotations import replace_annotations
from services.datasets import recount, request_refresh_counters
from services.images import update_image
from tests.factories import assign, make_dataset, make_user, token_for
from tests.support import actor, insert_images, sql_statements

ROLES = ["admin", "owner", "manager", "reviewer", "labeler", "public viewer"]
BOX = {"x": 1, "y": 1, "width": 5, "height": 5}


@dataclass
class Scene:
    dataset: Dataset
    user: User
    owners_job: Job
    own_job: Job
    sees_all: bool


# Boxes per image and label: the first two images are the labeler's.
BOXES = [{"cat": 1, "dog": 2}, {"cat": 1, "bird": 1}, {"cat": 2, "dog": 2, "bird": 1}, {}]
LABEL_NAMES = ["cat", "dog", "bird", "empty"]


def build_scene(role: str) -> Scene:
    """Four images; the labeler is assigned the first two. Tags, folders, annotations and jobs on both halves.

    assigned:   #1 tags mine, shared; folder seen; boxes (BOXES)     #2 tag shared
    unassigned: #3 tags unseen-tag, shared; folder unseen-folder     #4 tag unseen-tag
    """
    owner = make_user()
    dataset = make_dataset(owner, name="Scene", public=role == "public viewer")
    ids = insert_images(dataset, 4)
    images = [db.session.get(Image, i) for i in ids]
    labels = {name: Label(dataset_id=dataset.id, name=name, position=position) for position, name in enumerate(LABEL_NAMES)}
    db.session.add_all(labels.values())
    db.session.commit()
    for image, tags, folder in zip(images, (["mine", "shared"], ["shared"], ["unseen-tag", "shared"], ["unseen-tag"]), ("seen", "", "unseen-folder", "")):
        update_image(image, tags=tags, folder=folder)
    for image, boxes in zip(images, BOXES):
        if boxes:
            shapes = [{"label_id": labels[name].id, "shape": "box", "geometry": BOX} for name, n in boxes.items() for _ in range(n)]
            replace_annotations(image, owner, shapes, 0)
    recount(dataset.id)
    db.session.commit()
    user = make_user() if role == "public viewer" else actor(dataset, role)
    if role == "labeler":
        for image in images[:2]:
            assign(dataset, image.id, user)
    owners_job = request_refresh_counters(dataset, owner)
    own_job = request_refresh_counters(dataset, user)
    return Scene(dataset, user, owners_job, own_job, sees_all=role != "labeler")


# Counted by hand from BOXES: (images, boxes) per label, over all four images or the first two.
WHOLE = {
    "tags": [{"name": "mine", "image_count": 1}, {"name": "shared", "image_count": 3}, {"name": "unseen-tag", "image_count": 2}],
    "counters": {"image_count": 4, "annotated_count": 3, "annotation_count": 10, "total_bytes": 4000},
    "stats": {"images": 4, "total_bytes": 4000, "by_state": {"in_progress": 3, "unlabeled": 1}, "by_split": {"unassigned": 4}},
    "labels": {"cat": (3, 4), "dog": (2, 4), "bird": (2, 2), "empty": (0, 0)},
}
ASSIGNED = {
    "tags": [{"name": "mine", "image_count": 1}, {"name": "shared", "image_count": 2}],
    "counters": {"image_count": 2, "annotated_count": 2, "annotation_count": 5, "total_bytes": 2000},
    "stats": {"images": 2, "total_bytes": 2000, "by_state": {"in_progress": 2}, "by_split": {"unassigned": 2}},
    "labels": {"cat": (2, 2), "dog": (1, 2), "bird": (1, 1), "empty": (0, 0)},
}


@pytest.fixture(params=ROLES)
def scene(request, app_ctx) -> Scene:
    return build_scene(request.param)


def expected(scene: Scene) -> dict:
    return WHOLE if scene.sees_all else ASSIGNED


def test_tags_list_only_what_the_role_sees_with_counts_over_those_images(client, scene):
    response = client.get(f"/api/v1/datasets/{scene.dataset.id}/tags", headers=token_for(scene.user))
    assert response.status_code == 200
    assert response.get_json()["items"] == expected(scene)["tags"]


def test_dataset_counters_count_only_the_images_the_role_sees(client, scene):
    headers = token_for(scene.user)
    one = client.get(f"/api/v1/datasets/{scene.dataset.id}", headers=headers).get_json()
    assert {key: one[key] for key in expected(scene)["counters"]} == expected(scene)["counters"]
    [listed] = [d for d in client.get("/api/v1/datasets", headers=headers).get_json()["items"] if d["id"] == scene.dataset.id]
    assert {key: listed[key] for key in expected(scene)["counters"]} == expected(scene)["counters"]
    stats = client.get(f"/api/v1/datasets/{scene.dataset.id}/stats", headers=headers).get_json()
    team = {key: stats.pop(key) for key in ("tasks", "members")}
    assert stats == expected(scene)["stats"]
    # The team's figures (tests/team_stats) are scoped too: a labeler's rows are their own.
    if not scene.sees_all:
        assert {m["user_id"] for m in team["members"]} <= {scene.user.id}
        assert all({m["user_id"] for m in t["members"]} <= {scene.user.id} for t in team["tasks"])


def test_a_labeler_sees_only_the_jobs_they_started(client, scene):
    headers = token_for(scene.user)
    owners = client.get(f"/api/v1/jobs/{scene.owners_job.id}", headers=headers)
    assert owners.status_code == (200 if scene.sees_all else 404)
    assert client.get(f"/api/v1/jobs/{scene.own_job.id}", headers=headers).status_code == 200


def test_image_listing_and_its_tags_stay_within_the_assignment(client, scene):
    listing = client.get(f"/api/v1/datasets/{scene.dataset.id}/images", headers=token_for(scene.user)).get_json()
    tags = sorted({tag for item in listing["items"] for tag in item["tags"]})
    assert tags == sorted(t["name"] for t in expected(scene)["tags"])
    assert listing["total"] == expected(scene)["counters"]["image_count"]


def counts(labels: list[dict]) -> dict:
    return {label["name"]: (label["image_count"], label["annotation_count"]) for label in labels}


def test_label_counters_count_only_the_images_the_role_sees(client, scene):
    headers = token_for(scene.user)
    labels = client.get(f"/api/v1/datasets/{scene.dataset.id}/labels", headers=headers).get_json()
    assert [label["name"] for label in labels] == LABEL_NAMES
    assert counts(labels) == expected(scene)["labels"]
    one = client.get(f"/api/v1/datasets/{scene.dataset.id}", headers=headers).get_json()
    assert counts(one["labels"]) == expected(scene)["labels"]
    listing = client.get("/api/v1/datasets?with_labels=true", headers=headers).get_json()["items"]
    [listed] = [d for d in listing if d["id"] == scene.dataset.id]
    assert counts(listed["labels"]) == expected(scene)["labels"]


def test_a_labelers_counts_leave_the_stored_label_counters_as_they_were(client, scene):
    client.get(f"/api/v1/datasets/{scene.dataset.id}/labels", headers=token_for(scene.user))
    client.get(f"/api/v1/datasets/{scene.dataset.id}", headers=token_for(scene.user))
    db.session.expire_all()
    stored = db.session.scalars(select(Label).where(Label.dataset_id == scene.dataset.id)).all()
    assert {label.name: (label.image_count, label.annotation_count) for label in stored} == WHOLE["labels"]


def test_label_counters_are_counted_in_one_query_for_a_labeler_and_read_as_kept_for_the_others(client, scene):
    with sql_statements() as statements:
        client.get(f"/api/v1/datasets/{scene.dataset.id}/labels", headers=token_for(scene.user))
    grouped = [s for s in statements if "GROUP BY annotation.label_id" in s or "GROUP BY annotations.label_id" in s]
    assert len(grouped) == (0 if scene.sees_all else 1), statements
