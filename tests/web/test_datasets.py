"""Dataset pages: create, list (search, filters, sort, paging; page vs HTMX partial), settings,
members, and delete as a job that removes only the files nobody else uses."""

import re

import pytest

from core.extensions import db
from core.storage import get_storage
from models import Dataset, DatasetMember, DatasetType, Image, Job, JobStatus
from tests.factories import assign, image_bytes, make_dataset, make_user
from tests.support import (
    insert_images,
    job_id_from,
    location_path,
    member,
    sign_in,
    upload,
)

HX = {"HX-Request": "true"}


def names_in(html: str) -> list[str]:
    return re.findall(r'<strong class="name">([^<]*)</strong>', html)


# ---- create --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [t.value for t in DatasetType])
def test_user_creates_a_dataset_of_each_type_and_becomes_its_owner(client, owner, kind):
    response = client.post("/datasets/", data={"name": f"My {kind}", "type": kind, "description": "about"})
    assert response.status_code == 303
    dataset = db.session.scalar(db.select(Dataset).where(Dataset.name == f"My {kind}"))
    assert dataset.type == DatasetType(kind) and dataset.owner_id == owner.id and dataset.description == "about"
    assert location_path(response) == f"/datasets/{dataset.id}/images/"
    role = db.session.scalar(db.select(DatasetMember.role).where(DatasetMember.dataset_id == dataset.id))
    assert role.value == "owner"


def test_unknown_dataset_type_is_refused_with_a_message_and_no_row(client, owner):
    response = client.post("/datasets/", data={"name": "Odd", "type": "keypoints"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Unknown dataset type" in body and "classification" in body
    assert 'value="Odd"' in body, "the form keeps what was typed"
    assert db.session.scalar(db.select(db.func.count(Dataset.id))) == 0


def test_dataset_without_a_name_is_refused(client, owner):
    response = client.post("/datasets/", data={"name": "   ", "type": "detection"})
    assert response.status_code == 422
    assert "needs a name" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Dataset.id))) == 0


def test_new_dataset_page_offers_the_five_types(client, owner):
    body = client.get("/datasets/new").get_data(as_text=True)
    for kind in DatasetType:
        assert f'value="{kind.value}"' in body


# ---- list ----------------------------------------------------------------------------------


def test_dataset_list_is_a_full_page_normally_and_a_partial_for_htmx(client, owner):
    make_dataset(owner, name="Cats")
    page = client.get("/datasets/")
    partial = client.get("/datasets/", headers=HX)
    assert page.status_code == partial.status_code == 200
    assert "<html" in page.get_data(as_text=True)
    assert "<html" not in partial.get_data(as_text=True) and 'id="dataset-total"' in partial.get_data(as_text=True)
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in partial.headers["Vary"]


def test_dataset_list_live_search_matches_part_of_the_name(client, owner):
    for name in ("Cats", "Dogs", "Catalog", "100% cotton"):
        make_dataset(owner, name=name)
    body = client.get("/datasets/?search=cat", headers=HX).get_data(as_text=True)
    assert sorted(names_in(body)) == ["Catalog", "Cats"]
    assert names_in(client.get("/datasets/?search=%25", headers=HX).get_data(as_text=True)) == ["100% cotton"], "% is literal"
    assert "No datasets match" in client.get("/datasets/?search=zebra", headers=HX).get_data(as_text=True)


def test_dataset_list_filters_by_type(client, owner):
    make_dataset(owner, name="Boxes", type="detection")
    make_dataset(owner, name="Classes", type="classification")
    body = client.get("/datasets/?type=classification", headers=HX).get_data(as_text=True)
    assert names_in(body) == ["Classes"]


def test_dataset_list_with_an_unknown_type_filter_says_so(client, owner):
    response = client.get("/datasets/?type=keypoints", headers=HX)
    assert response.status_code == 422
    assert "Unknown dataset type" in response.get_data(as_text=True)


def test_archived_datasets_show_only_with_the_archived_toggle(client, owner):
    make_dataset(owner, name="Live")
    old = make_dataset(owner, name="Old")
    old.archived = True
    db.session.commit()
    assert names_in(client.get("/datasets/", headers=HX).get_data(as_text=True)) == ["Live"]
    assert names_in(client.get("/datasets/?archived=1", headers=HX).get_data(as_text=True)) == ["Old"]


def test_dataset_list_sorts_by_name_created_and_image_count(client, owner):
    for name, count in (("Beta", 5), ("Alpha", 1), ("Gamma", 9)):
        dataset = make_dataset(owner, name=name)
        dataset.image_count = count
    db.session.commit()
    get = lambda q: names_in(client.get(f"/datasets/?{q}", headers=HX).get_data(as_text=True))  # noqa: E731
    assert get("sort=name&order=asc") == ["Alpha", "Beta", "Gamma"]
    assert get("sort=name&order=desc") == ["Gamma", "Beta", "Alpha"]
    assert get("sort=image_count&order=desc") == ["Gamma", "Beta", "Alpha"]
    assert get("sort=created_at&order=desc") == ["Gamma", "Alpha", "Beta"]
    assert client.get("/datasets/?sort=color", headers=HX).status_code == 422


def test_dataset_list_pages_by_24_with_links_that_keep_the_filters(client, owner):
    for i in range(30):
        make_dataset(owner, name=f"Set {i:02d}")
    first = client.get("/datasets/?sort=name&order=asc&search=Set", headers=HX).get_data(as_text=True)
    assert len(names_in(first)) == 24 and "Page 1 of 2" in first
    next_link = re.search(r'hx-get="([^"]*page=2[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "search=Set" in next_link and "sort=name" in next_link
    second = client.get(next_link, headers=HX).get_data(as_text=True)
    assert names_in(second) == [f"Set {i:02d}" for i in range(24, 30)]
    assert client.get("/datasets/?page=x").status_code == 422


def test_dataset_list_shows_only_datasets_the_user_may_see(client, owner):
    other = make_user()
    make_dataset(other, name="Secret")
    make_dataset(other, name="Open", public=True)
    shared = make_dataset(other, name="Shared")
    db.session.add(DatasetMember(dataset_id=shared.id, user_id=owner.id, role="labeler"))
    db.session.commit()
    assert sorted(names_in(client.get("/datasets/", headers=HX).get_data(as_text=True))) == ["Open", "Shared"]


# ---- settings ------------------------------------------------------------------------------


def test_owner_renames_a_dataset_through_the_settings_partial(client, owner):
    dataset = make_dataset(owner, name="Old name")
    response = client.post(f"/datasets/{dataset.id}/settings", data={"name": "New name", "description": "d"}, headers=HX)
    assert response.status_code == 200
    assert "Saved." in response.get_data(as_text=True) and "<html" not in response.get_data(as_text=True)
    assert db.session.get(Dataset, dataset.id).name == "New name"


def test_renaming_to_an_empty_name_is_refused(client, owner):
    dataset = make_dataset(owner, name="Keep")
    response = client.post(f"/datasets/{dataset.id}/settings", data={"name": ""}, headers=HX)
    assert response.status_code == 422
    assert "needs a name" in response.get_data(as_text=True)
    assert db.session.get(Dataset, dataset.id).name == "Keep"


def test_owner_archives_and_unarchives_a_dataset(client, owner):
    dataset = make_dataset(owner)
    response = client.post(f"/datasets/{dataset.id}/archive", data={"archived": "1"})
    assert response.status_code == 303 and location_path(response) == f"/datasets/{dataset.id}/settings"
    assert db.session.get(Dataset, dataset.id).archived
    response = client.post(f"/datasets/{dataset.id}/archive", data={"archived": "0"}, headers=HX)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == f"/datasets/{dataset.id}/settings"
    assert not db.session.get(Dataset, dataset.id).archived


def test_public_toggle_opens_the_dataset_to_every_signed_in_user_read_only(client, new_client, owner):
    dataset = make_dataset(owner, name="Toggle")
    visitor = new_client()
    sign_in(visitor, make_user())
    assert visitor.get(f"/datasets/{dataset.id}").status_code == 404
    client.post(f"/datasets/{dataset.id}/settings", data={"name": "Toggle", "public": "1"})
    assert db.session.get(Dataset, dataset.id).public
    assert visitor.get(f"/datasets/{dataset.id}").status_code == 200
    assert visitor.get(f"/datasets/{dataset.id}/settings").status_code == 403
    client.post(f"/datasets/{dataset.id}/settings", data={"name": "Toggle"})
    assert visitor.get(f"/datasets/{dataset.id}").status_code == 404


def test_escaped_dataset_name_never_runs_as_script(client, owner):
    dataset = make_dataset(owner, name="<script>alert(1)</script>")
    for url in ("/datasets/", f"/datasets/{dataset.id}", f"/datasets/{dataset.id}/images/", f"/datasets/{dataset.id}/settings"):
        body = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in body, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, url


# ---- members -------------------------------------------------------------------------------


def test_owner_adds_and_removes_a_member(client, owner):
    dataset = make_dataset(owner)
    colleague = make_user("colleague@example.com")
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": "Colleague@Example.com", "role": "reviewer"}, headers=HX)
    assert response.status_code == 200
    assert 'data-member="colleague@example.com"' in response.get_data(as_text=True)
    row = db.session.scalar(db.select(DatasetMember).where(DatasetMember.user_id == colleague.id))
    assert row.role.value == "reviewer"

    row_id = row.id
    response = client.post(f"/datasets/{dataset.id}/members/{row_id}/delete", headers=HX)
    assert response.status_code == 200
    assert "colleague@example.com" not in response.get_data(as_text=True)
    assert db.session.scalar(db.select(DatasetMember.id).where(DatasetMember.id == row_id)) is None


def test_adding_a_member_again_changes_their_role(client, owner):
    dataset = make_dataset(owner)
    colleague = make_user()
    for role in ("labeler", "manager"):
        client.post(f"/datasets/{dataset.id}/members", data={"email": colleague.email, "role": role}, headers=HX)
    roles = db.session.scalars(db.select(DatasetMember.role).where(DatasetMember.user_id == colleague.id)).all()
    assert [r.value for r in roles] == ["manager"]


def test_adding_an_unknown_email_as_member_shows_an_error(client, owner):
    dataset = make_dataset(owner)
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": "ghost@example.com", "role": "labeler"}, headers=HX)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'role="alert"' in body and "No user with the email" in body and "ghost@example.com" in body
    assert db.session.scalar(db.select(db.func.count(DatasetMember.id))) == 1  # only the owner


def test_adding_a_member_with_an_unknown_role_shows_an_error(client, owner):
    dataset = make_dataset(owner)
    make_user("someone@example.com")
    response = client.post(f"/datasets/{dataset.id}/members", data={"email": "someone@example.com", "role": "boss"}, headers=HX)
    assert response.status_code == 422
    assert "Unknown role" in response.get_data(as_text=True)


def test_the_owner_cannot_be_removed_from_their_dataset(client, owner):
    dataset = make_dataset(owner)
    owner_row = db.session.scalar(db.select(DatasetMember).where(DatasetMember.user_id == owner.id))
    response = client.post(f"/datasets/{dataset.id}/members/{owner_row.id}/delete", headers=HX)
    assert response.status_code == 409
    assert db.session.get(DatasetMember, owner_row.id) is not None


def test_removing_a_member_of_another_dataset_is_not_found(client, owner):
    mine = make_dataset(owner, name="Mine")
    theirs = make_dataset(make_user(), name="Theirs")
    their_member = member(theirs, "labeler")
    row = db.session.scalar(db.select(DatasetMember).where(DatasetMember.user_id == their_member.id))
    response = client.post(f"/datasets/{mine.id}/members/{row.id}/delete", headers=HX)
    assert response.status_code == 404
    assert db.session.get(DatasetMember, row.id) is not None


# ---- delete --------------------------------------------------------------------------------


def test_delete_with_a_wrong_confirmation_name_is_refused_and_deletes_nothing(client, owner):
    dataset = make_dataset(owner, name="Precious")
    response = client.post(f"/datasets/{dataset.id}/delete", data={"confirm_name": "precious"})
    assert response.status_code == 422
    assert "name exactly to confirm" in response.get_data(as_text=True)
    assert db.session.get(Dataset, dataset.id) is not None
    assert db.session.scalar(db.select(db.func.count(Job.id))) == 0


def test_delete_runs_as_a_job_and_removes_only_files_no_other_dataset_uses(client, owner, run_jobs):
    doomed = make_dataset(owner, name="Doomed")
    keeper = make_dataset(owner, name="Keeper")
    shared, unique = image_bytes(seed=10), image_bytes(seed=11)
    assert upload(client, doomed, [(shared, "shared.jpg"), (unique, "unique.jpg")]).status_code == 303
    assert upload(client, keeper, [(shared, "same-bytes.jpg")]).status_code == 303
    run_jobs()
    keys = dict(db.session.execute(db.select(Image.file_name, Image.storage_key)).all())
    storage = get_storage()
    assert storage.exists(keys["shared.jpg"]) and storage.exists(keys["unique.jpg"])
    assert keys["shared.jpg"] == keys["same-bytes.jpg"]

    response = client.post(f"/datasets/{doomed.id}/delete", data={"confirm_name": "Doomed"})
    assert response.status_code == 303
    job = db.session.get(Job, job_id_from(response))
    assert job.kind == "delete_dataset" and job.status == JobStatus.queued
    assert client.get(f"/datasets/{doomed.id}").status_code == 200, "still there until the job runs"
    run_jobs()

    assert db.session.get(Job, job.id).status == JobStatus.finished
    assert db.session.get(Dataset, doomed.id) is None
    assert client.get(f"/datasets/{doomed.id}").status_code == 404
    assert not storage.exists(keys["unique.jpg"]) and not storage.exists(f"thumbs/{keys['unique.jpg']}.jpg")
    assert storage.exists(keys["shared.jpg"]) and storage.exists(f"thumbs/{keys['shared.jpg']}.jpg")
    assert db.session.scalars(db.select(Image.file_name)).all() == ["same-bytes.jpg"]
    assert client.get(f"/datasets/{keeper.id}/images/{db.session.scalar(db.select(Image.id))}/file").data == shared


def test_deleting_twice_reuses_the_running_delete_job(client, owner):
    dataset = make_dataset(owner, name="Twice")
    first = client.post(f"/datasets/{dataset.id}/delete", data={"confirm_name": "Twice"})
    second = client.post(f"/datasets/{dataset.id}/delete", data={"confirm_name": "Twice"})
    assert job_id_from(first) == job_id_from(second)


def test_dataset_overview_shows_counts_jobs_and_members(client, owner, run_jobs):
    dataset = make_dataset(owner, name="Overview")
    upload(client, dataset, [(image_bytes(seed=20), "a.jpg"), (image_bytes(seed=21), "b.jpg")])
    run_jobs()
    body = client.get(f"/datasets/{dataset.id}").get_data(as_text=True)
    assert "<strong>2</strong> images" in body
    assert 'id="dataset-status">ready<' in body
    assert 'data-member="owner@example.com"' in body
    assert "data-job-id=" in body


def test_refresh_counters_job_recomputes_the_counts(client, owner, run_jobs):
    dataset = make_dataset(owner, name="Counts")
    upload(client, dataset, [(image_bytes(seed=30), "a.jpg")])
    run_jobs()
    dataset.image_count, dataset.total_bytes = 99, 0
    db.session.commit()
    response = client.post(f"/datasets/{dataset.id}/refresh-counters")
    assert response.status_code == 303
    run_jobs()
    refreshed = db.session.get(Dataset, dataset.id)
    assert refreshed.image_count == 1 and refreshed.total_bytes > 0


def test_a_labelers_dataset_card_previews_only_images_assigned_to_them(client):
    owner = make_user()
    dataset = make_dataset(owner, name="Assigned only")
    ids = insert_images(dataset, 5)
    labeler = member(dataset, "labeler")
    assign(dataset, ids[3], labeler)
    sign_in(client, labeler)

    page = client.get("/datasets/").get_data(as_text=True)

    previews = re.findall(rf"/datasets/{dataset.id}/images/(\d+)/thumbnail", page)
    assert previews == [str(ids[3])]
