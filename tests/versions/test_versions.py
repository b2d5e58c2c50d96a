"""Releasing versions through the API and the real RQ worker: the snapshot, its immutability,
comparison, numbering under concurrent releases, crash recovery, files and deletion."""

import threading

import pytest
from sqlalchemy import event, func, select

from core.extensions import db
from core.storage import get_storage
from models import Dataset, Image, Job, JobStatus, Version, VersionImage
from services import versions as service
from services.annotations import replace_annotations
from services.export_source import ExportFilter
from services.images import delete_images, update_image
from services.labels import create_label
from tests.factories import imported_image, make_dataset, token_for
from tests.versions.conftest import box, png


def release(client, shop, note: str = "") -> dict:
    response = client.post(f"/api/v1/datasets/{shop.dataset.id}/versions", json={"note": note}, headers=shop.headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def released(client, run_jobs, shop, note: str = "") -> dict:
    job = release(client, shop, note)
    run_jobs()
    assert db.session.get(Job, job["id"]).status == JobStatus.finished, db.session.get(Job, job["id"]).message
    response = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/{job['result']['version_id']}", headers=shop.headers)
    assert response.status_code == 200
    return response.get_json()


def snapshot(version_id: int) -> list[dict]:
    """Every stored column of a version's images, to compare before and after live changes."""
    db.session.expire_all()
    rows = db.session.scalars(select(VersionImage).where(VersionImage.version_id == version_id).order_by(VersionImage.image_id))
    return [{c.name: getattr(row, c.name) for c in VersionImage.__table__.columns} for row in rows]


def records(shop, version_id: int) -> list:
    """The version's export records (reading them expunges the session: the shop's rows are loaded again)."""
    exported = list(service.version_source(db.session.get(Version, version_id)).images())
    shop.images = [db.session.get(Image, image.id) for image in db.session.scalars(
        select(Image).where(Image.dataset_id == shop.dataset.id).order_by(Image.id))]
    shop.cat, shop.dog, shop.owner = (db.session.merge(o) for o in (shop.cat, shop.dog, shop.owner))
    shop.dataset = db.session.merge(shop.dataset)
    return exported


def test_a_release_snapshots_images_annotations_labels_and_statistics(client, run_jobs, shop):
    a, b, c, d = shop.images
    replace_annotations(a, shop.owner, [box(shop.cat), box(shop.cat, x=5)])
    replace_annotations(b, shop.owner, [box(shop.dog)])
    update_image(c, tags=["blurry", "a-tag"])
    update_image(d, split="train")
    job = release(client, shop, "first cut")
    assert job["result"]["version"] == "V001" and job["kind"] == "release_version"
    run_jobs()
    version = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/{job['result']['version_id']}", headers=shop.headers).get_json()
    assert (version["name"], version["note"], version["complete"], version["parent_id"]) == ("V001", "first cut", True, None)
    assert (version["image_count"], version["annotation_count"]) == (4, 3)
    labels = {label["name"]: label for label in version["labels"]}
    assert (labels["cat"]["images"], labels["cat"]["annotations"]) == (1, 2)
    assert (labels["dog"]["images"], labels["dog"]["annotations"]) == (1, 1)
    assert labels["cat"]["splits"] == {"unassigned": {"images": 1, "annotations": 2}}
    assert version["stats"]["splits"] == {"unassigned": {"images": 3, "annotations": 3}, "train": {"images": 1, "annotations": 0}}
    rows = {row["image_id"]: row for row in snapshot(version["id"])}
    assert rows[c.id]["tags"] == ["a-tag", "blurry"] and rows[d.id]["split"] == "train"
    assert [ann["geometry"]["x"] for ann in rows[a.id]["annotations"]] == [1, 5]
    assert rows[a.id]["annotations"][0] == {
        "label_id": shop.cat.id, "shape": "box", "geometry": {"x": 1, "y": 1, "width": 4, "height": 3},
        "attributes": {}, "text": None, "source": "human", "score": None,
    }
    assert rows[a.id]["storage_key"] == a.storage_key and rows[a.id]["width"] == 16 and rows[a.id]["file_name"] == "img-0.png"
    finished = client.get(f"/api/v1/jobs/{job['id']}", headers=shop.headers).get_json()
    assert finished["status"] == "finished" and finished["result"]["version"] == "V001" and "Released V001" in finished["message"]
    listing = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions", headers=shop.headers).get_json()
    assert [v["name"] for v in listing["items"]] == ["V001"] and listing["total"] == 1


def test_a_version_stays_the_same_after_the_live_dataset_changes(client, run_jobs, shop):
    a, b, c, d = shop.images
    replace_annotations(a, shop.owner, [box(shop.cat)])
    version = released(client, run_jobs, shop)
    rows, exported = snapshot(version["id"]), records(shop, version["id"])
    stored = db.session.get(Version, version["id"])
    labels, stats = list(stored.labels), dict(stored.stats)
    a, b, c, d = shop.images
    # Edit annotations, tags and splits, rename a label, add one, delete an image.
    replace_annotations(a, shop.owner, [box(shop.dog, x=2), box(shop.cat)])
    replace_annotations(b, shop.owner, [box(shop.cat)])
    update_image(c, split="test", tags=["new"])
    client.patch(f"/api/v1/datasets/{shop.dataset.id}/labels/{shop.cat.id}", json={"name": "kitten"}, headers=shop.headers)
    create_label(shop.dataset, name="bird", default_shape="box")
    deleted_key = d.storage_key
    assert client.delete(f"/api/v1/datasets/{shop.dataset.id}/images/{d.id}", headers=shop.headers).status_code == 204
    assert snapshot(version["id"]) == rows
    assert records(shop, version["id"]) == exported
    stored = db.session.get(Version, version["id"])
    assert stored.labels == labels and stored.stats == stats
    assert [label["name"] for label in stored.labels] == ["cat", "dog"]
    # The deleted image's file stays while the version holds it, and reads back as it was.
    source = service.version_source(stored)
    assert get_storage().exists(deleted_key)
    with source.open(deleted_key) as fh:
        assert fh.read()[:8] == b"\x89PNG\r\n\x1a\n"
    again = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/{version['id']}", headers=shop.headers).get_json()
    assert again == version


def test_compare_reports_exactly_the_changes_made(client, run_jobs, shop):
    a, b, c, d = shop.images
    replace_annotations(a, shop.owner, [box(shop.cat)])
    first = released(client, run_jobs, shop)
    removed_id = d.id
    replace_annotations(a, shop.owner, [box(shop.cat), box(shop.dog)])
    update_image(b, split="validation")
    update_image(c, tags=["blurry"])
    replace_annotations(a, shop.owner, [box(shop.cat), box(shop.dog)])  # the same again: not a change by itself
    delete_images(shop.dataset, [d.id])
    new_image = imported_image(shop.dataset, "img-10.png", png(10), owner=shop.owner).id
    second = released(client, run_jobs, shop)
    assert second["name"] == "V002" and second["parent_id"] == first["id"]
    url = f"/api/v1/datasets/{shop.dataset.id}/versions/compare?a={first['id']}&b={second['id']}"
    diff = client.get(url, headers=shop.headers).get_json()
    assert (diff["a"]["name"], diff["b"]["name"]) == ("V001", "V002")
    assert diff["added"] == {"total": 1, "items": [{"image_id": new_image, "file_name": "img-10.png", "split": "unassigned"}]}
    assert diff["removed"] == {"total": 1, "items": [{"image_id": removed_id, "file_name": "img-3.png", "split": "unassigned"}]}
    assert diff["changed"]["total"] == 3
    assert diff["changed"]["items"] == [
        {"image_id": a.id, "file_name": "img-0.png", "changes": ["annotations"]},
        {"image_id": b.id, "file_name": "img-1.png", "changes": ["split"], "split": {"a": "unassigned", "b": "validation"}},
        {"image_id": c.id, "file_name": "img-2.png", "changes": ["tags"]},
    ]
    counts = {label["name"]: (label["a"], label["b"]) for label in diff["labels"]}
    assert counts == {
        "cat": ({"images": 1, "annotations": 1}, {"images": 1, "annotations": 1}),
        "dog": ({"images": 0, "annotations": 0}, {"images": 1, "annotations": 1}),
    }
    bounded = client.get(url + "&limit=1", headers=shop.headers).get_json()
    assert bounded["changed"]["total"] == 3 and [i["image_id"] for i in bounded["changed"]["items"]] == [a.id]
    same = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/compare?a={second['id']}&b={second['id']}", headers=shop.headers).get_json()
    assert [same[k]["total"] for k in ("added", "removed", "changed")] == [0, 0, 0]


def test_two_releases_at_once_get_V001_and_V002(client, new_client, run_jobs, shop, app_ctx):
    clients, answers = [new_client(), new_client()], []
    start = threading.Barrier(2)
    url = f"/api/v1/datasets/{shop.dataset.id}/versions"

    def post(c):
        with app_ctx.app_context():
            start.wait()
            answers.append(c.post(url, json={}, headers=shop.headers))

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in answers) == [202, 202], [r.get_data(as_text=True)[:300] for r in answers]
    run_jobs()
    listing = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions", headers=shop.headers).get_json()
    assert [(v["name"], v["image_count"]) for v in listing["items"]] == [("V002", 4), ("V001", 4)]


def test_a_release_that_loses_the_race_for_a_number_takes_the_next(client, run_jobs, shop, app_ctx):
    """Another release commits V001 between this one reading the highest number and inserting."""
    other = db.engine.connect()

    def take_the_number(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO version ") and conn is not other and not taken:
            taken.append(1)
            other.execute(Version.__table__.insert().values(
                dataset_id=shop.dataset.id, number=1, note="", labels=[], stats={}, image_count=0, annotation_count=0,
                complete=False, created_at=func.now(),
            ))
            other.commit()

    taken: list = []
    event.listen(db.engine, "before_cursor_execute", take_the_number)
    try:
        job = release(client, shop)
    finally:
        event.remove(db.engine, "before_cursor_execute", take_the_number)
        other.close()
    assert taken and job["result"]["version"] == "V002"


def test_a_release_killed_mid_snapshot_resumes_where_it_stopped(client, run_jobs, shop, monkeypatch):
    monkeypatch.setattr(service, "CHUNK", 3)
    replace_annotations(shop.images[0], shop.owner, [box(shop.cat)])
    replace_annotations(shop.images[3], shop.owner, [box(shop.dog), box(shop.dog)])
    clean = released(client, run_jobs, shop)
    job = release(client, shop)
    # What a run killed after its first chunk leaves: that chunk committed, the job row failed.
    version = db.session.get(Version, job["result"]["version_id"])
    service.begin_snapshot(version)
    assert service.snapshot_chunk(version) == 3
    db.session.commit()
    row = db.session.get(Job, job["id"])
    row.status = JobStatus.failed
    db.session.commit()
    from rq.job import Job as RQJob

    from core.queues import get_redis

    RQJob.fetch(job["id"], connection=get_redis()).cancel()
    assert client.post(f"/api/v1/jobs/{job['id']}/retry", headers=shop.headers).status_code == 202
    run_jobs()
    resumed = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/{version.id}", headers=shop.headers).get_json()
    assert resumed["complete"] and (resumed["image_count"], resumed["annotation_count"]) == (4, 3)
    assert resumed["stats"] == clean["stats"] and resumed["labels"] == clean["labels"]
    digests = lambda vid: [(r["image_id"], r["digest"]) for r in snapshot(vid)]  # noqa: E731
    assert digests(version.id) == digests(clean["id"])


def test_a_deleted_image_keeps_its_file_for_the_version_and_dataset_deletion_releases_it(client, run_jobs, shop):
    # Another dataset's version holds the same bytes as the first image: deleting this dataset keeps that file.
    other = make_dataset(shop.owner, name="Other")
    first_key = shop.images[0].storage_key
    with get_storage().open(first_key) as fh:
        from tests.workers.helpers import upload_files

        upload_files(other, shop.owner, [("same.png", fh.read())])
    run_jobs()
    other_version = service.release_version(other, shop.owner)
    version = released(client, run_jobs, shop)
    run_jobs()
    keys = [image.storage_key for image in shop.images]
    delete_images(shop.dataset, [shop.images[1].id])
    assert get_storage().exists(keys[1])
    delete_images(other, list(db.session.scalars(select(Image.id).where(Image.dataset_id == other.id))))
    assert get_storage().exists(first_key)  # both versions hold it
    assert client.delete(f"/api/v1/datasets/{shop.dataset.id}", headers=shop.headers).status_code == 202
    run_jobs()
    assert db.session.get(Dataset, shop.dataset.id) is None and db.session.get(Version, version["id"]) is None
    assert not db.session.scalar(select(func.count()).select_from(VersionImage).where(VersionImage.version_id == version["id"]))
    assert [get_storage().exists(key) for key in keys] == [True, False, False, False]
    assert db.session.get(Job, other_version.id).status == JobStatus.finished


def test_version_source_filters_by_split_state_label_and_image_and_applies_the_tag_map(client, run_jobs, shop):
    a, b, c, d = shop.images
    replace_annotations(a, shop.owner, [box(shop.cat), box(shop.dog)])
    replace_annotations(b, shop.owner, [box(shop.dog)])
    update_image(c, split="train")
    version = db.session.get(Version, released(client, run_jobs, shop)["id"])
    by_label = service.version_source(version, ExportFilter(label_ids=(shop.cat.id,)))
    assert by_label.count() == 1
    [only] = list(by_label.images())
    assert only.id == a.id and [ann.label_id for ann in only.annotations] == [shop.cat.id]
    assert service.version_source(version, ExportFilter(label_ids=(shop.dog.id,))).count() == 2
    assert [i.id for i in service.version_source(version, ExportFilter(splits=("train",))).images()] == [c.id]
    assert service.version_source(version, ExportFilter(states=("unlabeled",))).count() == 2
    assert [i.id for i in service.version_source(version, ExportFilter(image_ids=(b.id, d.id))).images()] == [b.id, d.id]
    merged = service.version_source(version, tagmap={"cat": "pet", "dog": "pet"})
    assert [label.name for label in merged.labels] == ["pet"] and merged.version_name == "V001"
    assert {ann.label_id for image in merged.images() for ann in image.annotations} == {merged.labels[0].id}


# ---- bad input -------------------------------------------------------------------------------


@pytest.fixture
def elsewhere(shop):
    """A complete version of another dataset of the same owner."""
    other = make_dataset(shop.owner, name="Elsewhere")
    version = Version(dataset_id=other.id, number=1, labels=[], stats={}, complete=True)
    db.session.add(version)
    db.session.commit()
    return version


@pytest.mark.parametrize("query, status", [
    ("", 422), ("?a=1", 422), ("?b=1", 422), ("?a=x&b=1", 422), ("?a=1&b=99999999999999999999999", 422),
    ("?a={v}&b={v}&limit=0", 422), ("?a={v}&b={v}&limit=101", 422),
    ("?a={v}&b={other}", 404), ("?a={other}&b={v}", 404), ("?a={v}&b=2147483647", 404),
])
def test_compare_refuses_bad_versions(client, shop, elsewhere, query, status):
    version = Version(dataset_id=shop.dataset.id, number=1, labels=[], stats={}, complete=True)
    db.session.add(version)
    db.session.commit()
    url = f"/api/v1/datasets/{shop.dataset.id}/versions/compare" + query.format(v=version.id, other=elsewhere.id)
    response = client.get(url, headers=shop.headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["message"]


def test_a_version_still_being_released_cannot_be_compared_but_can_be_read(client, run_jobs, shop):
    done = released(client, run_jobs, shop)
    pending = release(client, shop)["result"]["version_id"]
    response = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/compare?a={done['id']}&b={pending}", headers=shop.headers)
    assert response.status_code == 409 and "still being released" in response.get_json()["error"]["message"]
    shown = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions/{pending}", headers=shop.headers).get_json()
    assert shown["complete"] is False and shown["name"] == "V002"
    listing = client.get(f"/api/v1/datasets/{shop.dataset.id}/versions", headers=shop.headers).get_json()
    assert [v["name"] for v in listing["items"]] == ["V001"]


def test_bad_release_and_list_input(client, shop, elsewhere):
    ds = f"/api/v1/datasets/{shop.dataset.id}/versions"
    long_note = client.post(ds, json={"note": "x" * (service.MAX_NOTE + 1)}, headers=shop.headers)
    assert long_note.status_code == 422 and "longer than" in long_note.get_json()["error"]["message"]
    assert client.post(ds, json={"note": 5}, headers=shop.headers).status_code == 422
    assert client.post(ds, data="note=x", headers=shop.headers).status_code == 415
    assert client.get(f"{ds}?limit=0", headers=shop.headers).status_code == 422
    assert client.get(f"{ds}?limit=101", headers=shop.headers).status_code == 422
    assert client.get(f"{ds}/{elsewhere.id}", headers=shop.headers).status_code == 404
    assert client.get(f"{ds}/99999999999", headers=shop.headers).status_code in (400, 404)
    assert not db.session.scalar(select(func.count()).select_from(Version).where(Version.dataset_id == shop.dataset.id))


def test_cursor_pages_versions_newest_first(client, run_jobs, shop):
    for _ in range(3):
        released(client, run_jobs, shop)
    ds = f"/api/v1/datasets/{shop.dataset.id}/versions"
    page = client.get(f"{ds}?limit=2", headers=shop.headers).get_json()
    assert [v["name"] for v in page["items"]] == ["V003", "V002"] and page["total"] == 3 and page["next_cursor"] == 2
    rest = client.get(f"{ds}?limit=2&cursor=2", headers=shop.headers).get_json()
    assert [v["name"] for v in rest["items"]] == ["V001"] and rest["next_cursor"] is None


def test_a_manager_may_release_and_a_reviewer_may_not(client, shop):
    from tests.support import member

    ds = f"/api/v1/datasets/{shop.dataset.id}/versions"
    assert client.post(ds, json={}, headers=token_for(member(shop.dataset, "manager"))).status_code == 202
    assert client.post(ds, json={}, headers=token_for(member(shop.dataset, "reviewer"))).status_code == 403


def test_nothing_is_released_from_a_dataset_being_deleted(client, shop):
    assert client.delete(f"/api/v1/datasets/{shop.dataset.id}", headers=shop.headers).status_code == 202
    response = client.post(f"/api/v1/datasets/{shop.dataset.id}/versions", json={}, headers=shop.headers)
    assert response.status_code == 409 and "being deleted" in response.get_json()["error"]["message"]
    assert not db.session.scalar(select(func.count()).select_from(Version))
