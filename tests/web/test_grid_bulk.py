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
