"""Save benchmark: 50 concurrent labelers loading the labeling page and saving annotations, under gunicorn.

    python bench/save_bench.py              # 30 s of load
    python bench/save_bench.py --quick      # 10 s of load, about a minute in all
    DATABASE_URL='postgresql://postgres@127.0.0.1:5432/test' REDIS_URL=redis://127.0.0.1:6379/12 \
    python bench/save_bench.py --seconds 60 --think 2.0

Setup: a dedicated PostgreSQL schema (loupe_save_bench, through the URL's search_path; created if
missing and DROPPED at the end, no other schema is touched), a Redis db (12, flushed at start and
end), `flask db upgrade`, then seeding: an owner, N labelers (role labeler, each assigned one image
through a labeling task), a detection dataset with 5 labels and images whose small JPEGs are stored
in a temp instance's storage under their sha256.

Server: `gunicorn 'app:create_app()'` with 4 workers (sync by default, --worker-class gthread) bound
to 127.0.0.1 on a free port, with an access log carrying each request's server-side time (%(D)s),
so the client's latency can be split into time in the app and time waiting for a free worker.

Load: one thread per labeler (http.client; sync workers close the connection after each request).
Each signs in through the login form with its CSRF token, reads its image's revision once, then loops:
GET the labeling page (HTML) of its own image, PUT its annotations (2 to 5 boxes, one more or less
than last time, as a person adding boxes would; --fixed-boxes keeps 3) with the revision it holds
through the canvas' session endpoint with the X-CSRFToken header (--api: the token API instead), and
takes the new revision from the answer. Bounded by --seconds and --max-requests. 409s and errors are
counted (errors must be 0).

Two phases, each with fresh labelers:
- paced (the targets apply here): --think seconds (default 1, uniform 0.5x-1.5x) of pause between
  a labeler's loops. That is a harsh model of people: every labeler opens a new image and saves
  every second or so, while the canvas itself batches a person's edits into one save per 600 ms
  of quiet and a person spends seconds per image.
- saturated (reported, no target; --no-saturation skips it): no pause at all, for --seconds / 2.
  50 labelers back to back measure capacity (requests/s on these cores); their latency is mostly
  time queued for one of the workers (Little's law: 50 in flight / throughput).

Each phase also reports where the machine's CPU went (Linux /proc): cores busy, CPU ms per request
in gunicorn, in the PostgreSQL backends serving it (found by the connections' application_name)
and in this client, and the cores other processes kept busy meanwhile, so a run on a busy machine
says so. After the run, one save and one page load are replayed in-process with SQL statements
counted and timed (and the save split into its SQL statements) and the CPU each costs this process
(save_in_process_cpu_ms: unlike time, it holds on a busy machine), so a missed target can be traced.
The last line is JSON. Targets: save p99 <= 50 ms, page p99 <= 100 ms.
"""

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from _common import PASSWORD, ROOT, emit, is_postgres, log, pg_schema_of

SCHEMA = "loupe_save_bench"
APP_NAME = "loupe-save-bench"  # the application_name of the bench's connections, to find their PostgreSQL backends
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
SAVE_P99_TARGET = 50.0
PAGE_P99_TARGET = 100.0
LABELS = [("car", "#e6194b"), ("person", "#3cb44b"), ("bike", "#ffe119"), ("sign", "#4363d8"), ("tree", "#f58231")]
IMAGE_SIZE = (640, 480)


# ---- setup -------------------------------------------------------------------------------------


def bench_database_url() -> str:
    """DATABASE_URL (or the test database) with the bench's own schema as search_path."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    if not is_postgres(url):
        sys.exit("save_bench needs PostgreSQL (DATABASE_URL=postgresql://...)")
    base = url.split("?", 1)[0]
    return f"{base}?options=-csearch_path%3D{SCHEMA}&application_name={APP_NAME}"


def schema_sql(url: str, statement: str) -> None:
    """Run one CREATE/DROP SCHEMA statement for the bench's schema on the URL's database."""
    from sqlalchemy import create_engine, text

    from core.config import database_url

    engine = create_engine(database_url(url.split("?", 1)[0]), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def small_jpeg(seed: int) -> bytes:
    """A real, distinct 640x480 JPEG (a few KB)."""
    from PIL import Image as PILImage, ImageDraw

    rng = random.Random(seed)
    picture = PILImage.new("RGB", IMAGE_SIZE, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(picture)
    for _ in range(4):
        x, y = rng.randrange(IMAGE_SIZE[0] - 100), rng.randrange(IMAGE_SIZE[1] - 100)
        draw.rectangle([x, y, x + rng.randrange(20, 100), y + rng.randrange(20, 100)], fill=(rng.randrange(256), 0, 128))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=80)
    return out.getvalue()


def seed(app, labelers: int, images: int) -> dict:
    """Owner, labelers (each assigned one image of a labeling task), a detection dataset, labels, images."""
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from core.extensions import db
    from core.storage import get_storage
    from models import Assignment, DatasetMember, Image, Label, LabelingTask, Role, User
    from services.accounts import create_token
    from services.datasets import create_dataset

    with app.app_context():
        t0 = time.perf_counter()
        upgrade()
        log(f"  migrations: {time.perf_counter() - t0:.1f} s")
        owner = User(email="owner@save-bench.example", display_name="Owner")
        owner.set_password(PASSWORD)
        db.session.add(owner)
        db.session.commit()
        password_hash = owner.password_hash  # one hash for everybody: hashing 50 times is slow and beside the point
        users = [User(email=f"labeler{i:02d}@save-bench.example", display_name=f"Labeler {i}", password_hash=password_hash) for i in range(labelers)]
        db.session.add_all(users)
        db.session.commit()

        dataset = create_dataset(owner, "save bench", "detection")
        labels = [Label(dataset_id=dataset.id, name=name, color=color, default_shape="box", position=i) for i, (name, color) in enumerate(LABELS)]
        db.session.add_all(labels)
        storage = get_storage()
        rows, total = [], 0
        for i in range(images):
            data = small_jpeg(i)
            key = hashlib.sha256(data).hexdigest()
            storage.put_bytes(key, data)
            total += len(data)
            rows.append({
                "dataset_id": dataset.id, "file_name": f"street_{i:04d}.jpg", "storage_key": key, "width": IMAGE_SIZE[0],
                "height": IMAGE_SIZE[1], "byte_size": len(data), "format": "jpeg", "orientation": 1, "created_by_id": owner.id,
            })
        db.session.execute(insert(Image), rows)
        dataset.image_count, dataset.total_bytes = images, total
        db.session.commit()
        image_ids = list(db.session.scalars(db.select(Image.id).where(Image.dataset_id == dataset.id).order_by(Image.id)))

        task = LabelingTask(dataset_id=dataset.id, name="boxes", review_required=True)
        db.session.add(task)
        db.session.flush()
        for user in users:
            db.session.add(DatasetMember(dataset_id=dataset.id, user_id=user.id, role=Role.labeler))
        # Each labeler gets its own image, spread over the dataset.
        step = max(1, images // labelers)
        mine = [image_ids[(i * step) % len(image_ids)] for i in range(labelers)]
        for user, image_id in zip(users, mine):
            db.session.add(Assignment(task_id=task.id, image_id=image_id, labeler_id=user.id))
        db.session.commit()
        tokens = [create_token(user, "save bench")[1] for user in users]
        return {
            "dataset_id": dataset.id, "label_ids": [label.id for label in labels], "owner_email": owner.email,
            "labelers": [(user.email, image_id, token) for user, image_id, token in zip(users, mine, tokens)],
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int, worker_class: str, threads: int, logs: Path) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
        "--access-logfile", str(logs / "access.log"), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s",
        "--error-logfile", str(logs / "error.log"), "--backlog", "2048", "--timeout", "60",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}; see {logs / 'error.log'}:\n" + (logs / "error.log").read_text()[-3000:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            if conn.getresponse().status in (200, 302):
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.terminate()
    sys.exit("gunicorn did not answer within 60 s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---- the load client -------------------------------------------------------------------------


CSRF_INPUT = re.compile(rb'name="csrf_token" value="([^"]+)"')
CSRF_HEADER = re.compile(rb'"X-CSRFToken": "([^"]+)"')


class Labeler(threading.Thread):
    """One person: sign in, then page + save in a loop on their own image."""

    def __init__(self, bench: "Load", email: str, image_id: int, token: str, index: int):
        super().__init__(daemon=True)
        self.bench, self.email, self.image_id, self.token = bench, email, image_id, token
        self.rng = random.Random(index)
        self.cookies: dict[str, str] = {}
        self.csrf = ""
        self.boxes = 2 + index % 4
        self.page_ms: list[float] = []
        self.save_ms: list[float] = []
        self.conflicts = 0
        self.errors: list[str] = []

    # One connection per request: gunicorn's sync worker closes it after each answer anyway.
    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        conn = http.client.HTTPConnection("127.0.0.1", self.bench.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                self.cookies[k.strip()] = v.strip()
        return response.status, data

    def sign_in(self) -> None:
        status, page = self.request("GET", "/login")
        match = CSRF_INPUT.search(page)
        if status != 200 or not match:
            raise RuntimeError(f"login page: {status}")
        form = urlencode({"csrf_token": match.group(1).decode(), "email": self.email, "password": PASSWORD, "next": ""}).encode()
        status, _ = self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise RuntimeError(f"sign in: {status}")

    def annotations(self) -> list[dict]:
        """A few boxes, one more or fewer than last time (2..5), jittered: a person at work."""
        if not self.bench.fixed_boxes:
            self.boxes = min(5, max(2, self.boxes + self.rng.choice((-1, 1))))
        out = []
        for i in range(3 if self.bench.fixed_boxes else self.boxes):
            x, y = self.rng.uniform(0, 500), self.rng.uniform(0, 380)
            out.append({
                "label_id": self.bench.label_ids[i % len(self.bench.label_ids)], "shape": "box",
                "geometry": {"x": round(x, 1), "y": round(y, 1), "width": round(self.rng.uniform(10, 100), 1), "height": round(self.rng.uniform(10, 80), 1)},
            })
        return out

    def run(self) -> None:
        b = self.bench
        page_path = f"/datasets/{b.dataset_id}/images/{self.image_id}/label"
        save_path = ("/api/v1" if b.api else "") + f"/datasets/{b.dataset_id}/images/{self.image_id}/annotations"
        try:
            self.sign_in()
            status, page = self.request("GET", page_path)
            self.csrf = CSRF_HEADER.search(page).group(1).decode()
            status, body = self.request("GET", save_path, headers=self.save_headers())
            revision = json.loads(body)["revision"]
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.errors.append(f"setup: {exc!r}")
            b.ready.wait()
            return
        b.ready.wait()
        if b.think:  # people do not all click at the same instant: stagger the first loop
            time.sleep(self.rng.uniform(0, 1.5 * b.think))
        while not b.stop.is_set() and b.take():
            try:
                t0 = time.perf_counter()
                status, page = self.request("GET", page_path)
                elapsed = time.perf_counter() - t0
                if status != 200 or b'id="labeling"' not in page:
                    self.errors.append(f"page {status}")
                    continue
                self.page_ms.append(1000 * elapsed)
                if not b.take():
                    break
                body = json.dumps({"revision": revision, "annotations": self.annotations()}).encode()
                t0 = time.perf_counter()
                status, data = self.request("PUT", save_path, body, self.save_headers({"Content-Type": "application/json"}))
                elapsed = time.perf_counter() - t0
                if status == 200:
                    self.save_ms.append(1000 * elapsed)
                    revision = json.loads(data)["revision"]
                elif status == 409:
                    self.conflicts += 1
                    revision = json.loads(data)["error"]["details"]["current_revision"]
                else:
                    self.errors.append(f"save {status}: {data[:200]!r}")
                if b.think:
                    time.sleep(self.rng.uniform(0.5, 1.5) * b.think)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append(repr(exc))

    def save_headers(self, extra: dict | None = None) -> dict:
        headers = {"Accept": "application/json", **(extra or {})}
        if self.bench.api:
            headers["Authorization"] = f"Token {self.token}"
        else:
            headers["X-CSRFToken"] = self.csrf
        return headers


class Load:
    def __init__(self, port: int, seeded: dict, api: bool, think: float, fixed_boxes: bool, max_requests: int):
        self.port, self.api, self.think, self.fixed_boxes = port, api, think, fixed_boxes
        self.dataset_id, self.label_ids = seeded["dataset_id"], seeded["label_ids"]
        self.labelers = [Labeler(self, email, image_id, token, i) for i, (email, image_id, token) in enumerate(seeded["labelers"])]
        self.on_start = None
        self.ready = threading.Barrier(len(self.labelers) + 1, action=lambda: self.on_start and self.on_start())
        self.stop = threading.Event()
        self._left, self._lock = max_requests, threading.Lock()

    def take(self) -> bool:
        """One more request allowed under --max-requests?"""
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def run(self, seconds: float, on_start=None) -> float:
        self.on_start = on_start
        for labeler in self.labelers:
            labeler.start()
        self.ready.wait()  # everybody signed in; the barrier's action ran on_start before releasing anybody
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while time.perf_counter() < deadline and any(l.is_alive() for l in self.labelers):
            time.sleep(0.05)
        self.stop.set()
        for labeler in self.labelers:
            labeler.join(timeout=40)
        return time.perf_counter() - t0


# ---- figures -------------------------------------------------------------------------------


def _jiffies(pid: int) -> int:
    """utime + stime of one process, in clock ticks (Linux /proc; 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def bench_backends(url: str) -> list[int]:
    """PIDs of the PostgreSQL backends serving the bench's connections (found by application_name)."""
    from sqlalchemy import create_engine, text

    from core.config import database_url

    engine = create_engine(database_url(url.split("?", 1)[0]))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"), {"name": APP_NAME}).scalars())
    finally:
        engine.dispose()


def cpu_snapshot(server: subprocess.Popen, db_url: str) -> dict | None:
    """CPU seconds so far of the machine (busy, all cores), gunicorn (master and workers), the
    PostgreSQL backends serving it (when PostgreSQL runs on this machine) and this client.

    Whatever else runs on the machine shows as "other": busy minus those three.
    """
    if not Path("/proc/stat").exists():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    idle = int(cpu[3]) + int(cpu[4])  # idle + iowait
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []
    mine = os.times()
    return {
        "busy": (sum(int(x) for x in cpu[:8]) - idle) / tick, "wall": time.monotonic(),
        "gunicorn": sum(_jiffies(pid) for pid in [server.pid, *workers]) / tick, "client": mine.user + mine.system,
        "postgres": sum(_jiffies(pid) for pid in bench_backends(db_url)) / tick,
    }


def cpu_use(before: dict | None, after: dict | None, requests: int) -> dict:
    """Cores busy during a phase, split by who used them, and CPU ms per request."""
    if before is None or after is None or not requests:
        return {}
    wall = after["wall"] - before["wall"]
    parts = ("gunicorn", "postgres", "client")
    spent = {key: after[key] - before[key] for key in ("busy", *parts)}
    other = max(0.0, spent["busy"] - sum(spent[key] for key in parts))
    return {
        "cores_busy": round(spent["busy"] / wall, 2), "cores": os.cpu_count(), "other_cores_busy": round(other / wall, 2),
        **{f"{key}_cpu_ms_per_request": round(1000 * spent[key] / requests, 1) for key in parts},
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def server_times(access_log: Path, since_line: int, until_line: int) -> dict:
    """Server-side (in the worker) ms of the measured pages and saves, from gunicorn's %(D)s."""
    out = {"page": [], "save": []}
    lines = access_log.read_text().splitlines()[since_line:until_line]
    for line in lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, status, micros = parts
        if method == "GET" and path.endswith("/label"):
            out["page"].append(int(micros) / 1000)
        elif method == "PUT" and path.endswith("/annotations"):
            out["save"].append(int(micros) / 1000)
    return out


def probe_in_process(app, seeded: dict, api: bool) -> dict:
    """Replay one page and a few saves in-process; SQL statements and time per request."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from core.extensions import db

    app.config["WTF_CSRF_ENABLED"] = False
    email, image_id, token = seeded["labelers"][0]
    statements: list[tuple[str, float]] = []
    t_start: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        t_start.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, 1000 * (time.perf_counter() - t_start.pop())))

    commits: list[float] = []
    commit_t0: list[float] = []

    def before_commit(conn):  # the engine's "commit" fires just before the DBAPI commit
        commit_t0.append(time.perf_counter())

    def after_commit(session):
        if commit_t0:
            commits.append(1000 * (time.perf_counter() - commit_t0.pop()))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "commit", before_commit)
    event.listen(Session, "after_commit", after_commit)
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303, response.status_code
    ds = seeded["dataset_id"]
    base = ("/api/v1" if api else "") + f"/datasets/{ds}/images/{image_id}/annotations"
    headers = {"Authorization": f"Token {token}"} if api else {}
    revision = client.get(base, headers=headers).get_json()["revision"]
    results = {"page": [], "save": []}
    last = {}
    for i in range(12):
        statements.clear()
        commits.clear()
        t0, cpu0 = time.perf_counter(), time.process_time()
        r = client.get(f"/datasets/{ds}/images/{image_id}/label")
        assert r.status_code == 200
        results["page"].append((1000 * (time.perf_counter() - t0), len(statements), sum(s[1] for s in statements), sum(commits), 1000 * (time.process_time() - cpu0)))
        last["page"] = list(statements)
        boxes = [{"label_id": seeded["label_ids"][j % 5], "shape": "box", "geometry": {"x": 10 + j, "y": 10, "width": 20, "height": 20}} for j in range(2 + i % 4)]
        statements.clear()
        commits.clear()
        t0, cpu0 = time.perf_counter(), time.process_time()
        r = client.put(base, json={"revision": revision, "annotations": boxes}, headers=headers)
        assert r.status_code == 200, (r.status_code, r.get_data(as_text=True)[:300])
        revision = r.get_json()["revision"]
        results["save"].append((1000 * (time.perf_counter() - t0), len(statements), sum(s[1] for s in statements), sum(commits), 1000 * (time.process_time() - cpu0)))
        last["save"] = list(statements)
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)
    event.remove(engine, "commit", before_commit)
    event.remove(Session, "after_commit", after_commit)
    out = {}
    for name, rows in results.items():
        rows = rows[2:]  # warm-up
        out[name] = {
            "ms": statistics.median(r[0] for r in rows), "statements": statistics.median(r[1] for r in rows),
            "sql_ms": statistics.median(r[2] for r in rows), "commit_ms": statistics.median(r[3] for r in rows),
            "cpu_ms": statistics.median(r[4] for r in rows), "last": last[name],
        }
    return out


# ---- main ----------------------------------------------------------------------------------


def run_phase(server: subprocess.Popen, db_url: str, port: int, seeded: dict, args, think: float, seconds: float, access_log: Path) -> dict:
    """One load phase with fresh labelers (each signs in again); its figures, printed and returned."""
    name = f"think {think:g} s" if think else "back to back (saturation: no pause between requests)"
    load = Load(port, seeded, args.api, think, args.fixed_boxes, args.max_requests)
    # Access-log lines written before the barrier (sign-ins, first page) are skipped below.
    mark = {}

    def on_start():
        mark.update(line=len(access_log.read_text().splitlines()), cpu=cpu_snapshot(server, db_url))

    elapsed = load.run(seconds, on_start=on_start)
    cpu_after = cpu_snapshot(server, db_url)
    time.sleep(0.5)  # let the access log flush
    until = len(access_log.read_text().splitlines())
    pages = [ms for l in load.labelers for ms in l.page_ms]
    saves = [ms for l in load.labelers for ms in l.save_ms]
    conflicts = sum(l.conflicts for l in load.labelers)
    errors = [e for l in load.labelers for e in l.errors]
    server_side = server_times(access_log, mark.get("line", 0), until)
    log("")
    log(f"{name}: {len(saves)} saves and {len(pages)} page loads in {elapsed:.1f} s by {len(load.labelers)} labelers; "
        f"{conflicts} conflicts (409), {len(errors)} errors")
    for e in errors[:10]:
        log(f"  error: {e}")
    log(f"{'':14}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  (ms)")
    for label, values in (("save", saves), ("page", pages), ("save (server)", server_side["save"]), ("page (server)", server_side["page"])):
        log(f"{label:14}{pct(values, 50):8.1f}{pct(values, 90):8.1f}{pct(values, 99):8.1f}{max(values, default=float('nan')):8.1f}")
    log("  client = wall time seen by the labeler; server = time inside a gunicorn worker (%(D)s);")
    log("  the difference is waiting in the listen queue for one of the workers (and the client's own overhead).")
    cpu = cpu_use(mark.get("cpu"), cpu_after, len(saves) + len(pages))
    if cpu:
        log(f"  CPU: {cpu['cores_busy']:g} of {cpu['cores']} cores busy, {cpu['other_cores_busy']:g} of them by other processes than the bench's; "
            f"per request {cpu['gunicorn_cpu_ms_per_request']:g} ms in gunicorn, {cpu['postgres_cpu_ms_per_request']:g} ms in PostgreSQL, "
            f"{cpu['client_cpu_ms_per_request']:g} ms in this client")
    return {
        "think_s": think, "seconds": round(elapsed, 1), "saves": len(saves), "pages": len(pages),
        "conflicts": conflicts, "errors": len(errors),
        "save_p50_ms": round(pct(saves, 50), 1), "save_p99_ms": round(pct(saves, 99), 1),
        "page_p50_ms": round(pct(pages, 50), 1), "page_p99_ms": round(pct(pages, 99), 1),
        "saves_per_s": round(len(saves) / elapsed, 1), "requests_per_s": round((len(saves) + len(pages)) / elapsed, 1),
        "save_server_p50_ms": round(pct(server_side["save"], 50), 1), "save_server_p99_ms": round(pct(server_side["save"], 99), 1),
        "page_server_p50_ms": round(pct(server_side["page"], 50), 1), "page_server_p99_ms": round(pct(server_side["page"], 99), 1),
        **cpu,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of load (about a minute in all)")
    parser.add_argument("--seconds", type=float, help="seconds of load (default 30, --quick 10)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent labelers (default 50)")
    parser.add_argument("--images", type=int, default=500, help="images in the dataset (default 500)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a labeler's loops, s (default 1)")
    parser.add_argument("--no-saturation", action="store_true", help="skip the back-to-back phase after the paced one")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests in all")
    parser.add_argument("--api", action="store_true", help="save through the token API instead of the canvas' session endpoint")
    parser.add_argument("--fixed-boxes", action="store_true", help="always save the same 3 boxes (counters never move)")
    parser.add_argument("--no-probe", action="store_true", help="skip the in-process SQL probe")
    parser.add_argument("--keep", action="store_true", help="keep the temp instance and logs")
    args = parser.parse_args(argv)
    seconds = args.seconds or (10.0 if args.quick else 30.0)

    db_url = bench_database_url()
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    tmp = Path(tempfile.mkdtemp(prefix="loupe-save-bench-"))
    instance = tmp / "instance"
    log(f"save bench: {args.clients} labelers, {seconds:g} s, gunicorn {args.workers} x {args.worker_class}"
        f"{f' ({args.threads} threads)' if args.worker_class == 'gthread' else ''}, saves via {'token API' if args.api else 'session (canvas)'}, think {args.think:g} s")
    log(f"  database: schema {SCHEMA} of {db_url.split('?')[0]}; redis {redis_url}; instance {instance}")

    schema_sql(db_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')  # a leftover of an interrupted run
    schema_sql(db_url, f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    assert pg_schema_of(db_url) == SCHEMA
    flush_redis(redis_url)
    server = None
    try:
        from app import create_app

        app = create_app({
            "LOUPE_INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": redis_url,
            "STORAGE_URL": f"file://{instance / 'storage'}", "SECRET_KEY": "save-bench-secret",
        })
        t0 = time.perf_counter()
        seeded = seed(app, args.clients, max(args.images, args.clients))
        log(f"  seeded {args.clients} labelers and {max(args.images, args.clients)} images in {time.perf_counter() - t0:.1f} s")

        port = free_port()
        env = dict(
            os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url, STORAGE_URL=f"file://{instance / 'storage'}",
            LOUPE_INSTANCE_DIR=str(instance), SECRET_KEY="save-bench-secret", PYTHONPATH=str(ROOT),
        )
        server = start_gunicorn(env, port, args.workers, args.worker_class, args.threads, tmp)
        log(f"  gunicorn pid {server.pid} on 127.0.0.1:{port}")

        phases = {"paced": run_phase(server, db_url, port, seeded, args, args.think, seconds, tmp / "access.log")}
        if not args.no_saturation:
            phases["saturated"] = run_phase(server, db_url, port, seeded, args, 0.0, seconds / 2, tmp / "access.log")
        stop(server)
        paced = phases["paced"]
        figures = {key: paced[key] for key in ("save_p50_ms", "save_p99_ms", "page_p50_ms", "page_p99_ms", "saves_per_s")}
        errors = sum(phase["errors"] for phase in phases.values())

        probe = None
        if not args.no_probe:
            probe = probe_in_process(app, seeded, args.api)
            log("")
            log("in-process replay (one request at a time, no contention):")
            for name in ("page", "save"):
                p = probe[name]
                log(f"  {name}: {p['ms']:.1f} ms ({p['cpu_ms']:.1f} ms of this process's CPU), {p['statements']:g} SQL statements taking {p['sql_ms']:.1f} ms, commit {p['commit_ms']:.1f} ms")
            for name in ("page", "save"):
                log(f"  statements of one {name}:")
                for statement, ms in probe[name]["last"]:
                    log(f"    {ms:6.2f} ms  {' '.join(statement.split())[:150]}")

        verdict = []
        if figures["save_p99_ms"] > SAVE_P99_TARGET:
            verdict.append(f"save p99 {figures['save_p99_ms']} ms > {SAVE_P99_TARGET:g}")
        if figures["page_p99_ms"] > PAGE_P99_TARGET:
            verdict.append(f"page p99 {figures['page_p99_ms']} ms > {PAGE_P99_TARGET:g}")
        if errors:
            verdict.append(f"{errors} errors")
        log("")
        log(f"targets apply to the paced phase ({args.clients} labelers, think {args.think:g} s):")
        log("MISSED: " + "; ".join(verdict) if verdict else f"OK: save p99 <= {SAVE_P99_TARGET:g} ms, page p99 <= {PAGE_P99_TARGET:g} ms")
        emit({
            **figures,
            "clients": args.clients, "workers": args.workers, "worker_class": args.worker_class, "threads": args.threads,
            "think_s": args.think, "save_path": "api" if args.api else "session",
            "save_statements": probe["save"]["statements"] if probe else None, "page_statements": probe["page"]["statements"] if probe else None,
            "save_in_process_ms": round(probe["save"]["ms"], 1) if probe else None,
            "page_in_process_ms": round(probe["page"]["ms"], 1) if probe else None,
            # CPU rather than time: on a busy machine the time waits for a core, the CPU does not.
            "save_in_process_cpu_ms": round(probe["save"]["cpu_ms"], 1) if probe else None,
            "page_in_process_cpu_ms": round(probe["page"]["cpu_ms"], 1) if probe else None,
            "phases": phases, "ok": not verdict,
        })
        return 0 if not errors else 1
    finally:
        if server is not None:
            stop(server)
        try:
            from core.extensions import db

            with app.app_context():
                db.session.remove()
                db.engine.dispose()
        except Exception:  # noqa: BLE001
            pass
        schema_sql(db_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        flush_redis(redis_url)
        if args.keep:
            log(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
