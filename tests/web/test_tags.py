"""The grid page's tag manager: list with counts, rename (merging onto an existing tag), delete."""

import re

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Image, ImageTag, Tag
from services import images as image_service
from tests.factories import make_dataset
from tests.support import actor, insert_images, location_path, sign_in

HTMX = {"HX-Request": "true"}


def tag_names(image_id) -> list[str]:
    return sorted(db.session.scalars(select(Tag.name).join(ImageTag, ImageTag.tag_id == Tag.id).where(ImageTag.image_id == image_id)))


def tag_rows(html: str) -> list[tuple[str, str]]:
    """(name, count text) of each row of the tag manager."""
    return re.findall(r'<li class="tag-row" data-tag="([^"]*)">.*?<span class="muted tag-count">([^<]*)</span>', html, re.S)


def rename(client, dataset, name, new_name, **filters):
    return client.post(
        f"/datasets/{dataset.id}/images/tags/rename", data={"name": name, "new_name": new_name, **filters}, headers=HTMX
    )


def delete(client, dataset, name, **filters):
    return client.post(f"/datasets/{dataset.id}/images/tags/delete", data={"name": name, **filters}, headers=HTMX)


@pytest.fixture
def tagged(client, owner):
    """Four images: night on the first two, blurry on the second and third."""
    dataset = make_dataset(owner, name="Pets")
    ids = insert_images(dataset, 4)
    image_service.add_tag_to_images(dataset, ids[:2], "night")
    image_service.add_tag_to_images(dataset, ids[1:3], "blurry")
    return dataset, ids


def test_grid_page_lists_each_tag_with_its_count_and_tiles_show_their_tags(client, tagged):
    dataset, ids = tagged
    page = client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    assert 'id="tag-manager"' in page
    assert tag_rows(page) == [("blurry", "2 images"), ("night", "2 images")]
    assert 'aria-label="New name for the tag night"' in page
    tiles = client.get(f"/datasets/{dataset.id}/images/", headers=HTMX).get_data(as_text=True)
    chips = [re.findall(r'<span class="tag-chip">([^<]*)</span>', tile) for tile in tiles.split('<figure class="tile"')[1:]]
    assert chips == [["night"], ["blurry", "night"], ["blurry"], []]


@pytest.mark.parametrize("role", ["reviewer", "labeler"])
def test_members_who_cannot_manage_images_get_no_tag_manager(client, tagged, role):
    dataset, _ = tagged
    sign_in(client, actor(dataset, role))
    page = client.get(f"/datasets/{dataset.id}/images/").get_data(as_text=True)
    assert 'id="tag-manager"' not in page and "/tags/rename" not in page


@pytest.mark.parametrize(
    "role,expected", [("admin", 200), ("owner", 200), ("manager", 200), ("reviewer", 403), ("labeler", 403), ("outsider", 404)]
)
def test_only_managers_and_up_rename_and_delete_tags(client, tagged, role, expected):
    dataset, ids = tagged
    sign_in(client, actor(dataset, role))
    assert rename(client, dataset, "night", "dark").status_code == expected
    assert delete(client, dataset, "blurry").status_code == expected
    if expected == 200:
        assert [tag_names(i) for i in ids] == [["dark"], ["dark"], [], []]
    else:
        assert [tag_names(i) for i in ids] == [["night"], ["blurry", "night"], ["blurry"], []], "a denied change changed nothing"


def test_anonymous_htmx_tag_change_is_sent_to_sign_in(client, tagged):
    dataset, ids = tagged
    client.post("/logout")
    with client.session_transaction() as session:
        session.clear()
    for response in (rename(client, dataset, "night", "dark"), delete(client, dataset, "night")):
        assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/login")
    assert tag_names(ids[0]) == ["night"]


def test_rename_answers_the_list_and_the_tag_filter_then_asks_the_grid_to_reload(client, tagged):
    dataset, ids = tagged
    response = rename(client, dataset, "night", "  dark  ", tag="night", split="")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body and response.headers["HX-Trigger-After-Settle"] == "tagsChanged"
    assert "Renamed the tag &#39;night&#39; to &#39;dark&#39; (2 images)" in body
    assert tag_rows(body) == [("blurry", "2 images"), ("dark", "2 images")]
    # The grid was filtered by the renamed tag: its filter follows the tag rather than going empty.
    assert '<span id="tag-filter" class="tag-filter" hx-swap-oob="true">' in body
    assert '<option value="dark" selected>dark (2)</option>' in body and 'value="night"' not in body
    assert [tag_names(i) for i in ids] == [["dark"], ["blurry", "dark"], ["blurry"], []]
    grid = client.get(f"/datasets/{dataset.id}/images/?tag=dark", headers=HTMX).get_data(as_text=True)
    assert '<span class="tag-chip">dark</span>' in grid and '<span class="tag-chip">night</span>' not in grid


def test_rename_keeps_a_filter_on_another_tag(client, tagged):
    dataset, _ = tagged
    body = rename(client, dataset, "night", "dark", tag="blurry").get_data(as_text=True)
    assert '<option value="blurry" selected>blurry (2)</option>' in body
    assert '<option value="dark" >dark (2)</option>' in body


def test_renaming_onto_an_existing_tag_merges_the_two(client, tagged):
    dataset, ids = tagged
    response = rename(client, dataset, "night", "blurry")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Merged the tag &#39;night&#39; into &#39;blurry&#39;, now on 3 images" in body
    assert tag_rows(body) == [("blurry", "3 images")]
    assert [tag_names(i) for i in ids] == [["blurry"], ["blurry"], ["blurry"], []]


@pytest.mark.parametrize(
    "name,new_name,status,message",
    [
        ("night", "", 422, "must have 1 to 100 characters"),
        ("night", "   ", 422, "must have 1 to 100 characters"),
        ("night", "x" * 101, 422, "must have 1 to 100 characters"),
        ("ghost", "dark", 404, "No tag &#39;ghost&#39;"),
    ],
    ids=["empty", "blank", "too-long", "unknown-tag"],
)
def test_a_bad_rename_says_why_and_changes_nothing(client, tagged, name, new_name, status, message):
    dataset, ids = tagged
    response = rename(client, dataset, name, new_name)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert 'role="alert"' in body and message in body and "<html" not in body
    if status == 422:
        # htmx swaps a 422 into the tag list, so the answer is the list, keeping the name as typed.
        assert body.lstrip().startswith('<div id="tag-list"') and tag_rows(body) == [("blurry", "2 images"), ("night", "2 images")]
        assert f'name="new_name" value="{new_name}"' in body
    assert [tag_names(i) for i in ids] == [["night"], ["blurry", "night"], ["blurry"], []]


def test_a_bad_grid_filter_fails_the_rename_before_anything_changes(client, tagged):
    dataset, ids = tagged
    response = rename(client, dataset, "night", "dark", split="nonsense")
    assert response.status_code == 422
    assert tag_names(ids[0]) == ["night"]


def test_delete_removes_the_tag_from_every_image_and_clears_a_filter_on_it(client, tagged):
    dataset, ids = tagged
    response = delete(client, dataset, "night", tag="night")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Deleted the tag &#39;night&#39; from 2 images" in body and response.headers["HX-Trigger-After-Settle"] == "tagsChanged"
    assert tag_rows(body) == [("blurry", "2 images")]
    assert 'value="night"' not in body and "selected" not in body
    assert [tag_names(i) for i in ids] == [[], ["blurry"], ["blurry"], []]
    assert db.session.scalar(select(Tag.id).where(Tag.dataset_id == dataset.id, Tag.name == "night")) is None
    assert db.session.scalar(select(db.func.count(Image.id)).where(Image.dataset_id == dataset.id)) == 4, "the images stay"


def test_deleting_the_last_tag_empties_the_filter_and_the_list(client, tagged):
    dataset, _ = tagged
    delete(client, dataset, "night")
    body = delete(client, dataset, "blurry").get_data(as_text=True)
    assert "No tags yet" in body and "<select" not in body


def test_deleting_an_unknown_tag_is_a_clear_404(client, tagged):
    dataset, ids = tagged
    response = delete(client, dataset, "ghost")
    assert response.status_code == 404 and "No tag &#39;ghost&#39;" in response.get_data(as_text=True)
    assert tag_names(ids[1]) == ["blurry", "night"]


def test_without_javascript_rename_and_delete_return_to_the_grid(client, tagged):
    dataset, ids = tagged
    response = client.post(
        f"/datasets/{dataset.id}/images/tags/rename", data={"name": "night", "new_name": "dark", "tag": "night", "split": "train"}
    )
    assert response.status_code == 303 and location_path(response) == f"/datasets/{dataset.id}/images/"
    assert "tag=dark" in response.headers["Location"] and "split=train" in response.headers["Location"]
    response = client.post(f"/datasets/{dataset.id}/images/tags/delete", data={"name": "dark"})
    assert response.status_code == 303 and tag_names(ids[0]) == []


def test_bulk_tagging_refreshes_the_tag_manager_and_filter_out_of_band(client, tagged):
    dataset, ids = tagged
    response = client.post(
        f"/datasets/{dataset.id}/images/bulk", data={"action": "add_tag", "tag": "sunny", "image_ids": [str(ids[3])]}, headers=HTMX
    )
    body = response.get_data(as_text=True)
    assert '<div id="tag-list" class="tag-list" hx-swap-oob="true">' in body
    assert tag_rows(body) == [("blurry", "2 images"), ("night", "2 images"), ("sunny", "1 image")]
    assert '<span id="tag-filter" class="tag-filter" hx-swap-oob="true">' in body and ">sunny (1)</option>" in body
    split = client.post(
        f"/datasets/{dataset.id}/images/bulk", data={"action": "set_split", "split": "train", "image_ids": [str(ids[3])]}, headers=HTMX
    )
    assert "hx-swap-oob" not in split.get_data(as_text=True), "a split change leaves the tags alone"


def assert_tag_counters_exact(dataset) -> None:
    """Each tag's kept image count equals a count of its links."""
    db.session.expire_all()
    for tag in db.session.scalars(select(Tag).where(Tag.dataset_id == dataset.id)):
        links = db.session.scalar(select(db.func.count()).select_from(ImageTag).where(ImageTag.tag_id == tag.id))
        assert tag.image_count == links, tag.name


def test_tag_counters_stay_exact_through_every_way_tags_change(client, tagged, run_jobs):
    dataset, ids = tagged
    more = insert_images(dataset, 3, start=100)[4:]
    image_service.add_tag_to_images(dataset, ids + more, "night")  # two of them have it already
    image_service.remove_tag_from_images(dataset, ids[:1], "night")
    image = db.session.get(Image, ids[3])
    image_service.update_image(image, tags=["blurry", " fog", "fog", "night"])  # the API's PATCH
    image_service.update_image(image, tags=["fog"])
    assert_tag_counters_exact(dataset)
    assert {t["name"]: t["image_count"] for t in image_service.list_tags(dataset, dataset.owner)} == {"blurry": 2, "fog": 1, "night": 5}

    image_service.remove_tag_from_images(dataset, ids[2:3], "night")
    merged = image_service.rename_tag(dataset, "blurry", "night")  # ids[1] has both, ids[2] only blurry
    assert merged == {"name": "night", "image_count": 5, "merged": True}
    image_service.delete_images(dataset, [ids[1], more[0]])
    assert_tag_counters_exact(dataset)
    assert image_service.delete_tag(dataset, "fog") == 1
    assert {t["name"]: t["image_count"] for t in image_service.list_tags(dataset, dataset.owner)} == {"night": 3}

    # A counter gone wrong (a bug, a manual edit) is put right by the refresh-counters job.
    db.session.execute(db.update(Tag).where(Tag.dataset_id == dataset.id).values(image_count=99))
    db.session.commit()
    from models import User
    from services.labels import request_refresh_counters

    request_refresh_counters(dataset, db.session.get(User, dataset.owner_id))
    run_jobs()
    assert_tag_counters_exact(dataset)
