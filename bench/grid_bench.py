"""Grid benchmark: the image grid's HTMX partial, server side, on a dataset of a million images.

    python bench/grid_bench.py             # 1,000,000 rows
    python bench/grid_bench.py --quick     # 200,000 rows
    DATABASE_URL='postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dloupe_bench' \
    REDIS_URL=redis://127.0.0.1:6379/14 python bench/grid_bench.py --quick

Seeding is a bulk INSERT (sqlite3 executemany; COPY on PostgreSQL) of realistic rows into one
dataset, plus a 1,000-image dataset; both are KEPT (SQLite: bench/.data/grid_<rows>.db; PostgreSQL:
the schema named by the URL's search_path, created if missing) so a re-run skips seeding.

Each case is a Flask test-client GET of /datasets/<id>/images/ with `HX-Request: true`, signed in
(through POST /login) as the datasets' owner: warm-up requests, then the median of many. Cases:
first page, a deep page (cursor 150 rows before the end), a filter (split=test), a tag filter
(tag=night; every image carries one of five tags), and the first page
of the 1,000-image dataset. Each request is split into SQL time (DBAPI execute), template time
(Flask's before_render_template -> template_rendered) and the rest, and the page query's plan
(EXPLAIN QUERY PLAN / EXPLAIN ANALYZE) is printed. The last line is JSON.
Targets: every median <= 30 ms; deep / small <= 1.5.
"""

import argparse
import hashlib
import os
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from _common import DATA, PASSWORD, backend_name, bench_app, emit, ensure_pg_schema, env_or_none, is_postgres, log, median, pg_schema_of

TARGET_MS = 30.0
TARGET_RATIO = 1.5
EMAIL = "grid-bench@example.com"
SPLITS = [("train", 0.60), ("validation", 0.15), ("test", 0.15), ("unassigned", 0.10)]
STATES = [("unlabeled", 0.55), ("in_progress", 0.10), ("to_review", 0.10), ("accepted", 0.20), ("rejected", 0.05)]
SIZES = [(1280, 960), (1920, 1080), (4032, 3024), (640, 480), (1080, 1920)]
COLUMNS = [
    "dataset_id", "folder_id", "file_name", "storage_key", "width", "height", "byte_size", "format",
    "orientation", "phash", "split", "external_id", "state", "created_by_id", "created_at",
]


TAGS = ["blur", "day", "fog", "night", "rain"]


def _pick(rng: random.Random, weighted):
    r, acc = rng.random(), 0.0
    for value, weight in weighted:
        acc += weight
        if r < acc:
            return value
    return weighted[-1][0]


def rows_for(dataset_id: int, owner_id: int, count: int, seed: int):
    """Realistic image rows, generated lazily in id order."""
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    for i in range(count):
        width, height = SIZES[rng.randrange(len(SIZES))]
        yield (
            dataset_id, None, f"img_{i:06d}.jpg",
            hashlib.sha256(f"{seed}:{dataset_id}:{i}".encode()).hexdigest(),
            width, height, rng.randrange(80_000, 4_000_000), "jpeg", 1, f"{rng.getrandbits(64):016x}",
            _pick(rng, SPLITS), None, _pick(rng, STATES), owner_id, start + timedelta(seconds=i),
        )


def bulk_insert(engine, dataset_id: int, owner_id: int, count: int, seed: int) -> float:
    """Insert `count` rows as fast as the driver allows; returns seconds."""
    t0 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if engine.dialect.name == "postgresql":
            with driver.cursor() as cursor:
                with cursor.copy(f"COPY image ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows_for(dataset_id, owner_id, count, seed):
                        copy.write_row(row)
            driver.commit()
        else:
            sql = f"INSERT INTO image ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
            cursor = driver.cursor()
            batch = []
            for row in rows_for(dataset_id, owner_id, count, seed):
                batch.append(row[:-1] + (row[-1].isoformat(sep=" "),))
                if len(batch) >= 50_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
            driver.commit()
            cursor.close()
    finally:
        raw.close()
    return time.perf_counter() - t0


def seeded_dataset(name: str, owner, count: int, seed: int) -> tuple[int, bool]:
    """The dataset called `name` holding `count` images: reused when complete, else (re)seeded."""
    from sqlalchemy import delete, func, select, update

    from core.extensions import db
    from models import Dataset, Image, Tag
    from services.datasets import create_dataset

    dataset = db.session.scalar(select(Dataset).where(Dataset.name == name, Dataset.owner_id == owner.id))
    if dataset is not None and dataset.image_count == count:
        if not db.session.scalar(select(func.count()).select_from(Tag).where(Tag.dataset_id == dataset.id)):
            tag_every_image(dataset.id)  # kept from before the bench tagged its images
        return dataset.id, False
    if dataset is not None:  # an interrupted seeding: start over
        db.session.execute(delete(Image).where(Image.dataset_id == dataset.id))
        db.session.delete(dataset)
        db.session.commit()
    dataset = create_dataset(owner, name, "detection")
    dataset_id = dataset.id
    log(f"seeding {count:,} rows into dataset {dataset_id} ({name}) ...")
    seconds = bulk_insert(db.engine, dataset_id, owner.id, count, seed)
    total_bytes = db.session.scalar(select(func.coalesce(func.sum(Image.byte_size), 0)).where(Image.dataset_id == dataset_id))
    db.session.execute(update(Dataset).where(Dataset.id == dataset_id).values(image_count=count, total_bytes=total_bytes))
    db.session.commit()
    tag_every_image(dataset_id)
    log(f"  seeded in {seconds:.1f} s ({count / seconds:,.0f} rows/s), every image with one of {len(TAGS)} tags")
    return dataset_id, True


def tag_every_image(dataset_id: int) -> None:
    """Give every image one free tag, round robin: the grid lists tags (with counts) on every page."""
    from sqlalchemy import case, insert, literal, select

    from core.extensions import db
    from models import Image, ImageTag, Tag
    from services.images import recount_tags

    db.session.execute(insert(Tag), [{"dataset_id": dataset_id, "name": name} for name in TAGS])
    tag_ids = db.session.scalars(select(Tag.id).where(Tag.dataset_id == dataset_id).order_by(Tag.name)).all()
    which = case({i: literal(tag_id) for i, tag_id in enumerate(tag_ids)}, value=Image.id % len(tag_ids))
    db.session.execute(
        insert(ImageTag).from_select(["image_id", "tag_id"], select(Image.id, which).where(Image.dataset_id == dataset_id))
    )
    recount_tags(dataset_id)  # the counters the app keeps, as its refresh job computes them
    db.session.commit()


class RequestProbe:
    """Per request: SQL statements and their DBAPI time, and template rendering time."""

    def __init__(self, app, engine):
        from flask import before_render_template, template_rendered
        from sqlalchemy import event

        self.statements: list[tuple[str, object, float]] = []
        self.render_s = 0.0
        self._sql_t0: list[float] = []
        self._tpl_t0: list[float] = []

        def before_exec(conn, cursor, statement, parameters, context, executemany):
            self._sql_t0.append(time.perf_counter())

        def after_exec(conn, cursor, statement, parameters, context, executemany):
            self.statements.append((statement, parameters, time.perf_counter() - self._sql_t0.pop()))

        def before_tpl(sender, template, context, **extra):
            self._tpl_t0.append(time.perf_counter())

        def after_tpl(sender, template, context, **extra):
            # Nested renders (includes are not separate renders in Jinja, so this is one level).
            if self._tpl_t0:
                self.render_s += time.perf_counter() - self._tpl_t0.pop()

        event.listen(engine, "before_cursor_execute", before_exec)
        event.listen(engine, "after_cursor_execute", after_exec)
        # blinker holds receivers weakly: keep them alive on the probe.
        self._receivers = (before_tpl, after_tpl)
        before_render_template.connect(before_tpl, app, weak=False)
        template_rendered.connect(after_tpl, app, weak=False)

    def reset(self):
        self.statements, self.render_s = [], 0.0

    @property
    def sql_s(self) -> float:
        return sum(s[2] for s in self.statements)


def time_cases(client, probe, cases: dict, warmup: int, repeats: int) -> dict:
    """Time every case round-robin (one request of each per round) so background load on a shared
    machine hits all cases alike; per case: median/p90/min wall ms, SQL ms, template ms."""
    headers = {"HX-Request": "true"}
    for _ in range(warmup):
        for url in cases.values():
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
    samples = {name: {"total": [], "sql": [], "render": [], "count": []} for name in cases}
    last = {}
    for _ in range(repeats):
        for name, url in cases.items():
            probe.reset()
            t0 = time.perf_counter()
            response = client.get(url, headers=headers)
            elapsed = time.perf_counter() - t0
            assert response.status_code == 200
            s = samples[name]
            s["total"].append(1000 * elapsed)
            s["sql"].append(1000 * probe.sql_s)
            s["render"].append(1000 * probe.render_s)
            s["count"].append(len(probe.statements))
            last[name] = (response.get_data(), list(probe.statements))
    results = {}
    for name, s in samples.items():
        totals = sorted(s["total"])
        body, statements = last[name]
        results[name] = {
            "median_ms": median(totals), "p90_ms": totals[int(0.9 * (len(totals) - 1))], "min_ms": totals[0],
            "sql_ms": median(s["sql"]), "render_ms": median(s["render"]), "statements": median(s["count"]),
            "tiles": body.count(b'class="tile"'), "bytes": len(body), "last_statements": statements,
        }
    return results


def explain(engine, statement: str, parameters) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            return "\n".join(r[0] for r in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(f"{'  ' * 0}{r[-1]}" for r in rows)


def reset_bench_database(app, database_url: str) -> None:
    """Throw away the kept bench database: the SQLite file, or the dedicated PostgreSQL schema only."""
    from sqlalchemy import create_engine, text

    from core.config import database_url as normalized
    from core.extensions import db

    db.session.remove()
    db.engine.dispose()
    if is_postgres(database_url):
        schema = pg_schema_of(database_url)
        engine = create_engine(normalized(database_url.split("?", 1)[0]), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    else:
        path = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def migrate(app, database_url: str) -> None:
    """flask_migrate.upgrade(). A kept bench database whose migration history no longer matches the
    checkout's (migrations rewritten) is dropped and rebuilt once; a migration that fails even on
    an empty database is a bug, and fails the run."""
    from flask_migrate import upgrade

    from core.extensions import db

    try:
        upgrade()
        return
    except Exception as exc:  # noqa: BLE001
        log(f"upgrade() failed on the kept bench database ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); rebuilding it")
    db.session.rollback()
    reset_bench_database(app, database_url)
    upgrade()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows (kept in bench/.data between runs)")
    parser.add_argument("--rows", type=int, help="rows in the big dataset (default 1,000,000; --quick 200,000)")
    parser.add_argument("--small", type=int, default=1000, help="rows in the small dataset (default 1000)")
    parser.add_argument("--repeats", type=int, default=60, help="timed requests per case (median)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE on SQLite first (the app itself never does)")
    args = parser.parse_args(argv)
    rows = args.rows or (200_000 if args.quick else 1_000_000)

    from sqlalchemy import select, text

    from core.extensions import db
    from core.queues import get_redis
    from models import Image, User

    DATA.mkdir(parents=True, exist_ok=True)
    database_url = env_or_none("DATABASE_URL") or f"sqlite:///{DATA / f'grid_{rows}.db'}"
    backend = backend_name(database_url)
    if is_postgres(database_url):
        schema = ensure_pg_schema(database_url)
        if schema is None:
            log("refusing to seed PostgreSQL without a dedicated schema: add ?options=-csearch_path%3Dloupe_bench")
            return 2
        log(f"PostgreSQL schema {schema} (kept between runs)")
    instance = DATA / "grid_instance"
    app = bench_app(instance, database_url)
    try:
        with app.app_context():
            t0 = time.perf_counter()
            migrate(app, database_url)
            owner = db.session.scalar(select(User).where(User.email == EMAIL))
            if owner is None:
                owner = User(email=EMAIL, display_name="Grid bench")
                owner.set_password(PASSWORD)
                db.session.add(owner)
                db.session.commit()
            big_id, seeded_big = seeded_dataset(f"grid-bench-{rows}", owner, rows, seed=rows)
            small_id, seeded_small = seeded_dataset(f"grid-bench-small-{args.small}", owner, args.small, seed=7)
            if backend == "postgresql":
                # What autovacuum does on a running server soon after a bulk insert; without it the
                # planner guesses and scans image_tag whole for a page's tags.
                db.session.execute(text("ANALYZE image, image_tag, tag"))
                db.session.commit()
            if backend == "sqlite" and args.analyze:
                db.session.execute(text("ANALYZE"))
                db.session.commit()
            stat_tables = ""
            if backend == "sqlite":
                stat_tables = "present" if db.session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name='sqlite_stat1'")) else "absent (no ANALYZE ever run, as in the app)"
            total_rows = db.session.scalar(select(db.func.count()).select_from(Image))
            # Cursor 150 rows before the end of the big dataset: a full page follows it.
            deep_cursor = db.session.scalar(
                select(Image.id).where(Image.dataset_id == big_id).order_by(Image.id.desc()).offset(150).limit(1)
            )
            log(f"backend {backend}; big dataset {big_id} ({rows:,} rows{', seeded now' if seeded_big else ', reused'}), "
                f"small dataset {small_id} ({args.small:,} rows); image table {total_rows:,} rows; "
                f"setup {time.perf_counter() - t0:.1f} s" + (f"; sqlite_stat1 {stat_tables}" if stat_tables else ""))
            engine = db.engine

        probe = RequestProbe(app, engine)
        client = app.test_client()
        response = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert response.status_code in (302, 303), response.get_data(as_text=True)[:300]

        cases = {
            "first": f"/datasets/{big_id}/images/",
            "deep": f"/datasets/{big_id}/images/?cursor={deep_cursor}",
            "filtered": f"/datasets/{big_id}/images/?split=test",
            "tagged": f"/datasets/{big_id}/images/?tag=night",
            "small": f"/datasets/{small_id}/images/",
            # Extra, not a target: a filter deep into the dataset.
            "filtered_deep": f"/datasets/{big_id}/images/?split=test&cursor={deep_cursor - 3000}",
        }
        results = time_cases(client, probe, cases, args.warmup, args.repeats)
        log(f"\n{'case':14s} {'median':>8s} {'p90':>8s} {'min':>8s} {'sql':>7s} {'render':>7s} {'stmts':>5s} {'tiles':>5s}  url")
        for name, url in cases.items():
            r = results[name]
            log(f"{name:14s} {r['median_ms']:7.2f}ms {r['p90_ms']:7.2f}ms {r['min_ms']:7.2f}ms {r['sql_ms']:6.2f}ms "
                f"{r['render_ms']:6.2f}ms {r['statements']:5.0f} {r['tiles']:5d}  {url}")

        log("\nSQL of one request per case (DBAPI ms):")
        for name, r in results.items():
            log(f"-- {name}")
            for statement, _params, seconds in r["last_statements"]:
                log(f"   {1000 * seconds:7.3f} ms  {' '.join(statement.split())[:170]}")

        log("\nQuery plans of the page (and count) queries:")
        for name, r in results.items():
            for statement, params, _ in r["last_statements"]:
                flat = " ".join(statement.split())
                if "FROM image" in flat and ("ORDER BY image.id" in flat or "count(" in flat.lower()):
                    kind = "page" if "ORDER BY image.id" in flat else "count"
                    log(f"-- {name} ({kind}): {flat[:200]}")
                    log("   " + explain(engine, statement, params).replace("\n", "\n   "))

        first, deep, filtered, tagged, small = (results[k]["median_ms"] for k in ("first", "deep", "filtered", "tagged", "small"))
        ratio = deep / small
        ok = max(first, deep, filtered, tagged, small) <= TARGET_MS and ratio <= TARGET_RATIO
        log(f"\nfirst {first:.2f} ms, deep {deep:.2f} ms, filtered {filtered:.2f} ms, tagged {tagged:.2f} ms, small {small:.2f} ms; "
            f"deep/small {ratio:.2f} -> {'meets' if ok else 'MISSES'} the targets (<= {TARGET_MS:.0f} ms each, ratio <= {TARGET_RATIO})")
        figures = {
            "bench": "grid", "backend": backend, "rows": rows, "small_rows": args.small,
            "schema": pg_schema_of(database_url) if backend == "postgresql" else None,
            "first_ms": round(first, 2), "deep_ms": round(deep, 2), "filtered_ms": round(filtered, 2), "tagged_ms": round(tagged, 2), "small_ms": round(small, 2),
            "ratio_deep_to_small": round(ratio, 3),
            "filtered_deep_ms": round(results["filtered_deep"]["median_ms"], 2),
            "p90_ms": {k: round(v["p90_ms"], 2) for k, v in results.items()},
            "sql_ms": {k: round(v["sql_ms"], 2) for k, v in results.items()},
            "render_ms": {k: round(v["render_ms"], 2) for k, v in results.items()},
            "statements": {k: v["statements"] for k, v in results.items()},
            "repeats": args.repeats, "loadavg_1m": round(os.getloadavg()[0], 2), "target_ms": TARGET_MS, "target_ratio": TARGET_RATIO, "targets_met": ok,
        }
        emit(figures)
        return 0 if ok else 1
    finally:
        with app.app_context():
            redis = get_redis() if "loupe.redis" in app.extensions else None
            if redis is not None and hasattr(redis, "_cleanup"):
                try:
                    redis._cleanup()
                except Exception:
                    pass


if __name__ == "__main__":
    sys.exit(main())
