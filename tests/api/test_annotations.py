"""Annotations through the API: replace and get, conflicts, lifecycle, history and restore, counters, tags."""

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from core.extensions import db
from services.tasks import reopen
from models import (
    SHAPES,
    SHAPES_BY_TYPE,
    Annotation,
    Assignment,
    AssignmentState,
    Dataset,
    DatasetType,
    Image,
    ImageState,
    Label,
    LabelingTask,
    User,
)
from services.datasets import recount
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, member, save_statement_count, sql_statements

GEOMETRY = {
    "tag": {},
    "box": {"x": 1.5, "y": 2, "width": 20, "height": 10.25},
    "polygon": {"points": [[0, 0], [30, 0], [30, 20], [0, 20]]},
    "polyline": {"points": [[0, 0], [64, 48]]},
    "points": {"points": [[3, 4], [5, 6]]},
    "circle": {"cx": 32, "cy": 24, "r": 8},
}


@dataclass
class Setting:
    owner: User
    dataset: Dataset
    image: Image
    other: Image
    cat: Label
    dog: Label

    @property
    def url(self) -> str:
        return f"/api/v1/datasets/{self.dataset.id}/images/{self.image.id}"


def make_setting(type_: str = "detection") -> Setting:
    owner = make_user(name="Olga Owner")
    dataset = make_dataset(owner, name="Pets", type=type_)
    ids = insert_images(dataset, 2)
    cat = Label(dataset_id=dataset.id, name="cat", shortcut="c", attributes=[{"name": "pose", "type": "select", "values": ["sit", "run"]}])
    dog = Label(dataset_id=dataset.id, name="dog", shortcut="d", with_text=True)
    db.session.add_all([cat, dog])
    db.session.commit()
    return Setting(owner, dataset, db.session.get(Image, ids[0]), db.session.get(Image, ids[1]), cat, dog)


@pytest.fixture
def s(app_ctx) -> Setting:
    return make_setting()


def ann(label: Label, shape: str = "box", **extra) -> dict:
    return {"label_id": label.id, "shape": shape, "geometry": GEOMETRY[shape], **extra}


def put(client, s: Setting, headers, annotations, revision):
    return client.put(f"{s.url}/annotations", json={"revision": revision, "annotations": annotations}, headers=headers)


def strip(items: list[dict]) -> list[dict]:
    return [{k: v for k, v in a.items() if k not in ("id", "author_id")} for a in items]


# ---- replace and get -----------------------------------------------------------------------


@pytest.mark.parametrize("type_", [t.value for t in DatasetType])
def test_every_allowed_shape_round_trips_and_the_others_are_refused(client, app_ctx, type_):
    s = make_setting(type_)
    headers = token_for(s.owner)
    revision = 0
    for shape in SHAPES:
        sent = [ann(s.cat, shape)]
        response = put(client, s, headers, sent, revision)
        if shape in SHAPES_BY_TYPE[DatasetType(type_)]:
            assert response.status_code == 200, (shape, response.get_json())
            revision += 1
            body = client.get(f"{s.url}/annotations", headers=headers).get_json()
            assert body["revision"] == revision and body["state"] == "in_progress"
            assert strip(body["annotations"]) == [{**sent[0], "attributes": {}, "text": None, "source": "human", "score": None}]
            assert body["annotations"][0]["author_id"] == s.owner.id
        else:
            assert response.status_code == 422, shape
            error = response.get_json()["error"]
            assert error["code"] == "invalid" and error["details"]["field"] == "annotations[0].shape"
            assert "Annotation 0" in error["message"] and type_ in error["message"]
    assert revision == len(SHAPES_BY_TYPE[DatasetType(type_)])


def test_a_full_detection_set_with_attributes_text_and_predictions(client, s):
    headers = token_for(s.owner)
    sent = [
        ann(s.cat, "box", attributes={"pose": "sit"}, text=None, source="human", score=None),
        ann(s.dog, "polygon", attributes={}, text="Rex", source="prediction", score=0.5),
    ]
    body = put(client, s, headers, sent, 0).get_json()
    assert body["revision"] == 1 and strip(body["annotations"]) == sent


def test_get_of_a_new_image_is_empty_at_revision_zero(client, s):
    body = client.get(f"{s.url}/annotations", headers=token_for(s.owner)).get_json()
    assert body == {"revision": 0, "state": "unlabeled", "annotations": []}


def test_bad_annotation_gets_422_naming_index_and_field_and_nothing_changes(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    bad = [ann(s.cat), {"label_id": s.cat.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 5, "height": 1e9}}]
    response = put(client, s, headers, bad, 1)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["field"] == "annotations[1].geometry" and "Annotation 1" in error["message"]
    body = client.get(f"{s.url}/annotations", headers=headers).get_json()
    assert body["revision"] == 1 and len(body["annotations"]) == 1


@pytest.mark.parametrize("payload", [{}, {"revision": 0}, {"revision": "0", "annotations": []}, {"revision": 0, "annotations": {}}, {"revision": -1, "annotations": []}])
def test_missing_or_mistyped_body_fields_get_422(client, s, payload):
    response = client.put(f"{s.url}/annotations", json=payload, headers=token_for(s.owner))
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid"


def test_non_json_body_is_refused(client, s):
    response = client.put(f"{s.url}/annotations", data="revision=0", headers={**token_for(s.owner), "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


def test_body_over_2_mb_gets_413_json(client, s):
    points = [[1.0, 1.0]] * 200_000
    response = put(client, s, token_for(s.owner), [ann(s.cat, "polyline") | {"geometry": {"points": points}}], 0)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_too_large"


# ---- without a revision, and with If-Match ---------------------------------------------------


def put_as(client, s: Setting, headers, body, if_match=None):
    extra = {"If-Match": if_match} if if_match is not None else {}
    return client.put(f"{s.url}/annotations", json=body, headers={**headers, **extra})


@pytest.mark.parametrize("shapes", [["box"], ["circle", "polygon"], []])
def test_a_save_without_a_revision_replaces_and_is_still_a_revision(client, s, shapes):
    headers = token_for(s.owner)
    reviewer = member(s.dataset, "reviewer", name="Rita")
    before = put(client, s, token_for(reviewer), [ann(s.cat, "points"), ann(s.dog)], 0).get_json()
    sent = [ann(s.dog, shape) for shape in shapes]
    response = put_as(client, s, headers, {"annotations": sent})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["revision"] == 2 and strip(body["annotations"]) == [a | {"attributes": {}, "text": None, "source": "human", "score": None} for a in sent]
    history = client.get(f"{s.url}/history", headers=headers).get_json()["items"]
    assert [(h["number"], h["author"]["name"]) for h in history] == [(2, "Olga Owner"), (1, "Rita")]
    # Nothing was lost: what it replaced is one restore away.
    restored = client.post(f"{s.url}/history/1/restore", headers=headers).get_json()
    assert strip(restored["annotations"]) == strip(before["annotations"])
    assert_counters_exact(s)


def test_saves_without_a_revision_by_one_person_never_fold(client, s):
    headers = token_for(s.owner)
    for i in range(3):
        assert put_as(client, s, headers, {"annotations": [ann(s.cat)] * (i + 1)}).status_code == 200
    history = client.get(f"{s.url}/history", headers=headers).get_json()["items"]
    assert [(h["number"], h["annotation_count"]) for h in history] == [(3, 3), (2, 2), (1, 1)]


def test_an_invalid_save_without_a_revision_changes_nothing(client, s):
    headers = token_for(s.owner)
    response = put_as(client, s, headers, {"annotations": [ann(s.cat) | {"label_id": 10**6}]})
    assert response.status_code == 422 and response.get_json()["error"]["details"]["field"] == "annotations[0].label_id"
    assert client.get(f"{s.url}/annotations", headers=headers).get_json()["revision"] == 0


def test_get_and_put_send_the_revision_as_an_etag_that_if_match_takes_back(client, s):
    headers = token_for(s.owner)
    got = client.get(f"{s.url}/annotations", headers=headers)
    assert got.headers["ETag"] == '"0"'
    saved = put_as(client, s, headers, {"annotations": [ann(s.cat)]}, if_match=got.headers["ETag"])
    assert saved.status_code == 200 and saved.headers["ETag"] == '"1"' and saved.get_json()["revision"] == 1
    assert client.get(f"{s.url}/annotations", headers=headers).headers["ETag"] == '"1"'
    stale = put_as(client, s, headers, {"annotations": []}, if_match=got.headers["ETag"])
    assert stale.status_code == 409
    assert stale.get_json()["error"]["details"]["current_revision"] == 1


@pytest.mark.parametrize("tag", ['"2"', "2", ' "2" ', '"2"   '])
def test_if_match_takes_the_revision_quoted_or_bare(client, s, tag):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    put(client, s, headers, [ann(s.dog)], 1)
    response = put_as(client, s, headers, {"annotations": [ann(s.cat, "circle")]}, if_match=tag)
    assert response.status_code == 200 and response.get_json()["revision"] == 3
    for old in ('"1"', "1", '"0"'):
        assert put_as(client, s, headers, {"annotations": []}, if_match=old).status_code == 409
    assert client.get(f"{s.url}/annotations", headers=headers).get_json()["revision"] == 3


@pytest.mark.parametrize("tag", [
    "abc", '"1', '1"', 'W/"1"', '"1", "2"', "-1", "1.0", '""', '"' + "9" * 40 + '"', pytest.param("9" * 5000, id="5000-digits"), "１",
    '"2147483648"', "9999999999", "00000000001",
])
def test_an_if_match_that_names_no_revision_is_refused(client, s, tag):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    response = put_as(client, s, headers, {"annotations": []}, if_match=tag)
    assert response.status_code == 422, (tag, response.get_data(as_text=True)[:200])
    error = response.get_json()["error"]
    assert error["code"] == "invalid" and error["details"]["field"] == "If-Match" and "If-Match" in error["message"]
    assert client.get(f"{s.url}/annotations", headers=headers).get_json()["revision"] == 1


def test_if_match_and_a_body_revision_must_agree_and_star_is_no_condition(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    assert put_as(client, s, headers, {"revision": 1, "annotations": []}, if_match='"1"').status_code == 200
    disagree = put_as(client, s, headers, {"revision": 2, "annotations": []}, if_match='"1"')
    assert disagree.status_code == 422 and disagree.get_json()["error"]["details"]["field"] == "revision"
    assert put_as(client, s, headers, {"annotations": [ann(s.dog)]}, if_match="*").get_json()["revision"] == 3
    assert put_as(client, s, headers, {"revision": 0, "annotations": []}, if_match="*").status_code == 409


def test_the_document_says_revision_is_optional_if_match_is_accepted_and_get_sends_an_etag(client, app_ctx):
    doc = client.get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/api/v1/datasets/{dataset_id}/images/{image_id}/annotations"]
    body = operation["put"]["requestBody"]["content"]["application/json"]["schema"]
    schema = doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]] if "$ref" in body else body
    assert schema["required"] == ["annotations"] and "revision" in schema["properties"]
    assert any(p["in"] == "header" and p["name"] == "If-Match" for p in operation["put"]["parameters"])
    assert "ETag" in operation["get"]["responses"]["200"]["headers"]
    assert "ETag" in operation["put"]["responses"]["200"]["headers"]


# ---- conflicts -----------------------------------------------------------------------------


def test_second_save_on_the_same_revision_gets_409_and_can_resend(client, s):
    alice, bob = member(s.dataset, "reviewer", name="Alice"), member(s.dataset, "manager", name="Bob")
    ha, hb = token_for(alice), token_for(bob)
    base = client.get(f"{s.url}/annotations", headers=ha).get_json()["revision"]
    assert client.get(f"{s.url}/annotations", headers=hb).get_json()["revision"] == base == 0

    first = put(client, s, ha, [ann(s.cat)], base)
    assert first.status_code == 200 and first.get_json()["revision"] == 1
    second = put(client, s, hb, [ann(s.dog, "circle")], base)
    assert second.status_code == 409
    error = second.get_json()["error"]
    assert error["code"] == "conflict"
    details = error["details"]
    assert details["current_revision"] == 1 and strip(details["annotations"]) == strip(first.get_json()["annotations"])
    assert details["author"] == {"id": alice.id, "name": "Alice", "email": alice.email} and details["saved_at"]
    assert strip(client.get(f"{s.url}/annotations", headers=hb).get_json()["annotations"]) == strip(first.get_json()["annotations"])

    # "Keep mine": Bob resends his annotations based on the revision he was shown.
    again = put(client, s, hb, [ann(s.dog, "circle")], details["current_revision"])
    assert again.status_code == 200 and again.get_json()["revision"] == 2
    history = client.get(f"{s.url}/history", headers=hb).get_json()["items"]
    assert [(h["number"], h["author"]["name"]) for h in history] == [(2, "Bob"), (1, "Alice")]
    # Nothing of Alice's was lost: her revision is still there to restore.
    restored = client.post(f"{s.url}/history/1/restore", headers=ha).get_json()
    assert strip(restored["annotations"]) == strip(first.get_json()["annotations"])


def test_submit_based_on_a_stale_revision_conflicts(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    assert client.post(f"{s.url}/submit", json={"revision": 0}, headers=headers).status_code == 409
    assert client.post(f"{s.url}/skip", json={"revision": 0}, headers=headers).status_code == 409
    assert client.get(f"{s.url}/annotations", headers=headers).get_json()["state"] == "in_progress"


# ---- lifecycle -----------------------------------------------------------------------------


def review_task(s: Setting, image: Image, labeler: User, review_required: bool = True) -> None:
    task = LabelingTask(dataset_id=s.dataset.id, name="batch", review_required=review_required)
    db.session.add(task)
    db.session.flush()
    db.session.add(Assignment(task_id=task.id, image_id=image.id, labeler_id=labeler.id))
    db.session.commit()


def state_of(client, s, headers) -> str:
    return client.get(f"{s.url}/annotations", headers=headers).get_json()["state"]


def test_labeler_saves_and_submits_to_review_then_cannot_touch_the_accepted_image(client, s):
    labeler = member(s.dataset, "labeler")
    review_task(s, s.image, labeler)
    headers = token_for(labeler)
    assert put(client, s, headers, [ann(s.cat)], 0).get_json()["state"] == "in_progress"
    submitted = client.post(f"{s.url}/submit", json={"revision": 1}, headers=headers)
    assert submitted.status_code == 200 and submitted.get_json() | {"annotations": None} == {"revision": 2, "state": "to_review", "annotations": None}
    assert db.session.scalar(select(Assignment.state).where(Assignment.labeler_id == labeler.id)) == AssignmentState.submitted
    assert client.post(f"{s.url}/submit", headers=headers).status_code == 409  # already to review
    s.image.state = ImageState.accepted
    db.session.commit()
    assert put(client, s, headers, [], 2).status_code == 403
    assert client.post(f"{s.url}/skip", headers=headers).status_code == 403
    assert client.get(f"{s.url}/annotations", headers=headers).status_code == 200  # still visible


def test_labeler_cannot_see_or_annotate_an_unassigned_image(client, s):
    labeler = member(s.dataset, "labeler")
    review_task(s, s.other, labeler)
    headers = token_for(labeler)
    assert put(client, s, headers, [ann(s.cat)], 0).status_code == 404
    assert client.get(f"{s.url}/annotations", headers=headers).status_code == 404
    assert client.post(f"{s.url}/submit", headers=headers).status_code == 404


def test_submit_without_a_review_goes_straight_to_accepted(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    assert client.post(f"{s.url}/submit", headers=headers).get_json()["state"] == "accepted"
    labeler = member(s.dataset, "labeler")
    review_task(s, s.other, labeler, review_required=False)
    other = f"/api/v1/datasets/{s.dataset.id}/images/{s.other.id}"
    assert client.post(f"{other}/submit", headers=token_for(labeler)).get_json()["state"] == "accepted"


def test_reviewer_edit_keeps_an_accepted_image_accepted_and_a_rejected_one_rejected(client, s):
    headers = token_for(member(s.dataset, "reviewer"))
    s.image.state = ImageState.accepted
    db.session.commit()
    assert put(client, s, headers, [ann(s.cat)], 0).get_json()["state"] == "accepted"
    s.image.state = ImageState.rejected
    db.session.commit()
    assert put(client, s, headers, [ann(s.dog)], 1).get_json()["state"] == "rejected"
    assert client.post(f"{s.url}/submit", headers=headers).get_json()["state"] == "accepted"


def test_rejected_image_fixed_and_resubmitted_goes_back_to_review(client, s):
    labeler = member(s.dataset, "labeler")
    review_task(s, s.image, labeler)
    headers = token_for(labeler)
    put(client, s, headers, [ann(s.cat)], 0)
    client.post(f"{s.url}/submit", headers=headers)
    # What a reviewer's reject does (services/reviews.py): the state, and the labeler's turn reopened.
    s.image.state = ImageState.rejected
    reopen(s.image.id)
    db.session.commit()
    assert put(client, s, headers, [ann(s.cat), ann(s.dog)], 2).get_json()["state"] == "rejected"
    assert client.post(f"{s.url}/submit", headers=headers).get_json()["state"] == "to_review"


def test_prelabeled_image_moves_to_in_progress_on_first_save(client, s):
    s.image.state = ImageState.prelabeled
    db.session.commit()
    assert put(client, s, token_for(s.owner), [ann(s.cat)], 0).get_json()["state"] == "in_progress"


def test_skip_clears_the_annotations_and_submits(client, s):
    labeler = member(s.dataset, "labeler")
    review_task(s, s.image, labeler)
    headers = token_for(labeler)
    put(client, s, headers, [ann(s.cat), ann(s.dog)], 0)
    skipped = client.post(f"{s.url}/skip", headers=headers)
    assert skipped.status_code == 200
    assert skipped.get_json() == {"revision": 2, "state": "to_review", "annotations": []}
    history = client.get(f"{s.url}/history", headers=headers).get_json()["items"]
    assert [(h["action"], h["state"], h["annotation_count"]) for h in history] == [("skip", "to_review", 0), ("save", "in_progress", 2)]
    assert_counters_exact(s)


def test_skip_of_an_unlabeled_image_without_a_task_accepts_it(client, s):
    body = client.post(f"{s.url}/skip", headers=token_for(s.owner)).get_json()
    assert body == {"revision": 1, "state": "accepted", "annotations": []}
    db.session.expire_all()
    assert s.dataset.annotated_count == 1
    assert_counters_exact(s)


# ---- history and restore -------------------------------------------------------------------


def test_history_lists_every_change_newest_first_with_who_and_when(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat)], 0)
    put(client, s, headers, [ann(s.cat), ann(s.dog)], 1)
    client.post(f"{s.url}/submit", headers=headers)
    body = client.get(f"{s.url}/history", headers=headers).get_json()
    items = body["items"]
    assert [(i["number"], i["action"], i["state"], i["annotation_count"]) for i in items] == [
        (3, "submit", "accepted", 2), (2, "save", "in_progress", 2), (1, "save", "in_progress", 1)
    ]
    assert all(i["author"] == {"id": s.owner.id, "name": "Olga Owner", "email": s.owner.email} and i["created_at"] for i in items)
    assert body["next_before"] is None
    page = client.get(f"{s.url}/history?limit=2", headers=headers).get_json()
    assert [i["number"] for i in page["items"]] == [3, 2] and page["next_before"] == 2
    rest = client.get(f"{s.url}/history?limit=2&before=2", headers=headers).get_json()
    assert [i["number"] for i in rest["items"]] == [1] and rest["next_before"] is None


def test_restore_makes_a_new_revision_with_the_old_annotations(client, s):
    headers = token_for(s.owner)
    first = put(client, s, headers, [ann(s.cat, attributes={"pose": "run"})], 0).get_json()
    put(client, s, headers, [ann(s.dog, "circle"), ann(s.dog, "points")], 1)
    restored = client.post(f"{s.url}/history/1/restore", headers=headers)
    assert restored.status_code == 200
    body = restored.get_json()
    assert body["revision"] == 3 and body["restored_from"] == 1 and body["dropped"] == []
    assert strip(body["annotations"]) == strip(first["annotations"])
    assert client.get(f"{s.url}/history", headers=headers).get_json()["items"][0]["action"] == "restore"
    assert_counters_exact(s)
    assert client.post(f"{s.url}/history/99/restore", headers=headers).status_code == 404


def test_restore_drops_annotations_whose_label_was_deleted_and_says_so(client, s):
    headers = token_for(s.owner)
    put(client, s, headers, [ann(s.cat), ann(s.dog)], 0)
    put(client, s, headers, [], 1)
    dog_id = s.dog.id
    db.session.delete(s.dog)
    db.session.commit()
    body = client.post(f"{s.url}/history/1/restore", headers=headers).get_json()
    assert [a["label_id"] for a in body["annotations"]] == [s.cat.id]
    assert body["dropped"] == [{"index": 1, "label_id": dog_id, "reason": "its label was deleted"}]


def test_restore_keeps_the_authors_of_the_restored_annotations(client, s):
    reviewer = member(s.dataset, "reviewer")
    put(client, s, token_for(reviewer), [ann(s.cat)], 0)
    put(client, s, token_for(s.owner), [], 1)
    body = client.post(f"{s.url}/history/1/restore", headers=token_for(s.owner)).get_json()
    assert [a["author_id"] for a in body["annotations"]] == [reviewer.id]


def test_an_unchanged_annotation_keeps_its_author_on_someone_elses_save(client, s):
    reviewer = member(s.dataset, "reviewer")
    saved = put(client, s, token_for(reviewer), [ann(s.cat)], 0).get_json()["annotations"]
    body = put(client, s, token_for(s.owner), saved + [ann(s.dog)], 1).get_json()
    assert [a["author_id"] for a in body["annotations"]] == [reviewer.id, s.owner.id]


# ---- counters ------------------------------------------------------------------------------


def assert_counters_exact(s: Setting) -> None:
    db.session.expire_all()
    kept = {
        "dataset": (s.dataset.annotation_count, s.dataset.annotated_count),
        "labels": {label.id: (label.image_count, label.annotation_count) for label in (s.cat, s.dog)},
    }
    counted_labels = {}
    for label in (s.cat, s.dog):
        annotations = db.session.scalar(select(func.count()).where(Annotation.label_id == label.id))
        images = db.session.scalar(select(func.count(func.distinct(Annotation.image_id))).where(Annotation.label_id == label.id))
        counted_labels[label.id] = (images, annotations)
    recount(s.dataset.id)
    assert kept == {"dataset": (s.dataset.annotation_count, s.dataset.annotated_count), "labels": counted_labels}
    db.session.rollback()


def test_counters_stay_exact_through_saves_submits_skips_and_restores(client, s):
    headers = token_for(s.owner)
    other = f"/api/v1/datasets/{s.dataset.id}/images/{s.other.id}"
    put(client, s, headers, [ann(s.cat), ann(s.cat), ann(s.dog)], 0)
    assert_counters_exact(s)
    assert (s.cat.image_count, s.cat.annotation_count, s.dog.annotation_count) == (1, 2, 1)
    client.put(f"{other}/annotations", json={"revision": 0, "annotations": [ann(s.cat)]}, headers=headers)
    assert_counters_exact(s)
    assert (s.cat.image_count, s.cat.annotation_count, s.dataset.annotation_count, s.dataset.annotated_count) == (2, 3, 4, 2)
    put(client, s, headers, [ann(s.dog)], 1)
    assert_counters_exact(s)
    assert (s.cat.image_count, s.cat.annotation_count, s.dog.image_count, s.dataset.annotation_count) == (1, 1, 1, 2)
    client.post(f"{s.url}/history/1/restore", headers=headers)
    assert_counters_exact(s)
    client.post(f"{other}/skip", headers=headers)
    assert_counters_exact(s)
    assert (s.cat.image_count, s.cat.annotation_count, s.dataset.annotation_count, s.dataset.annotated_count) == (1, 2, 3, 2)
    client.post(f"{s.url}/submit", headers=headers)
    assert_counters_exact(s)


# ---- tags ----------------------------------------------------------------------------------


def test_tags_list_rename_merge_and_delete(client, s):
    headers = token_for(s.owner)
    base = f"/api/v1/datasets/{s.dataset.id}"
    assert client.patch(f"{base}/images/{s.image.id}", json={"tags": ["blurry", "night"]}, headers=headers).status_code == 200
    client.patch(f"{base}/images/{s.other.id}", json={"tags": ["night", "dark"]}, headers=headers)
    assert client.get(f"{base}/tags", headers=headers).get_json()["items"] == [
        {"name": "blurry", "image_count": 1}, {"name": "dark", "image_count": 1}, {"name": "night", "image_count": 2}
    ]
    renamed = client.post(f"{base}/tags/blurry/rename", json={"name": "out of focus"}, headers=headers)
    assert renamed.status_code == 200 and renamed.get_json() == {"name": "out of focus", "image_count": 1, "merged": False}
    # Renaming onto an existing tag merges: the image that had both keeps one.
    merged = client.post(f"{base}/tags/dark/rename", json={"name": "night"}, headers=headers)
    assert merged.get_json() == {"name": "night", "image_count": 2, "merged": True}
    assert client.get(f"{base}/images/{s.other.id}", headers=headers).get_json()["tags"] == ["night"]
    assert client.get(f"{base}/images?tag=night", headers=headers).get_json()["total"] == 2
    deleted = client.delete(f"{base}/tags/night", headers=headers)
    assert deleted.status_code == 200 and deleted.get_json() == {"images": 2}
    assert client.get(f"{base}/tags", headers=headers).get_json()["items"] == [{"name": "out of focus", "image_count": 1}]
    assert client.get(f"{base}/images/{s.image.id}", headers=headers).get_json()["tags"] == ["out of focus"]


def test_tag_names_with_slashes_and_unknown_tags(client, s):
    headers = token_for(s.owner)
    base = f"/api/v1/datasets/{s.dataset.id}"
    client.patch(f"{base}/images/{s.image.id}", json={"tags": ["line/3"]}, headers=headers)
    assert client.post(f"{base}/tags/line/3/rename", json={"name": "line-3"}, headers=headers).get_json()["name"] == "line-3"
    assert client.delete(f"{base}/tags/nope", headers=headers).status_code == 404
    assert client.post(f"{base}/tags/nope/rename", json={"name": "x"}, headers=headers).status_code == 404
    for name in ("", "   ", "x" * 101):
        assert client.post(f"{base}/tags/line-3/rename", json={"name": name}, headers=headers).status_code == 422


def test_tags_of_another_dataset_are_not_reachable(client, s):
    other = make_setting()
    headers = token_for(s.owner)
    client.patch(f"/api/v1/datasets/{other.dataset.id}/images/{other.image.id}", json={"tags": ["secret"]}, headers=token_for(other.owner))
    assert client.get(f"/api/v1/datasets/{s.dataset.id}/tags", headers=headers).get_json()["items"] == []
    assert client.delete(f"/api/v1/datasets/{s.dataset.id}/tags/secret", headers=headers).status_code == 404
    assert client.get(f"/api/v1/datasets/{other.dataset.id}/tags", headers=headers).status_code == 404


# ---- races ---------------------------------------------------------------------------------


def test_simultaneous_saves_on_one_revision_give_one_success_and_conflicts_never_500(client, s, new_client, app_ctx):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    users = [member(s.dataset, "reviewer", name=f"R{i}") for i in range(6)]
    headers = [token_for(user) for user in users]
    clients = [new_client() for _ in users]
    barrier = Barrier(len(users))
    url = f"{s.url}/annotations"
    payloads = [[ann(s.cat, "circle")] * (i + 1) for i in range(len(users))]  # ORM objects stay in this thread

    def save(i):
        with app_ctx.app_context():
            barrier.wait()
            return clients[i].put(url, json={"revision": 0, "annotations": payloads[i]}, headers=headers[i]).status_code

    with ThreadPoolExecutor(len(users)) as pool:
        statuses = sorted(pool.map(save, range(len(users))))
    assert statuses == [200] + [409] * (len(users) - 1)
    body = client.get(f"{s.url}/annotations", headers=token_for(s.owner)).get_json()
    assert body["revision"] == 1 and len(client.get(f"{s.url}/history", headers=token_for(s.owner)).get_json()["items"]) == 1
    assert_counters_exact(s)


def test_simultaneous_submits_hand_the_image_in_once(client, s, new_client, app_ctx):
    # Without a revision a submit takes whatever is current; the claim's row lock still makes the
    # second one see the first one's state, so the image is handed in once and no counter doubles.
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    users = [member(s.dataset, "reviewer", name=f"S{i}") for i in range(4)]
    headers = [token_for(user) for user in users]
    clients = [new_client() for _ in users]
    barrier = Barrier(len(users))
    url = f"{s.url}/submit"  # ORM objects stay in this thread

    def submit(i):
        with app_ctx.app_context():
            barrier.wait()
            return clients[i].post(url, headers=headers[i]).status_code

    with ThreadPoolExecutor(len(users)) as pool:
        statuses = sorted(pool.map(submit, range(len(users))))
    assert statuses == [200] + [409] * (len(users) - 1)
    body = client.get(f"{s.url}/annotations", headers=token_for(s.owner)).get_json()
    assert body["revision"] == 1 and body["state"] == "accepted"
    assert_counters_exact(s)


def test_a_revision_written_behind_the_check_still_conflicts(client, s):
    # A revision row the image's counter does not know of: the save fails cleanly and loses nothing.
    from models import AnnotationRevision

    db.session.add(AnnotationRevision(image_id=s.image.id, number=1, author_id=s.owner.id, action="save", annotations=[], state="in_progress"))
    db.session.commit()
    response = put(client, s, token_for(s.owner), [ann(s.cat)], 0)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["current_revision"] == 0  # what the image row says; reload to see more
    assert client.get(f"{s.url}/annotations", headers=token_for(s.owner)).get_json()["annotations"] == []
    assert_counters_exact(s)


def test_a_save_through_the_api_sends_a_fixed_number_of_sql_statements(client, s):
    # A guard for bench/save_bench.py --api: a query added back to the hot path fails here.
    # A labeler's save with a token: the token and its user; the URL's dataset and image with the
    # role and the assignment; the labels; the claim; the DELETE that hands back the old rows; the
    # INSERT of the new ones and of the revision (the API does not fold); then an UPDATE for each
    # counter that moved (the image's state, the dataset) and one for the labels whose counters
    # moved, all of them sent at once.
    labeler = member(s.dataset, "labeler")
    task = LabelingTask(dataset_id=s.dataset.id, name="boxes")
    db.session.add(task)
    db.session.flush()
    db.session.add(Assignment(task_id=task.id, image_id=s.image.id, labeler_id=labeler.id))
    db.session.commit()
    headers = token_for(labeler)
    client.get(f"{s.url}/annotations", headers=headers)  # the token's first use writes last_used_at
    saves = [
        ([ann(s.cat), ann(s.cat)], 10),  # first save: new state; dataset and cat counted
        ([ann(s.cat), ann(s.cat), ann(s.cat)], 9),  # one box more: dataset and cat
        ([ann(s.cat), ann(s.cat), ann(s.cat)], 7),  # the same counts: no counter moves
        ([ann(s.cat), ann(s.dog)], 9),  # dataset, cat and dog
        ([], 8),  # nothing to insert; dataset, cat and dog
    ]
    path = f"{s.url}/annotations"  # read before counting: the test's own objects reload after each commit
    for revision, (annotations, expected) in enumerate(saves):
        with sql_statements() as sent:
            response = client.put(path, json={"revision": revision, "annotations": annotations}, headers=headers)
        assert response.status_code == 200, response.get_json()
        assert save_statement_count(sent, len(annotations)) == expected, "\n".join(" ".join(x.split())[:150] for x in sent)


def test_the_openapi_document_lists_the_annotation_and_tag_paths(client, app_ctx):
    import openapi_spec_validator

    doc = client.get("/api/v1/openapi.json").get_json()
    openapi_spec_validator.validate(doc)
    image = "/api/v1/datasets/{dataset_id}/images/{image_id}"
    paths = {
        f"{image}/annotations": {"get", "put"}, f"{image}/submit": {"post"}, f"{image}/skip": {"post"},
        f"{image}/history": {"get"}, f"{image}/history/{{number}}/restore": {"post"},
        "/api/v1/datasets/{dataset_id}/tags": {"get"}, "/api/v1/datasets/{dataset_id}/tags/{tag}/rename": {"post"},
        "/api/v1/datasets/{dataset_id}/tags/{tag}": {"delete"},
    }
    for path, methods in paths.items():
        assert methods <= set(doc["paths"][path]), path
    assert "409" in doc["paths"][f"{image}/annotations"]["put"]["responses"]
    assert "Annotation" in doc["components"]["schemas"]
