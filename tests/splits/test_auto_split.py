"""Auto-split through the API, the grid and the real RQ worker: exact percentages, determinism for
a seed, stratification by label, only_unassigned, selections and filters, and bad input."""

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Image, Split
from services import splits as service
from services.annotations import replace_annotations
from services.images import update_image
from services.labels import create_label
from tests.factories import make_dataset, make_user, token_for
from tests.support import insert_images, sign_in


@pytest.fixture
def owner(app_ctx):
    return make_user()


def dataset_with(owner, count: int, type: str = "detection", name: str = "Split me"):
    dataset = make_dataset(owner, name=name, type=type)
    insert_images(dataset, count)
    return dataset


def split(client, dataset, owner, run_jobs=None, **body):
    response = client.post(f"/api/v1/datasets/{dataset.id}/split", json=body, headers=token_for(owner))
    if run_jobs is not None:
        assert response.status_code == 202, response.get_data(as_text=True)
        run_jobs()
    return response


def splits_of(dataset) -> dict[int, str]:
    db.session.expire_all()
    return {i: s.value for i, s in db.session.execute(select(Image.id, Image.split).where(Image.dataset_id == dataset.id))}


def counts(assignment: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in assignment.values():
        out[value] = out.get(value, 0) + 1
    return out


@pytest.mark.parametrize("count, shares, expected", [
    (20, (50, 30, 20), {"train": 10, "validation": 6, "test": 4}),
    (7, (70, 20, 10), {"train": 5, "validation": 1, "test": 1}),
    (10, (100, 0, 0), {"train": 10}),
    (3, (0, 0, 100), {"test": 3}),
])
def test_every_split_gets_exactly_its_share(client, run_jobs, owner, count, shares, expected):
    dataset = dataset_with(owner, count)
    train, validation, test = shares
    split(client, dataset, owner, run_jobs, train=train, validation=validation, test=test, seed=7)
    assert counts(splits_of(dataset)) == expected


def test_the_same_seed_gives_the_same_split_and_another_seed_another(client, run_jobs, owner):
    dataset = dataset_with(owner, 30)
    split(client, dataset, owner, run_jobs, train=60, validation=20, test=20, seed=42)
    first = splits_of(dataset)
    split(client, dataset, owner, run_jobs, train=60, validation=20, test=20, seed=42, only_unassigned=False)
    assert splits_of(dataset) == first
    split(client, dataset, owner, run_jobs, train=60, validation=20, test=20, seed=43, only_unassigned=False)
    other = splits_of(dataset)
    assert other != first and counts(other) == counts(first) == {"train": 18, "validation": 6, "test": 6}
    # The documented order: in one stratum, the keys of sha256("seed:id") decide, lowest first into train.
    ranked = sorted(first, key=lambda image_id: service.sort_key(42, image_id))
    assert [first[i] for i in ranked] == ["train"] * 18 + ["validation"] * 6 + ["test"] * 6


def test_each_class_is_split_by_the_percentages(client, run_jobs, owner):
    dataset = dataset_with(owner, 10, type="classification")
    cat, dog = create_label(dataset, name="cat"), create_label(dataset, name="dog")
    images = db.session.scalars(select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id)).all()
    classes = {}
    for i, image in enumerate(images):
        label = cat if i < 6 else dog
        replace_annotations(image, owner, [{"label_id": label.id, "shape": "tag", "geometry": {}}])
        classes[image.id] = label.name
    split(client, dataset, owner, run_jobs, train=50, validation=50, test=0, seed=1)
    assignment = splits_of(dataset)
    per_class = {name: counts({i: s for i, s in assignment.items() if classes[i] == name}) for name in ("cat", "dog")}
    assert per_class == {"cat": {"train": 3, "validation": 3}, "dog": {"train": 2, "validation": 2}}


def test_a_detection_image_is_stratified_by_its_most_frequent_label(owner, app_ctx):
    dataset = dataset_with(owner, 2)
    cat, dog = create_label(dataset, name="cat", default_shape="box"), create_label(dataset, name="dog", default_shape="box")
    first, second = db.session.scalars(select(Image).where(Image.dataset_id == dataset.id).order_by(Image.id)).all()
    boxed = lambda label: {"label_id": label.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 5, "height": 5}}  # noqa: E731
    replace_annotations(first, owner, [boxed(cat), boxed(dog), boxed(dog)])
    replace_annotations(second, owner, [boxed(dog), boxed(cat)])  # a tie: the lower label id
    assert service.strata_of([first.id, second.id]) == {first.id: str(dog.id), second.id: str(cat.id)}


def test_images_that_have_a_split_stay_unless_asked(client, run_jobs, owner):
    dataset = dataset_with(owner, 10)
    ids = sorted(splits_of(dataset))
    update_image(db.session.get(Image, ids[0]), split="review")
    update_image(db.session.get(Image, ids[1]), split="test")
    split(client, dataset, owner, run_jobs, train=100, validation=0, test=0)
    assignment = splits_of(dataset)
    assert (assignment[ids[0]], assignment[ids[1]]) == ("review", "test")
    assert counts(assignment) == {"review": 1, "test": 1, "train": 8}
    split(client, dataset, owner, run_jobs, train=0, validation=100, test=0, only_unassigned=False)
    assert counts(splits_of(dataset)) == {"validation": 10}


def test_only_the_selection_or_the_filter_is_split(client, run_jobs, owner):
    dataset = dataset_with(owner, 6)
    ids = sorted(splits_of(dataset))
    split(client, dataset, owner, run_jobs, train=100, validation=0, test=0, image_ids=ids[:2])
    assert [splits_of(dataset)[i] for i in ids] == ["train", "train"] + ["unassigned"] * 4
    split(client, dataset, owner, run_jobs, train=0, validation=0, test=100, search="img_00005")
    assert [splits_of(dataset)[i] for i in ids] == ["train", "train", "unassigned", "unassigned", "unassigned", "test"]


def test_the_job_reports_what_it_assigned(client, run_jobs, owner):
    dataset = dataset_with(owner, 4)
    job = split(client, dataset, owner, train=50, validation=25, test=25, seed=3).get_json()
    assert job["kind"] == "auto_split" and job["total"] == 4 and job["status"] == "queued"
    run_jobs()
    done = client.get(f"/api/v1/jobs/{job['id']}", headers=token_for(owner)).get_json()
    assert done["status"] == "finished" and done["done"] == 4
    assert done["result"]["assigned"] == {"train": 2, "validation": 1, "test": 1}
    assert done["message"] == "Split 4 images: 2 train, 1 validation, 1 test"


def test_a_re_run_follows_the_plan_of_the_run_that_died(client, run_jobs, owner, monkeypatch):
    """A run killed after its plan and first chunk: the re-run keeps the plan, so the split is the one a whole run gives
    (the first chunk's images are no longer unassigned: a new plan would leave them out and cut the rest anew)."""
    monkeypatch.setattr(service, "CHUNK", 2)
    dataset = dataset_with(owner, 6, name="crashed")
    ranked = sorted(splits_of(dataset), key=lambda image_id: service.sort_key(5, image_id))
    expected = dict(zip(ranked, ["train"] * 3 + ["validation"] * 3))
    job_id = split(client, dataset, owner, train=50, validation=50, test=0, seed=5).get_json()["id"]
    from models import Job, JobStatus

    job = db.session.get(Job, job_id)
    # The dead run's work: its plan (made over the same images), and its first chunk committed.
    ids = sorted(splits_of(dataset))
    keys = {}
    for image_id, stratum in service.strata_of(ids).items():
        keys.setdefault(stratum, []).append(service.sort_key(5, image_id))
    cuts = service.plan_cuts(keys, {"train": 50, "validation": 50, "test": 0})
    assigned = service.apply_chunk(dataset, ids[:2], 5, cuts, {"train": 50, "validation": 50, "test": 0}, True)
    job.result = {"cuts": cuts, "last_image_id": ids[1], "assigned": {s: assigned.get(s, 0) for s in service.SPLITS}}
    job.done, job.status = 2, JobStatus.failed
    db.session.commit()
    from rq.job import Job as RQJob

    from core.queues import get_redis

    RQJob.fetch(job_id, connection=get_redis()).cancel()
    assert client.post(f"/api/v1/jobs/{job_id}/retry", headers=token_for(owner)).status_code == 202
    run_jobs()
    assert splits_of(dataset) == expected
    job = db.session.get(Job, job_id)
    assert job.status == JobStatus.finished and sum(job.result["assigned"].values()) == 6


# ---- the grid ----------------------------------------------------------------------------------


def test_the_grid_splits_all_images_matching_its_filter(client, run_jobs, owner):
    dataset = dataset_with(owner, 8)
    update_image(db.session.get(Image, min(splits_of(dataset))), tags=["sharp"])
    sign_in(client, owner)
    form = {"all_matching": "1", "train": "0", "validation": "100", "test": "0", "seed": "3", "only_unassigned": "1", "split": "train"}
    response = client.post(f"/datasets/{dataset.id}/images/auto-split?tag=sharp", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_data(as_text=True)
    assert 'id="grid-notice"' in body and 'id="bulk-job"' in body and "splitting 1 image" in body
    run_jobs()
    assert counts(splits_of(dataset)) == {"validation": 1, "unassigned": 7}
    selected = {"image_ids": [str(i) for i in sorted(splits_of(dataset))[1:3]], "train": "100", "validation": "0", "test": "0"}
    assert client.post(f"/datasets/{dataset.id}/images/auto-split", data=selected, headers={"HX-Request": "true"}).status_code == 200
    run_jobs()
    # The box was not ticked: only_unassigned is off, and the selection is all that moves.
    assert counts(splits_of(dataset)) == {"validation": 1, "train": 2, "unassigned": 5}


def test_the_grid_offers_auto_split_to_managers_only(client, owner):
    from tests.support import member

    dataset = dataset_with(owner, 1)
    sign_in(client, owner)
    assert 'id="bulk-auto-split"' in client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    sign_in(client, member(dataset, "reviewer"))
    assert 'id="bulk-auto-split"' not in client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)


def test_the_grid_refuses_an_empty_selection_and_bad_numbers(client, owner):
    dataset = dataset_with(owner, 2)
    sign_in(client, owner)
    url = f"/datasets/{dataset.id}/images/auto-split"
    assert client.post(url, data={"train": "100"}, headers={"HX-Request": "true"}).status_code == 422
    bad = client.post(url, data={"all_matching": "1", "train": "ten"}, headers={"HX-Request": "true"})
    assert bad.status_code == 422 and "train must be a whole number" in bad.get_data(as_text=True)
    over = client.post(url, data={"all_matching": "1", "train": "90", "validation": "20"}, headers={"HX-Request": "true"})
    assert over.status_code == 422 and "add up to 100" in over.get_data(as_text=True)


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body, status, words", [
    ({"train": 70, "validation": 20, "test": 20}, 422, "add up to 100; they add up to 110"),
    ({"train": 50, "validation": 20, "test": 20}, 422, "add up to 100; they add up to 90"),
    ({"train": 120, "validation": -10, "test": -10}, 422, "train must be a whole percentage from 0 to 100"),
    ({"train": 100, "validation": -5, "test": 5}, 422, "validation must be a whole percentage"),
    ({"train": 2**62, "validation": 0, "test": 0}, 422, "train must be a whole percentage"),
    ({"train": 2**70, "validation": 0, "test": 0}, 422, "out of range"),
    ({"train": True, "validation": 0, "test": 0}, 422, "train"),
    ({"train": 70.0, "validation": 20, "test": 10}, 422, "train"),
    ({"train": "70", "validation": 20, "test": 10}, 422, "train"),
    ({"validation": 50, "test": 50}, 422, "train"),
    ({"train": 100, "validation": 0, "test": 0, "seed": "x"}, 422, "seed"),
    ({"train": 100, "validation": 0, "test": 0, "seed": 2**64}, 422, "out of range"),
    ({"train": 100, "validation": 0, "test": 0, "image_ids": []}, 422, "image_ids"),
    ({"train": 100, "validation": 0, "test": 0, "image_ids": [2**40]}, 404, "Images not in this dataset"),
    ({"train": 100, "validation": 0, "test": 0, "split": "nope"}, 422, "split"),
    ({"train": 100, "validation": 0, "test": 0, "only_unassigned": "maybe"}, 422, "only_unassigned"),
])
def test_bad_split_requests_are_refused_and_nothing_moves(client, owner, body, status, words):
    dataset = dataset_with(owner, 3)
    response = split(client, dataset, owner, **body)
    assert response.status_code == status, response.get_data(as_text=True)
    assert words in response.get_data(as_text=True)
    assert set(splits_of(dataset).values()) == {Split.unassigned.value}


def test_an_image_of_another_dataset_cannot_be_split_through_this_one(client, owner):
    dataset, other = dataset_with(owner, 1), dataset_with(owner, 1, name="Other")
    foreign = next(iter(splits_of(other)))
    response = split(client, dataset, owner, train=100, validation=0, test=0, image_ids=[foreign])
    assert response.status_code == 404 and str(foreign) in response.get_json()["error"]["message"]
