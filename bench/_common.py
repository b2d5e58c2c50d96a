"""Shared helpers for the hand-run benchmarks in bench/ (not tests)."""

import json
import os
import statistics
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / ".data"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-123"


def log(*parts) -> None:
    print(*parts, flush=True)


def emit(figures: dict) -> None:
    """The benchmark's last line: one JSON object."""
    print(json.dumps(figures, sort_keys=False, default=str), flush=True)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def pg_schema_of(url: str) -> str | None:
    """The schema named by `?options=-csearch_path=NAME` in a PostgreSQL URL, if any."""
    query = parse_qs(urlsplit(url).query)
    for option in query.get("options", []):
        for part in option.split():
            if part.startswith("-csearch_path="):
                return part.split("=", 1)[1].split(",")[0].strip('"')
    return None


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "postgresql+"))


def ensure_pg_schema(url: str) -> str | None:
    """Create the URL's dedicated schema (search_path) if missing; never touches any other schema."""
    from sqlalchemy import create_engine, text

    from core.config import database_url

    schema = pg_schema_of(url)
    if schema is None:
        return None
    base = url.split("?", 1)[0]
    engine = create_engine(database_url(base), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()
    return schema


def backend_name(url: str) -> str:
    return "postgresql" if is_postgres(url) else "sqlite"


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def bench_app(instance, database_url: str):
    """A Loupe app on the given instance folder and database, as the benchmarks drive it."""
    from app import create_app

    return create_app({
        "LOUPE_INSTANCE_DIR": str(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": env_or_none("REDIS_URL") or "",
        "STORAGE_URL": f"file://{instance / 'storage'}",
        "SECRET_KEY": "bench-secret",
        "WTF_CSRF_ENABLED": False,
    })
