"""`python app.py`: Loupe on one machine, with the embedded Redis, one supervised worker and the web server."""

import argparse
import errno
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WATCH_EVERY_S = 1.0
# A worker that dies within this long of its start waits before the next start, doubling up to
# the cap, so a worker that cannot start (a broken database URL) does not spin a core.
QUICK_DEATH_S, MAX_BACKOFF_S = 10.0, 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python app.py", description="Run Loupe on its embedded defaults")
    parser.add_argument("--host", default=os.environ.get("LOUPE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOUPE_PORT", "5000")))
    parser.add_argument("--instance", default=os.environ.get("LOUPE_INSTANCE_DIR", "instance"))
    return parser.parse_args(argv)


def listen(host: str, port: int) -> socket.socket:
    """Bind the web server's socket, or exit with one line saying why.

    First thing of all: a busy port must stop the start before it migrates the database or creates
    (and so uses up) the one-time admin password. The server later serves on this same socket.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            sys.exit(f"Port {port} on {host} is already in use (is Loupe already running?); stop that program or start with --port {port + 1}.")
        sys.exit(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.")
    return sock


def admin_hint(instance: str) -> str:
    """The command that creates an admin for this instance, runnable as printed from this folder."""
    app_ref = "app" if os.path.abspath(os.getcwd()) == ROOT else os.path.join(ROOT, "app.py")
    return f"LOUPE_INSTANCE_DIR={shlex.quote(instance)} flask --app {shlex.quote(app_ref)} users create EMAIL --admin"


def _how(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Keeps one `python -m workers` process running: one that dies is started again, and said so.

    A job its work-horse was running when the worker died is not lost: the horse finishes it on
    its own, or the job shows as failed and can be run again (services/jobs.py).
    """

    def __init__(self, env: dict):
        self.env = env
        self.stopping = threading.Event()
        self.process = self._start()
        self.thread = threading.Thread(target=self._watch, name="worker supervisor", daemon=True)
        self.thread.start()

    def _start(self) -> subprocess.Popen:
        self.started = time.monotonic()
        # WARNING: RQ's per-job INFO lines would bury the URL and credentials the start prints. A
        # session of its own: Ctrl+C reaches the launcher only, which then stops the worker itself.
        return subprocess.Popen(
            [sys.executable, "-m", "workers", "--logging-level", "WARNING"], cwd=ROOT, env=self.env, start_new_session=True
        )

    def _watch(self) -> None:
        backoff = 1.0
        while not self.stopping.wait(WATCH_EVERY_S):
            code = self.process.poll()
            if code is None:
                continue
            if time.monotonic() - self.started < QUICK_DEATH_S:
                if self.stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                backoff = 1.0
            self.process = self._start()
            print(f"The worker stopped ({_how(code)}); started a new one (pid {self.process.pid}).", flush=True)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _upgrade_quietly() -> None:
    """Migrate without Alembic's INFO lines: the start prints the URL and the credentials, not migration logs."""
    from flask_migrate import upgrade

    logging.disable(logging.INFO)
    try:
        upgrade()
    finally:
        logging.disable(logging.NOTSET)


def main(create_app, argv: list[str] | None = None) -> None:
    """Run Loupe on one machine: embedded Redis, one supervised worker, the web server."""
    args = parse_args(argv)
    sock = listen(args.host, args.port)
    instance = os.path.abspath(args.instance)
    os.environ["LOUPE_INSTANCE_DIR"] = instance

    from core.queues import get_redis, redis_url_of, stop_embedded_redis
    from services.accounts import create_user, needs_first_admin

    app = create_app()
    with app.app_context():
        _upgrade_quietly()
        # The worker process joins this process's Redis (embedded or not) through its URL.
        os.environ["REDIS_URL"] = app.config["REDIS_URL"] = redis_url_of(get_redis())
        credentials = None
        if needs_first_admin():
            user, password = create_user("admin@localhost", display_name="Admin", is_admin=True)
            credentials = (user.email, password)
    supervisor = Supervisor(os.environ.copy())
    print(f"\nLoupe is running at http://{args.host}:{args.port}/")
    if credentials:
        print(f"Sign in as {credentials[0]} with password {credentials[1]} (shown once; change it on your profile).")
    else:
        print(f"Sign in with an existing account; to create an admin: {admin_hint(instance)}")
    print(f"Data lives in {instance}. Stop with Ctrl+C.\n", flush=True)
    # A plain `kill` must also stop the worker and the embedded Redis, not orphan them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        from core.http import serve  # waitress.serve, answering its 413 in Loupe's error shape

        serve(app, sockets=[sock], threads=8, max_request_body_size=app.config["MAX_CONTENT_LENGTH"])
    finally:
        supervisor.stop()
        with app.app_context():
            stop_embedded_redis(get_redis())
