"""Loupe: create_app() for every process, and `python app.py`, the one-machine launcher."""

import argparse
import os
import signal
import subprocess
import sys

from flask import Flask, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from core.config import load_config
from core.errors import LoupeError
from core.extensions import api, csrf, db, htmx, login_manager, migrate
from core.htmx import is_htmx


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, error handlers and CLI. No side effects."""
    app = Flask(__name__, instance_path=None)
    app.config.update(load_config(config))

    import models  # noqa: F401  (registers every table with SQLAlchemy and Alembic)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    api.init_app(app)

    from blueprints import register_blueprints
    from cli import register_cli

    register_blueprints(app)
    register_cli(app)
    _register_error_handlers(app)
    _register_template_helpers(app)
    return app


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # SQLite ignores foreign keys (and so ON DELETE) unless asked, per connection; WAL lets the
    # worker write while pages read.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def wants_json() -> bool:
    """API routes, and page endpoints called by our own scripts (upload.js asks for JSON)."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, code: str, message: str, details=None):
    """One shape for every error: JSON under /api, a partial for HTMX, a page otherwise."""
    if wants_json():
        body = {"error": {"code": code, "message": message}}
        if details is not None:
            body["error"]["details"] = details
        return jsonify(body), status
    if status == 401:
        login = url_for("auth.login", next=request.full_path if request.method == "GET" else None)
        if is_htmx():
            return "", 401, {"HX-Redirect": login}
        return redirect(login)
    template = "partials/_error.html" if is_htmx() else "error.html"
    return render_template(template, status=status, code=code, message=message), status


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LoupeError)
    def domain_error(exc: LoupeError):
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            413: f"The request is larger than the limit of {human_size(app.config['MAX_CONTENT_LENGTH'])}",
            405: "This method is not allowed here",
            404: "Not found",
        }
        code = (exc.name or "error").lower().replace(" ", "_")
        message = messages.get(exc.code) or exc.description or exc.name
        if exc.code == 400 and "CSRF" in (exc.description or ""):
            code, message = "csrf_failed", "The form expired or was sent from elsewhere; reload the page and try again"
        details = getattr(exc, "data", {}).get("messages") if exc.code == 422 else None
        if details:
            code, message = "invalid", _validation_message(details)
        return error_response(exc.code or 500, code, message, details)


def _validation_message(messages: dict) -> str:
    parts = []
    for location, fields in messages.items():
        for field, problems in (fields.items() if isinstance(fields, dict) else [(location, fields)]):
            text = problems if isinstance(problems, str) else "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
            parts.append(f"{field}: {text}")
    return "Invalid input — " + "; ".join(parts)


def _register_template_helpers(app: Flask) -> None:
    from core.permissions import can

    @app.context_processor
    def inject():
        return {"can": lambda scope, obj=None: can(current_user, scope, obj)}

    app.add_template_filter(human_size, "filesize")


def human_size(n: int | None) -> str:
    """Bytes for a person: 1.5 MB, 1 MB, 640 B."""
    n = n or 0
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f}".removesuffix(".0") + f" {unit}"
        n /= 1024


def main(argv: list[str] | None = None) -> None:
    """Run Loupe on one machine: embedded Redis, one worker, the web server."""
    parser = argparse.ArgumentParser(description="Run Loupe on its embedded defaults")
    parser.add_argument("--host", default=os.environ.get("LOUPE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOUPE_PORT", "5000")))
    parser.add_argument("--instance", default=os.environ.get("LOUPE_INSTANCE_DIR", "instance"))
    args = parser.parse_args(argv)
    os.environ["LOUPE_INSTANCE_DIR"] = os.path.abspath(args.instance)

    from flask_migrate import upgrade

    from core.queues import get_redis, redis_url_of, stop_embedded_redis
    from services.accounts import create_user, needs_first_admin

    app = create_app()
    with app.app_context():
        upgrade()
        # The worker process joins this process's Redis (embedded or not) through its URL.
        os.environ["REDIS_URL"] = app.config["REDIS_URL"] = redis_url_of(get_redis())
        credentials = None
        if needs_first_admin():
            user, password = create_user("admin@localhost", display_name="Admin", is_admin=True)
            credentials = (user.email, password)
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=here, env=os.environ.copy())
    url = f"http://{args.host}:{args.port}/"
    print(f"\nLoupe is running at {url}")
    if credentials:
        print(f"Sign in as {credentials[0]} with password {credentials[1]} (shown once; change it on your profile).")
    else:
        print("Sign in with an existing account (create one: flask --app app users create EMAIL --admin).")
    print(f"Data lives in {app.config['LOUPE_INSTANCE_DIR']}. Stop with Ctrl+C.\n", flush=True)
    # A plain `kill` must also stop the worker and the embedded Redis, not orphan them.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        from waitress import serve

        serve(app, host=args.host, port=args.port, threads=8, max_request_body_size=app.config["MAX_CONTENT_LENGTH"])
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        with app.app_context():
            stop_embedded_redis(get_redis())


if __name__ == "__main__":
    main()
