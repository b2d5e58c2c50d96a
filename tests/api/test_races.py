"""Many clients at once against a real HTTP server (threads, real connections), on SQLite and PostgreSQL.

Every request must succeed, one row must result for one name, and the kept counters must be exact.
"""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import event, func, select, text

from core.extensions import db
from models import Annotation, Dataset, Folder, Image, ImageTag, Label, Tag, User
from services.images import MAX_BULK, MAX_TAGS_PER_IMAGE, add_tag_to_images, update_image
from tests.conftest import ROOT, make_app, worker_env
from tests.factories import PASSWORD, make_dataset, make_user, token_for
from tests.support import hidden_csrf, insert_images, member, sign_in

CLIENTS = 20


def at_once(count: int, call) -> list:
    """Run call(0..count-1) in `count` threads released together, so the requests really overlap."""
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def statuses(responses) -> list[int]:
    return [r.status_code for r in responses]


def signed_in_browser(base: str, user) -> tuple[dict, str]:
    """Sign in through the login form once; returns the session cookies and the session's CSRF token."""
    browser = requests.Session()
    login = browser.get(f"{base}/login").text
    signed_in = browser.post(
        f"{base}/login", data={"email": user.email, "password": PASSWORD, "csrf_token": hidden_csrf(login)}, allow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    return browser.cookies.get_dict(), hidden_csrf(browser.get(f"{base}/datasets/").text)


def grid_bulk(base: str, cookies: dict, csrf: str, dataset_id: int, **form):
    with requests.Session() as browser:
        browser.cookies.update(cookies)
        return browser.post(
            f"{base}/datasets/{dataset_id}/images/bulk", data=form, headers={"X-CSRFToken": csrf, "HX-Request": "true"}, timeout=60
        )


@pytest.fixture
def crowd(app_ctx, live_server):
    owner = make_user()
    dataset = make_dataset(owner, name="Crowd", type="detection")
    ids = insert_images(dataset, CLIENTS)
    headers = token_for(owner)
    # Plain values: the threads must not touch ORM objects of the test's session.
    return live_server, owner, dataset.id, ids, headers


def fresh() -> None:
    db.session.commit()  # end the test's read snapshot (SQLite WAL) so it sees what the server committed
    db.session.expire_all()


def tag_row(dataset_id: int, name: str) -> list[Tag]:
    fresh()
    return list(db.session.scalars(select(Tag).where(Tag.dataset_id == dataset_id, Tag.name == name)))


def links_of(tag: Tag) -> int:
    return db.session.scalar(select(func.count()).select_from(ImageTag).where(ImageTag.tag_id == tag.id))


@pytest.mark.parametrize("name", ["night", "ünïcode tag", "a" * 100])
def test_twenty_api_clients_giving_images_the_same_new_tag_all_succeed_with_one_tag(crowd, name):
    base, _, dataset_id, ids, headers = crowd
    responses = at_once(CLIENTS, lambda i: requests.patch(
        f"{base}/api/v1/datasets/{dataset_id}/images/{ids[i]}", json={"tags": [name, f"own-{i}"]}, headers=headers, timeout=60
    ))
    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.status_code != 200][:3]
    [tag] = tag_row(dataset_id, name)
    assert tag.image_count == links_of(tag) == CLIENTS
    listed = requests.get(f"{base}/api/v1/datasets/{dataset_id}/tags", headers=headers).json()["items"]
    assert {"name": name, "image_count": CLIENTS} in listed and len(listed) == CLIENTS + 1


def test_twenty_api_clients_giving_one_image_the_same_tags_keep_its_counters_exact(crowd):
    base, _, dataset_id, ids, headers = crowd
    responses = at_once(CLIENTS, lambda i: requests.patch(
        f"{base}/api/v1/datasets/{dataset_id}/images/{ids[0]}", json={"tags": ["shared", "also"]}, headers=headers, timeout=60
    ))
    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.status_code != 200][:3]
    for name in ("shared", "also"):
        [tag] = tag_row(dataset_id, name)
        assert tag.image_count == links_of(tag) == 1


def test_twenty_api_clients_renaming_tags_onto_the_same_new_name_all_succeed_with_one_tag(crowd):
    base, _, dataset_id, ids, headers = crowd
    # Every image carries two of the tags, so the merges move links onto the same images at once.
    for i, image_id in enumerate(ids):
        update_image(db.session.get(Image, image_id), tags=[f"own-{i}", f"own-{(i + 1) % CLIENTS}"])
    responses = at_once(CLIENTS, lambda i: requests.post(
        f"{base}/api/v1/datasets/{dataset_id}/tags/own-{i}/rename", json={"name": "together"}, headers=headers, timeout=60
    ))
    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.status_code != 200][:3]
    assert sum(not r.json()["merged"] for r in responses) == 1, "one renamed, the others merged into it"
    [tag] = tag_row(dataset_id, "together")
    assert tag.image_count == links_of(tag) == CLIENTS
    assert db.session.scalar(select(func.count()).select_from(Tag).where(Tag.dataset_id == dataset_id)) == 1


@pytest.mark.parametrize("path", ["line-3", "2024/line-3/cam a", "x/y/z/w"])
def test_twenty_api_clients_moving_images_into_the_same_new_folder_make_it_once(crowd, path):
    base, _, dataset_id, ids, headers = crowd
    responses = at_once(CLIENTS, lambda i: requests.patch(
        f"{base}/api/v1/datasets/{dataset_id}/images/{ids[i]}", json={"folder": path}, headers=headers, timeout=60
    ))
    assert statuses(responses) == [200] * CLIENTS, [r.text for r in responses if r.status_code != 200][:3]
    fresh()
    folders = db.session.execute(select(Folder.path, Folder.id, Folder.parent_id).where(Folder.dataset_id == dataset_id)).all()
    parts = path.split("/")
    assert sorted(f.path for f in folders) == sorted("/".join(parts[: n + 1]) for n in range(len(parts)))
    by_path = {f.path: f for f in folders}
    for n in range(1, len(parts)):
        assert by_path["/".join(parts[: n + 1])].parent_id == by_path["/".join(parts[:n])].id
    assert set(db.session.scalars(select(Image.folder_id).where(Image.dataset_id == dataset_id))) == {by_path[path].id}


NEW_NAMES = ["checked", "zweite Prüfung", "x" * 100]  # several rounds: one race may be won by luck


@pytest.mark.parametrize("overlap", [False, True], ids=["own-image", "same-images"])
def test_twenty_grid_clients_adding_the_same_new_tag_all_succeed_with_exact_counts(crowd, overlap):
    base, owner, dataset_id, ids, _ = crowd
    cookies, csrf = signed_in_browser(base, owner)
    chosen = (lambda i: ids[:10]) if overlap else (lambda i: [ids[i]])
    for name in NEW_NAMES:
        responses = at_once(CLIENTS, lambda i: grid_bulk(base, cookies, csrf, dataset_id, action="add_tag", tag=name, image_ids=chosen(i)))
        assert statuses(responses) == [200] * CLIENTS, [r.text[:300] for r in responses if r.status_code != 200][:3]
        [tag] = tag_row(dataset_id, name)
        assert tag.image_count == links_of(tag) == (10 if overlap else CLIENTS)


def test_twenty_grid_clients_moving_images_into_the_same_new_folder_make_it_once(crowd):
    base, owner, dataset_id, ids, _ = crowd
    cookies, csrf = signed_in_browser(base, owner)
    for path in NEW_NAMES:
        move = lambda i: grid_bulk(base, cookies, csrf, dataset_id, action="move_folder", to_folder=f"{path}/sub", image_ids=[ids[i]])
        responses = at_once(CLIENTS, move)
        assert statuses(responses) == [200] * CLIENTS, [r.text[:300] for r in responses if r.status_code != 200][:3]
        fresh()
        made = db.session.scalars(select(Folder.path).where(Folder.dataset_id == dataset_id, Folder.path.startswith(path)))
        assert sorted(made) == [path, f"{path}/sub"]


def test_concurrent_saves_and_tag_edits_never_fail_and_every_save_is_recorded(crowd):
    """Labelers saving their images while others edit tags: no 5xx, every save a revision."""
    base, owner, dataset_id, ids, headers = crowd
    dataset = db.session.get(Dataset, dataset_id)
    label = Label(dataset_id=dataset_id, name="cat")
    db.session.add(label)
    db.session.commit()
    label_id = label.id
    labelers = [token_for(member(dataset, "reviewer")) for _ in range(CLIENTS // 2)]
    rounds = 5

    def work(i):
        results = []
        for n in range(rounds):
            if i % 2 == 0:  # a save on this client's own image, based on the revision it last saw
                box = {"x": 1, "y": 1, "width": 10 + n, "height": 10}
                results.append(requests.put(
                    f"{base}/api/v1/datasets/{dataset_id}/images/{ids[i]}/annotations",
                    json={"revision": n, "annotations": [{"label_id": label_id, "shape": "box", "geometry": box}]},
                    headers=labelers[i // 2], timeout=60,
                ))
            else:  # tag edits and bulk changes over the same images
                results.append(requests.patch(
                    f"{base}/api/v1/datasets/{dataset_id}/images/{ids[i]}", json={"tags": [f"t{n}", "common"], "split": "train"},
                    headers=headers, timeout=60,
                ))
        return results

    started = time.monotonic()
    outcomes = [r for rs in at_once(CLIENTS, work) for r in rs]
    assert [r.status_code for r in outcomes] == [200] * len(outcomes), [r.text[:200] for r in outcomes if r.status_code != 200][:3]
    fresh()
    saved = ids[0::2]
    revisions = dict(db.session.execute(select(Image.id, Image.revision).where(Image.id.in_(saved))).all())
    assert revisions == {i: rounds for i in saved}
    assert db.session.scalar(select(func.count()).select_from(Annotation).where(Annotation.image_id.in_(saved))) == len(saved)
    [common] = tag_row(dataset_id, "common")
    assert common.image_count == links_of(common) == CLIENTS // 2
    assert time.monotonic() - started < 60


# ---- long writes: every bulk request is bounded, and tag edits cost the same for few and many tags ----


@pytest.fixture
def api(app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, name="Bulk", type="detection")
    return dataset, insert_images(dataset, 3), token_for(owner)


def statements_of(call) -> int:
    """How many SQL statements `call` makes the server run."""
    seen = []
    listener = lambda *args: seen.append(1)  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


def test_a_tag_edit_runs_as_many_statements_for_a_hundred_new_tags_as_for_one(client, api):
    dataset, ids, headers = api
    url = f"/api/v1/datasets/{dataset.id}/images/{ids[0]}"
    assert_status(client.patch(url, json={"tags": ["first"]}, headers=headers), 200)  # the token's first use is recorded once
    counts = {}
    for n in (1, 10, MAX_TAGS_PER_IMAGE):
        # Each edit replaces the previous tags with n new ones: n tags created, n links added, the old ones dropped.
        patch = lambda: client.patch(url, json={"tags": [f"n{n}-{i}" for i in range(n)]}, headers=headers)  # noqa: E731
        counts[n] = statements_of(lambda: assert_status(patch(), 200))
    assert len(set(counts.values())) == 1, counts
    fresh()
    tags = {t.name: t.image_count for t in db.session.scalars(select(Tag).where(Tag.dataset_id == dataset.id))}
    assert sum(tags.values()) == MAX_TAGS_PER_IMAGE and len(tags) == 1 + 1 + 10 + MAX_TAGS_PER_IMAGE


def assert_status(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    return response


@pytest.mark.parametrize("count", [MAX_TAGS_PER_IMAGE + 1, 3000])
def test_more_tags_than_an_image_may_carry_is_a_clear_422_naming_the_limit(client, api, count):
    dataset, ids, headers = api
    response = client.patch(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}", json={"tags": [f"t{i}" for i in range(count)]}, headers=headers)
    body = assert_status(response, 422).get_json()["error"]
    assert str(MAX_TAGS_PER_IMAGE) in body["message"]
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 0, "nothing was created"


def test_an_image_may_carry_exactly_the_limit_of_tags(client, api):
    dataset, ids, headers = api
    names = [f"t{i:03d}" for i in range(MAX_TAGS_PER_IMAGE)]
    response = client.patch(f"/api/v1/datasets/{dataset.id}/images/{ids[0]}", json={"tags": names}, headers=headers)
    assert assert_status(response, 200).get_json()["tags"] == names


@pytest.mark.parametrize("field,values", [
    ("image_ids", lambda ids: ids + list(range(10**6, 10**6 + MAX_BULK))),
    ("names", lambda ids: [f"img_{i:05d}.jpg" for i in range(MAX_BULK + 1)]),
])
def test_a_bulk_delete_over_the_limit_is_a_clear_422_and_deletes_nothing(client, api, field, values):
    dataset, ids, headers = api
    response = client.post(f"/api/v1/datasets/{dataset.id}/images/delete", json={field: values(ids)}, headers=headers)
    assert str(MAX_BULK) in assert_status(response, 422).get_json()["error"]["message"]
    assert db.session.scalar(select(func.count()).select_from(Image)) == 3


@pytest.mark.parametrize("action,form", [
    ("add_tag", {"tag": "t"}), ("remove_tag", {"tag": "t"}), ("move_folder", {"to_folder": "f"}), ("set_split", {"split": "train"}),
    ("delete", {}),
])
def test_a_grid_bulk_action_over_the_limit_is_a_clear_422_and_changes_nothing(client, api, action, form):
    dataset, ids, _ = api
    add_tag_to_images(dataset, ids[:1], "t")
    sign_in(client, db.session.get(User, dataset.owner_id))
    too_many = ids + list(range(10**6, 10**6 + MAX_BULK))
    response = client.post(f"/datasets/{dataset.id}/images/bulk", data={"action": action, "image_ids": too_many, **form}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and str(MAX_BULK) in response.get_data(as_text=True)
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Image)) == 3
    assert db.session.scalar(select(func.count()).select_from(ImageTag)) == 1


# ---- SQLite: every process's connections wait for the writer instead of failing ----

PRAGMAS = "PRAGMA journal_mode", "PRAGMA busy_timeout", "PRAGMA foreign_keys"
PRINT_PRAGMAS = (
    "from sqlalchemy import text\n"
    "from app import create_app\n"
    "from core.extensions import db\n"
    "with create_app().app_context(), db.engine.connect() as conn:\n"
    f"    print([conn.execute(text(p)).scalar() for p in {PRAGMAS!r}])\n"
)


def test_sqlite_connections_of_the_web_app_and_of_a_worker_use_wal_and_wait_for_the_writer(app_ctx, backend, tmp_path):
    # A SQLite file of its own, whatever database the suite runs on.
    url = f"sqlite:///{tmp_path / 'pragmas.db'}"
    web = make_app(backend, SQLALCHEMY_DATABASE_URI=url)
    with web.app_context(), db.engine.connect() as conn:
        assert [conn.execute(text(p)).scalar() for p in PRAGMAS] == ["wal", 30000, 1]
    # A worker process builds its app the way `python -m workers` and a bare `rq worker` do.
    env = {**worker_env(app_ctx), "DATABASE_URL": url}
    worker = subprocess.run([sys.executable, "-c", PRINT_PRAGMAS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert worker.stdout.strip().splitlines()[-1] == "['wal', 30000, 1]", worker.stderr[-2000:]


@pytest.mark.parametrize("write", ["label", "dataset"])
def test_a_write_that_waits_out_the_sqlite_busy_timeout_is_a_503_to_send_again_and_keeps_nothing(app_ctx, backend, tmp_path, write):
    import sqlite3

    from flask_migrate import upgrade

    path = tmp_path / "locked.db"
    web = make_app(backend, SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}", REDIS_URL=app_ctx.config["REDIS_URL"])
    with web.app_context():
        upgrade()
        owner = make_user()
        dataset = make_dataset(owner, name="Busy")
        headers = token_for(owner)

        # Wait 0.1 s rather than 30 s for the lock, so the test does not take half a minute.
        def short_wait(dbapi_connection, _record, _proxy):
            dbapi_connection.execute("PRAGMA busy_timeout=100")

        event.listen(db.engine, "checkout", short_wait)
        url, body = {
            "label": (f"/api/v1/datasets/{dataset.id}/labels", {"name": "cat"}),
            "dataset": ("/api/v1/datasets", {"name": "Another", "type": "detection"}),
        }[write]
        holder = sqlite3.connect(path)
        holder.execute("BEGIN IMMEDIATE")  # another process's write, held past the timeout
        try:
            client = web.test_client()
            busy = client.post(url, json=body, headers=headers)
            assert busy.status_code == 503, busy.get_data(as_text=True)[:300]
            assert busy.get_json()["error"]["code"] == "database_busy" and busy.headers["Retry-After"] == "1"
            page = client.post(url, json=body, headers={**headers, "Accept": "text/html"})
            assert page.status_code == 503
        finally:
            holder.rollback()
            holder.close()
        again = client.post(url, json=body, headers=headers)
        assert again.status_code == 201, again.get_data(as_text=True)[:300]
        table = {"label": Label, "dataset": Dataset}[write]
        assert db.session.scalar(select(func.count()).select_from(table)) == (1 if write == "label" else 2)
        event.remove(db.engine, "checkout", short_wait)
        db.session.remove()
        db.engine.dispose()


def test_classifying_more_images_than_the_limit_in_one_request_is_a_clear_422(client, app_ctx):
    owner = make_user()
    dataset = make_dataset(owner, name="Classes", type="classification")
    ids = insert_images(dataset, 2)
    label = Label(dataset_id=dataset.id, name="cat")
    db.session.add(label)
    db.session.commit()
    sign_in(client, owner)
    too_many = ids + list(range(10**6, 10**6 + MAX_BULK))
    response = client.post(f"/datasets/{dataset.id}/images/classify", data={"label_id": label.id, "image_ids": too_many}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and str(MAX_BULK) in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Annotation)) == 0
