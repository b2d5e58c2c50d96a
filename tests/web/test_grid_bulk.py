"""The grid bar's bulk tag and folder actions, and the tag filter."""

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Folder, Image, ImageTag, Tag
from tests.factories import make_dataset
from tests.support import actor, insert_images, sign_in, tile_ids


def bulk(client, dataset, ids, action, **form):
    data = {"action": action, "image_ids": [str(i) for i in ids], **form}
    return client.post(f"/datasets/{dataset.id}/images/bulk", data=data, headers={"HX-Request": "true"})


def tag_names(image_id) -> list[str]:
    return sorted(db.session.scalars(select(Tag.name).join(ImageTag, ImageTag.tag_id == Tag.id).where(ImageTag.image_id == image_id)))


def folder_of(image_id) -> str | None:
    return db.session.scalar(select(Folder.path).join(Image, Image.folder_id == Folder.id).where(Image.id == image_id))


@pytest.fixture
def grid(client, owner):
    dataset = make_dataset(owner, name="Pets", type="classification")
    return dataset, insert_images(dataset, 4)


def test_add_and_remove_a_tag_on_the_selection(client, grid):
    dataset, ids = grid
    response = bulk(client, dataset, ids[:2], "add_tag", tag=" blurry ")
    assert response.status_code == 200
    assert "Tagged 2 images &#39;blurry&#39;" in response.get_data(as_text=True)
    assert response.headers["HX-Trigger"] == "imagesChanged"
    assert [tag_names(i) for i in ids] == [["blurry"], ["blurry"], [], []]
    # Adding again only tags the ones missing it.
    assert "Tagged 1 image " in bulk(client, dataset, ids[1:3], "add_tag", tag="blurry").get_data(as_text=True)
    assert [tag_names(i) for i in ids] == [["blurry"], ["blurry"], ["blurry"], []]

    response = bulk(client, dataset, ids[:2], "remove_tag", tag="blurry")
    assert response.status_code == 200
    assert "from 2 images" in response.get_data(as_text=True)
    assert [tag_names(i) for i in ids] == [[], [], ["blurry"], []]


def test_tag_filter_lists_tags_and_filters_the_grid(client, grid):
    dataset, ids = grid
    bulk(client, dataset, ids[1:3], "add_tag", tag="night")
    page = client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    assert '<select name="tag" aria-label="Tag">' in page and ">night (2)</option>" in page
    filtered = client.get(f"/datasets/{dataset.id}/images/?tag=night", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert tile_ids(filtered) == ids[1:3]


def test_move_to_folder_creates_it_and_empty_moves_to_the_top(client, grid):
    dataset, ids = grid
    response = bulk(client, dataset, ids[:3], "move_folder", to_folder="2024/june/")
    assert response.status_code == 200
    assert "Moved 3 images to 2024/june" in response.get_data(as_text=True)
    assert [folder_of(i) for i in ids] == ["2024/june", "2024/june", "2024/june", None]
    assert sorted(db.session.scalars(select(Folder.path).where(Folder.dataset_id == dataset.id))) == ["2024", "2024/june"]
    filtered = client.get(f"/datasets/{dataset.id}/images/?folder=2024/june", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert tile_ids(filtered) == ids[:3]
    assert "to the top level" in bulk(client, dataset, ids[:1], "move_folder", to_folder="").get_data(as_text=True)
    assert folder_of(ids[0]) is None


@pytest.mark.parametrize(
    "action,form,status,message",
    [
        ("add_tag", {"tag": "  "}, 422, "1 to 100 characters"),
        ("add_tag", {"tag": "x" * 101}, 422, "1 to 100 characters"),
        ("remove_tag", {"tag": "never-made"}, 404, "No tag"),
        ("move_folder", {"to_folder": "../up"}, 422, "may not contain"),
    ],
)
def test_bad_bulk_input_changes_nothing(client, grid, action, form, status, message):
    dataset, ids = grid
    response = bulk(client, dataset, ids, action, **form)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert all(tag_names(i) == [] and folder_of(i) is None for i in ids)


def test_images_of_another_dataset_are_refused(client, grid, owner):
    dataset, ids = grid
    other = make_dataset(owner, name="Other")
    [foreign] = insert_images(other, 1, start=50)
    assert bulk(client, dataset, [ids[0], foreign], "add_tag", tag="x").status_code == 404
    assert bulk(client, dataset, [foreign], "move_folder", to_folder="a").status_code == 404
    assert tag_names(foreign) == [] and folder_of(foreign) is None and tag_names(ids[0]) == []


@pytest.mark.parametrize("role,expected", [("manager", 200), ("reviewer", 403), ("labeler", 403), ("outsider", 404)])
def test_bulk_tags_and_folders_need_dataset_import(client, grid, role, expected):
    dataset, ids = grid
    sign_in(client, actor(dataset, role))
    assert bulk(client, dataset, ids[:1], "add_tag", tag="t").status_code == expected
    assert bulk(client, dataset, ids[:1], "move_folder", to_folder="f").status_code == expected
    assert (tag_names(ids[0]), folder_of(ids[0])) == ((["t"], "f") if expected == 200 else ([], None))


def test_deleting_annotated_and_tagged_images_keeps_every_counter_exact(client, owner):
    from models import Dataset, Label, User
    from services import datasets as dataset_service
    from services import images as image_service
    from services.annotations import replace_annotations

    dataset = make_dataset(owner, name="Streets", type="detection")
    ids = insert_images(dataset, 5)
    car, bus = (Label(dataset_id=dataset.id, name=n, color="#e03131", default_shape="box", position=i) for i, n in enumerate(("car", "bus")))
    db.session.add_all([car, bus])
    db.session.commit()
    box = {"shape": "box", "geometry": {"x": 1, "y": 1, "width": 5, "height": 5}}
    user = db.session.get(User, owner.id)
    for image_id, labels in zip(ids, ([car], [car, car, bus], [bus], [])):
        replace_annotations(db.session.get(Image, image_id), user, [{"label_id": label.id, **box} for label in labels], 0)
    image_service.add_tag_to_images(dataset, ids[:3], "night")
    image_service.add_tag_to_images(dataset, ids[1:], "rain")

    assert bulk(client, dataset, ids[:2], "delete").status_code == 200

    db.session.expire_all()
    def counters():
        d = db.session.get(Dataset, dataset.id)
        return (
            (d.image_count, d.annotated_count, d.annotation_count),
            {l.name: (l.image_count, l.annotation_count) for l in db.session.scalars(select(Label).where(Label.dataset_id == dataset.id))},
            {t.name: t.image_count for t in db.session.scalars(select(Tag).where(Tag.dataset_id == dataset.id))},
        )
    kept = counters()
    assert kept == ((3, 2, 1), {"car": (0, 0), "bus": (1, 1)}, {"night": 1, "rain": 3})  # an empty save counts as begun
    dataset_service.recount(dataset.id)  # a count from scratch agrees
    assert counters() == kept
    db.session.rollback()


# ---- "select all N matching": by the filter, on the server; a job when large ----------------------


def bulk_matching(client, dataset, query: str, action, loaded=(), **form):
    """The grid's bar with "all N matching" on; `loaded` are tile ids a browser sends along (ignored)."""
    data = {"action": action, "all_matching": "1", "image_ids": [str(i) for i in loaded], **form}
    return client.post(f"/datasets/{dataset.id}/images/bulk{query}", data=data, headers={"HX-Request": "true"})


def classify_matching(client, dataset, query: str, label_id, **form):
    data = {"label_id": str(label_id), "all_matching": "1", **form}
    return client.post(f"/datasets/{dataset.id}/images/classify{query}", data=data, headers={"HX-Request": "true"})


def splits_of(ids) -> list[str]:
    found = dict(db.session.execute(select(Image.id, Image.split).where(Image.id.in_(ids))).all())
    return [found[i].value if i in found else None for i in ids]


def class_of(image_id) -> list[str]:
    from models import Annotation, Label

    return sorted(db.session.scalars(
        select(Label.name).join(Annotation, Annotation.label_id == Label.id).where(Annotation.image_id == image_id, Annotation.shape == "tag")
    ))


@pytest.fixture
def filtered(client, owner):
    """250 images (more than two grid pages): the even ones in train, which the tests filter by."""
    from models import Label, Split

    dataset = make_dataset(owner, name="Many", type="multilabel")
    ids = insert_images(dataset, 250)
    evens = ids[::2]
    db.session.execute(db.update(Image).where(Image.id.in_(evens)).values(split=Split.train))
    db.session.add(Label(dataset_id=dataset.id, name="cat", color="#e6194b", default_shape="tag", position=0))
    db.session.commit()
    label_id = db.session.scalar(select(Label.id).where(Label.dataset_id == dataset.id))
    return dataset, ids, evens, label_id


ALL_ACTIONS = [
    ("set_split", {"split": "test"}, lambda i: splits_of([i]) == ["test"]),
    ("add_tag", {"tag": "dusk"}, lambda i: tag_names(i) == ["dusk"]),
    ("move_folder", {"to_folder": "sorted/train"}, lambda i: folder_of(i) == "sorted/train"),
    ("delete", {}, lambda i: splits_of([i]) == [None]),
    ("classify", {}, lambda i: class_of(i) == ["cat"]),
]


@pytest.mark.parametrize("action,form,changed", ALL_ACTIONS, ids=[a for a, _, _ in ALL_ACTIONS])
def test_all_matching_applies_every_action_to_the_whole_filter_beyond_the_loaded_page(client, filtered, action, form, changed):
    dataset, ids, evens, label_id = filtered
    odds = ids[1::2]
    first_page = evens[:100]  # what a browser has loaded; plus one image outside the filter, sent by mistake
    if action == "classify":
        response = classify_matching(client, dataset, "?split=train", label_id, image_ids=[str(i) for i in first_page + odds[:1]])
    else:
        response = bulk_matching(client, dataset, "?split=train", action, loaded=first_page + odds[:1], **form)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert "125 images" in response.get_data(as_text=True)
    db.session.expire_all()
    assert all(changed(i) for i in evens), "every image of the filter, not only the loaded ones"
    assert not any(changed(i) for i in odds), "nothing outside the filter, whatever ids were sent"


def test_all_matching_removes_a_tag_from_the_filter_only(client, filtered):
    dataset, ids, evens, _ = filtered
    from services import images as image_service

    image_service.add_tag_to_images(dataset, ids[:200], "blurry")
    image_service.add_tag_to_images(dataset, ids[200:], "blurry")
    response = bulk_matching(client, dataset, "?split=train&search=img_001", "remove_tag", tag="blurry")
    assert response.status_code == 200
    hit = {i for i in evens if 100 <= ids.index(i) < 200}
    assert "Removed the tag &#39;blurry&#39; from 50 images" in response.get_data(as_text=True)
    assert [tag_names(i) for i in ids] == [[] if i in hit else ["blurry"] for i in ids]
    assert db.session.scalar(select(Tag.image_count).where(Tag.name == "blurry")) == 200


@pytest.mark.parametrize(
    "action,form,status,message",
    [("set_split", {"split": "bogus"}, 422, "Unknown split"), ("remove_tag", {"tag": "never-made"}, 404, "No tag"),
     ("add_tag", {"tag": " "}, 422, "1 to 100 characters"), ("move_folder", {"to_folder": "a/../.."}, 422, "may not contain")],
)
@pytest.mark.parametrize("limit", [1000, 10], ids=["in the request", "as a job"])
def test_all_matching_refuses_bad_input_before_changing_anything_or_starting_a_job(client, filtered, monkeypatch, action, form, status, message, limit):
    from models import Job

    monkeypatch.setitem(client.application.config, "LOUPE_BULK_SYNC_LIMIT", limit)
    dataset, ids, _, _ = filtered
    response = bulk_matching(client, dataset, "?split=train", action, **form)
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count()).select_from(Job)) == 0
    assert all(tag_names(i) == [] and folder_of(i) is None for i in ids)
    assert splits_of(ids) == ["train", "unassigned"] * 125


def test_all_matching_with_nothing_matching_changes_nothing(client, filtered):
    dataset, ids, _, _ = filtered
    response = bulk_matching(client, dataset, "?search=no-such-file", "delete")
    assert response.status_code == 200 and "Deleted 0 images" in response.get_data(as_text=True)
    assert len(splits_of(ids)) == 250 and None not in splits_of(ids)


def job_of(response):
    import re

    from models import Job

    match = re.search(r'class="card job" id="job-([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:800]
    return db.session.get(Job, match.group(1))


def test_a_large_all_matching_change_runs_as_a_job_in_id_ordered_chunks(client, owner, run_jobs):
    from services.bulk import CHUNK

    dataset = make_dataset(owner, name="Large")
    ids = insert_images(dataset, 1150)
    skipped = ids[::23]  # outside the filter, spread among the matches
    db.session.execute(db.update(Image).where(Image.id.in_(skipped)).values(file_name="other.jpg"))
    db.session.commit()
    matching = [i for i in ids if i not in skipped]
    assert len(matching) > 1000 > CHUNK

    response = bulk_matching(client, dataset, "?search=img_", "set_split", split="validation")
    assert response.status_code == 200
    assert f"A job is going through the {len(matching):,} matching images" in response.get_data(as_text=True)
    job = job_of(response)
    assert (job.kind, job.status.value, job.total) == ("bulk_edit", "queued", len(matching))
    assert set(splits_of(ids)) == {"unassigned"}, "nothing changes before the job runs"
    # Uploaded after the request: not part of what the person saw, so the job leaves it alone.
    [late] = insert_images(dataset, 1, start=5000)[-1:]

    run_jobs()
    db.session.expire_all()
    job = db.session.get(type(job), job.id)
    assert job.status.value == "finished", job.message
    assert job.done == job.total == len(matching) and job.percent == 100
    assert job.result["changed"] == len(matching) and job.result["last_image_id"] == matching[-1]
    assert splits_of(matching) == ["validation"] * len(matching)
    assert set(splits_of(skipped + [late])) == {"unassigned"}


def test_a_large_all_matching_delete_job_keeps_the_counters_exact(client, owner, run_jobs, monkeypatch):
    from models import Dataset

    monkeypatch.setitem(client.application.config, "LOUPE_BULK_SYNC_LIMIT", 50)
    dataset = make_dataset(owner, name="Doomed")
    ids = insert_images(dataset, 120)
    from services import images as image_service

    image_service.add_tag_to_images(dataset, ids, "old")
    response = bulk_matching(client, dataset, "?search=img_000", "delete")  # img_00000 .. img_00099
    job = job_of(response)
    run_jobs()
    db.session.expire_all()
    assert db.session.get(type(job), job.id).status.value == "finished"
    assert splits_of(ids) == [None] * 100 + ["unassigned"] * 20
    assert db.session.get(Dataset, dataset.id).image_count == 20
    assert db.session.scalar(select(Tag.image_count).where(Tag.name == "old")) == 20


@pytest.mark.parametrize("limit", [1000, 3], ids=["in the request", "as a job"])
def test_all_matching_classification_toggles_one_way_for_the_whole_filter(client, filtered, run_jobs, monkeypatch, limit):
    from services.grid_labeling import classify_images
    from models import User

    monkeypatch.setitem(client.application.config, "LOUPE_BULK_SYNC_LIMIT", limit)
    dataset, ids, evens, label_id = filtered
    owner = db.session.get(User, dataset.owner_id)
    hit = [i for i in evens if 110 <= ids.index(i) < 120]  # img_00110 .. img_00119 in train: five images
    classify_images(dataset, owner, hit[:2], label_id)  # two have the class already: toggling adds it to the rest
    response = classify_matching(client, dataset, "?split=train&search=img_0011", label_id)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    if limit == 3:
        assert job_of(response).total == 5
        run_jobs()
    db.session.expire_all()
    assert [class_of(i) for i in hit] == [["cat"]] * 5
    assert [class_of(i) for i in ids if i not in hit] == [[]] * 245
    # Every match has it now: the same key takes it off them all.
    response = classify_matching(client, dataset, "?split=train&search=img_0011", label_id)
    if limit == 3:
        run_jobs()
    db.session.expire_all()
    assert [class_of(i) for i in hit] == [[]] * 5


def test_the_grid_offers_all_matching_and_redraws_only_visible_tiles(client, filtered):
    dataset, ids, evens, _ = filtered
    body = client.get(f"/datasets/{dataset.id}/images/?split=train", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Select all 125 matching the filter" in body and 'name="all_matching"' in body
    redrawn = client.post(f"/datasets/{dataset.id}/images/tiles?split=train", data={"image_ids": [str(i) for i in ids[:4]] + ["999999"]}, headers={"HX-Request": "true"})
    assert tile_ids(redrawn.get_data(as_text=True)) == ids[:4]
    assert 'data-total="125"' in redrawn.get_data(as_text=True)
    too_many = client.post(f"/datasets/{dataset.id}/images/tiles", data={"image_ids": [str(i) for i in range(1, 1002)]})
    assert too_many.status_code == 422
