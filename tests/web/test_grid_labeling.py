"""Grid labeling: classify a selection with one request, undo it, chips and overlays on the tiles."""

import re
from collections import Counter

import pytest
from sqlalchemy import event, func, select

from core.extensions import db
from models import Annotation, AnnotationRevision, Dataset, Image, ImageState, Label
from services.annotations import replace_annotations
from tests.factories import assign, make_dataset, make_user
from tests.support import actor, insert_images, member, sign_in, tile_ids


def add_label(dataset, name: str, shortcut: str | None = None, color: str = "#3cb44b", shape: str = "tag") -> Label:
    label = Label(dataset_id=dataset.id, name=name, shortcut=shortcut, color=color, default_shape=shape, position=0)
    db.session.add(label)
    db.session.commit()
    return label


def classify(client, dataset, ids, label_id, **extra):
    data = {"image_ids": [str(i) for i in ids], "label_id": str(label_id), **extra}
    return client.post(f"/datasets/{dataset.id}/images/classify", data=data, headers={"HX-Request": "true"})


def undo(client, dataset, token):
    return client.post(f"/datasets/{dataset.id}/images/classify/undo", data={"undo": token}, headers={"HX-Request": "true"})


def undo_token(response) -> str:
    match = re.search(r'data-undo="([^"]*)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:500]
    return match.group(1)


def tags(image_id) -> list[int]:
    return sorted(db.session.scalars(select(Annotation.label_id).where(Annotation.image_id == image_id, Annotation.shape == "tag")))


def revisions(image_id) -> int:
    return db.session.scalar(select(func.count()).select_from(AnnotationRevision).where(AnnotationRevision.image_id == image_id))


def total_revisions(dataset) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AnnotationRevision).join(Image, Image.id == AnnotationRevision.image_id).where(Image.dataset_id == dataset.id)
    )


def assert_counters_exact(dataset) -> None:
    """The kept counters equal a count from scratch."""
    db.session.expire_all()
    rows = db.session.execute(
        select(Annotation.image_id, Annotation.label_id).join(Image, Image.id == Annotation.image_id).where(Image.dataset_id == dataset.id)
    ).all()
    per_label = Counter(label_id for _, label_id in rows)
    images_per_label = Counter(label_id for _, label_id in set(rows))
    for label in db.session.scalars(select(Label).where(Label.dataset_id == dataset.id)):
        assert (label.annotation_count, label.image_count) == (per_label[label.id], images_per_label[label.id]), label.name
    dataset = db.session.get(Dataset, dataset.id)
    assert dataset.annotation_count == len(rows)
    annotated = db.session.scalar(select(func.count()).where(Image.dataset_id == dataset.id, Image.state != ImageState.unlabeled))
    assert dataset.annotated_count == annotated


@pytest.fixture
def classes(client, owner):
    dataset = make_dataset(owner, name="Pets", type="classification")
    ids = insert_images(dataset, 4)
    cat, dog = add_label(dataset, "cat", "c", "#e6194b"), add_label(dataset, "dog", "d", "#4363d8")
    return dataset, ids, cat, dog


# ---- replace (classification, anomaly) ------------------------------------------------------


def test_classification_key_replaces_the_one_class_of_every_selected_image(client, classes):
    dataset, ids, cat, dog = classes
    response = classify(client, dataset, ids[:3], cat.id)
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "imagesChanged"
    body = response.get_data(as_text=True)
    assert sorted(tile_ids(body)) == ids[:3], "the answer is the changed tiles"
    assert body.count('class="chip"') == 3 and ">cat</span>" in body
    assert "Classified 3 images" in body
    assert [tags(i) for i in ids] == [[cat.id], [cat.id], [cat.id], []]

    response = classify(client, dataset, ids[1:], dog.id)
    assert response.status_code == 200
    assert [tags(i) for i in ids] == [[cat.id], [dog.id], [dog.id], [dog.id]]
    assert [revisions(i) for i in ids] == [1, 2, 2, 1], "every change is one revision"
    states = db.session.scalars(select(Image.state).where(Image.id.in_(ids)).order_by(Image.id)).all()
    assert set(states) == {ImageState.in_progress}
    assert_counters_exact(dataset)

    # Pressing the same key again changes nothing and records no revision.
    assert classify(client, dataset, ids[1:], dog.id).status_code == 200
    assert [revisions(i) for i in ids] == [1, 2, 2, 1]


def test_anomaly_replaces_the_tag_and_keeps_defect_regions_and_their_author(client, owner):
    dataset = make_dataset(owner, name="Parts", type="anomaly")
    [image_id] = insert_images(dataset, 1, width=100, height=80)
    normal, anomaly = add_label(dataset, "normal", "n"), add_label(dataset, "anomaly", "a")
    scratch = add_label(dataset, "scratch", "s", shape="box")
    image = db.session.get(Image, image_id)
    replace_annotations(image, owner, [
        {"label_id": normal.id, "shape": "tag", "geometry": {}},
        {"label_id": scratch.id, "shape": "box", "geometry": {"x": 10, "y": 10, "width": 20, "height": 20}},
    ], 0)
    response = classify(client, dataset, [image_id], anomaly.id)
    assert response.status_code == 200
    rows = db.session.scalars(select(Annotation).where(Annotation.image_id == image_id).order_by(Annotation.shape)).all()
    assert [(a.shape, a.label_id) for a in rows] == [("box", scratch.id), ("tag", anomaly.id)]
    assert rows[0].geometry == {"x": 10, "y": 10, "width": 20, "height": 20}
    assert rows[0].author_id == owner.id
    assert 'class="overlay"' in response.get_data(as_text=True), "the box is drawn over the thumbnail"
    assert_counters_exact(dataset)


# ---- toggle (multilabel) --------------------------------------------------------------------


def test_multilabel_key_toggles_the_tag_across_the_selection(client, owner):
    dataset = make_dataset(owner, name="Scenes", type="multilabel")
    ids = insert_images(dataset, 3)
    sky, sea = add_label(dataset, "sky", "1"), add_label(dataset, "sea", "2")
    assert classify(client, dataset, ids[:2], sky.id).status_code == 200
    assert [tags(i) for i in ids] == [[sky.id], [sky.id], []]
    assert classify(client, dataset, [ids[1]], sea.id).status_code == 200
    assert tags(ids[1]) == sorted([sky.id, sea.id]), "a second class is added beside the first"

    # Not all have it: add to those missing it only.
    response = classify(client, dataset, ids, sky.id)
    assert "Added the class to 1 image" in response.get_data(as_text=True)
    assert [tags(i) for i in ids] == [[sky.id], sorted([sky.id, sea.id]), [sky.id]]
    assert [revisions(i) for i in ids] == [1, 2, 1]

    # All have it: remove from all, other classes stay.
    response = classify(client, dataset, ids, sky.id)
    assert "Removed the class from 3 images" in response.get_data(as_text=True)
    assert [tags(i) for i in ids] == [[], [sea.id], []]
    assert_counters_exact(dataset)


# ---- undo -----------------------------------------------------------------------------------


def test_undo_restores_the_previous_classes_exactly_as_new_revisions(client, classes):
    dataset, ids, cat, dog = classes
    classify(client, dataset, ids[:2], cat.id)
    before = [tags(i) for i in ids]
    response = classify(client, dataset, ids[1:], dog.id)
    token = undo_token(response)
    assert token
    assert [tags(i) for i in ids] == [[cat.id], [dog.id], [dog.id], [dog.id]]

    response = undo(client, dataset, token)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Undid the classification of 3 images" in response.get_data(as_text=True)
    assert sorted(tile_ids(response.get_data(as_text=True))) == ids[1:]
    assert [tags(i) for i in ids] == before
    assert [revisions(i) for i in ids] == [1, 3, 2, 2], "an undo is a new revision, history is kept"
    assert_counters_exact(dataset)


def test_undo_twice_walks_back_two_classifications(client, classes):
    dataset, ids, cat, dog = classes
    first = undo_token(classify(client, dataset, ids[:2], cat.id))
    second = undo_token(classify(client, dataset, ids[:2], dog.id))
    assert undo(client, dataset, second).status_code == 200
    assert [tags(i) for i in ids[:2]] == [[cat.id], [cat.id]]
    assert undo(client, dataset, first).status_code == 200
    assert [tags(i) for i in ids[:2]] == [[], []]
    assert_counters_exact(dataset)


def test_undo_skips_images_someone_changed_since(client, classes, owner):
    dataset, ids, cat, dog = classes
    token = undo_token(classify(client, dataset, ids[:2], cat.id))
    image = db.session.get(Image, ids[0])
    replace_annotations(image, owner, [{"label_id": dog.id, "shape": "tag", "geometry": {}}], image.revision)
    response = undo(client, dataset, token)
    assert response.status_code == 200
    assert "its classes were changed since" in response.get_data(as_text=True)
    assert [tags(i) for i in ids[:2]] == [[dog.id], []]


def test_undo_token_must_be_genuine_and_the_callers_own(client, classes, new_client):
    dataset, ids, cat, _dog = classes
    token = undo_token(classify(client, dataset, ids[:1], cat.id))
    assert undo(client, dataset, token[:-3] + "xyz").status_code == 422
    assert undo(client, dataset, "").status_code == 422
    other = new_client()
    sign_in(other, member(dataset, "manager"))
    response = undo(other, dataset, token)
    assert response.status_code == 422 and "another dataset or person" in response.get_data(as_text=True)
    assert tags(ids[0]) == [cat.id]


# ---- who may -------------------------------------------------------------------------------


@pytest.mark.parametrize("role,expected", [("admin", 200), ("owner", 200), ("manager", 200), ("reviewer", 200), ("labeler", 403), ("outsider", 404)])
def test_classify_per_role(client, classes, role, expected):
    dataset, ids, cat, _dog = classes
    sign_in(client, actor(dataset, role))
    response = classify(client, dataset, ids[:2], cat.id)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    assert [tags(i) for i in ids[:2]] == ([[cat.id], [cat.id]] if expected == 200 else [[], []])
    assert_counters_exact(dataset)


def test_labeler_classifies_only_their_assigned_not_accepted_images(client, classes):
    dataset, ids, cat, _dog = classes
    labeler = member(dataset, "labeler")
    for i in ids[:3]:
        assign(dataset, i, labeler)
    db.session.execute(db.update(Image).where(Image.id == ids[2]).values(state=ImageState.accepted))
    db.session.commit()
    sign_in(client, labeler)
    response = classify(client, dataset, ids, cat.id)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "skipped 2 (you may not annotate this image)" in body
    assert sorted(tile_ids(body)) == ids[:2]
    assert [tags(i) for i in ids] == [[cat.id], [cat.id], [], []]
    # Their undo is theirs; it too respects the assignments.
    assert undo(client, dataset, undo_token(response)).status_code == 200
    assert [tags(i) for i in ids] == [[], [], [], []]


def test_outsider_on_a_public_dataset_may_look_but_not_classify(client, classes):
    dataset, ids, cat, _dog = classes
    dataset.public = True
    db.session.commit()
    sign_in(client, make_user())
    assert classify(client, dataset, ids[:1], cat.id).status_code == 403
    assert 'id="label-palette"' not in client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    assert tags(ids[0]) == []


# ---- bad input: a clear error and nothing changed ---------------------------------------------


def test_bad_requests_change_nothing(client, classes, owner):
    dataset, ids, cat, _dog = classes
    other = make_dataset(owner, name="Other", type="classification")
    foreign_label = add_label(other, "cow", "w")
    [foreign_image] = insert_images(other, 1, start=100)
    many = ids + [ids[-1] + 1000 + n for n in range(1001)]
    cases = [
        (classify(client, dataset, ids, 999999), 422, "999999 is not a label of this dataset"),
        (classify(client, dataset, ids, foreign_label.id), 422, "is not a label of this dataset"),
        (classify(client, dataset, ids, "cat"), 422, "label_id"),
        (classify(client, dataset, many, cat.id), 422, "At most 1000 images"),
        (classify(client, dataset, [], cat.id), 422, "Select at least one image"),
        (classify(client, dataset, ["x"], cat.id), 422, "image_ids"),
        (classify(client, dataset, [ids[0], foreign_image], cat.id), 404, "Images not in this dataset"),
        (classify(client, dataset, ids, cat.id, mode="shuffle"), 422, "mode must be one of"),
    ]
    for response, status, message in cases:
        body = response.get_data(as_text=True)
        assert response.status_code == status, body[:300]
        assert message in body, body[:300]
        assert "<html" not in body, "HTMX callers get the error partial"
    assert total_revisions(dataset) == 0 and [tags(i) for i in ids] == [[], [], [], []]
    assert_counters_exact(dataset)


def test_detection_datasets_are_not_classified_in_the_grid(client, owner):
    dataset = make_dataset(owner, name="Cars", type="detection")
    ids = insert_images(dataset, 1)
    car = add_label(dataset, "car", "c", shape="box")
    response = classify(client, dataset, ids, car.id)
    assert response.status_code == 422 and "classification, multilabel and anomaly" in response.get_data(as_text=True)
    assert 'id="label-palette"' not in client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)


def test_a_thousand_images_classify_in_one_request(client, classes):
    dataset, ids, cat, _dog = classes
    ids = insert_images(dataset, 996, start=10)
    assert len(ids) == 1000
    response = classify(client, dataset, ids, cat.id)
    assert response.status_code == 200
    assert "Classified 1000 images" in response.get_data(as_text=True)
    assert db.session.get(Label, cat.id).image_count == 1000
    assert_counters_exact(dataset)


# ---- the grid shows classes and overlays ------------------------------------------------------


def test_grid_shows_palette_chips_and_overlays(client, classes, owner):
    dataset, ids, cat, _dog = classes
    classify(client, dataset, ids[:1], cat.id)
    html = client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    assert 'id="label-palette"' in html
    assert re.search(r'data-shortcut="c"[^>]*style="--chip: #e6194b"', html)
    assert re.search(rf'<span class="chip" data-label-id="{cat.id}" style="--chip: #e6194b">cat</span>', html)
    assert html.count('class="chip"') == 1

    detection = make_dataset(owner, name="Street", type="detection")
    [image_id] = insert_images(detection, 1, start=50, width=200, height=100)
    car = add_label(detection, "car", "c", "#f58231", shape="box")
    person = add_label(detection, "person", "p", "#911eb4", shape="polygon")
    replace_annotations(db.session.get(Image, image_id), owner, [
        {"label_id": car.id, "shape": "box", "geometry": {"x": 10, "y": 20, "width": 50, "height": 40}},
        {"label_id": person.id, "shape": "polygon", "geometry": {"points": [[0, 0], [100, 0], [50, 90]]}},
    ], 0)
    html = client.get(f"/datasets/{detection.id}/images/").get_data(as_text=True)
    assert 'viewBox="0 0 200 100"' in html
    assert '<rect class="ov-box" x="10" y="20" width="50" height="40" stroke="#f58231"/>' in html
    assert 'points="0,0 100,0 50,90"' in html


def test_grid_loads_the_pages_annotations_in_one_query(client, classes, app_ctx):
    dataset, ids, cat, dog = classes

    def statements() -> int:
        seen = []
        def listener(*args):
            seen.append(args[2])

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            assert client.get(f"/datasets/{dataset.id}/images/").status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return sum(1 for s in seen if "FROM annotation" in s)

    classify(client, dataset, ids[:1], cat.id)
    one = statements()
    insert_images(dataset, 40, start=10)
    classify(client, dataset, [i for i in db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id))], dog.id)
    assert one == statements() == 1
