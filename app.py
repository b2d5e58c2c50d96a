"""Loupe: create_app() for every process, and `python app.py`, the one-machine launcher."""

import os

import psycopg
from flask import Flask, jsonify, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from psycopg.pq import ExecStatus, TransactionStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.pool import Pool
from werkzeug.exceptions import HTTPException

from core import http
from core.config import load_config
from core.errors import LoupeError
from core.extensions import api, csrf, db, htmx, login_manager, migrate
from core.htmx import is_htmx
from services.shapes import svg_points


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
    http.init_app(app)

    from blueprints import register_blueprints
    from cli import register_cli

    register_blueprints(app)
    register_cli(app)
    _register_error_handlers(app)
    _register_template_helpers(app)
    _register_request_hooks(app)
    return app


def _register_request_hooks(app: Flask) -> None:
    @app.after_request
    def end_reads_with_commit(response):
        # A request's transaction otherwise ends in the teardown's ROLLBACK, and on every ROLLBACK
        # psycopg forgets the statements it prepared on the connection: PostgreSQL then parses and
        # plans each statement of every page and save afresh, half its CPU on the labeling path.
        # A GET answered without error writes nothing that is not committed already (services
        # commit their own changes), so ending it with COMMIT instead keeps the same data.
        if request.method in ("GET", "HEAD") and response.status_code < 400:
            db.session.commit()
        return response


@event.listens_for(Pool, "checkout")
def _begin_on_checkout(dbapi_connection, _record, _proxy):
    # pool_pre_ping's liveness check, without its round trip: psycopg sends a BEGIN of its own
    # before a transaction's first statement, so sending that BEGIN here, as the connection leaves
    # the pool, proves the connection alive at no extra cost. A dead one (the server restarted,
    # the backend was terminated) fails here, and the pool replaces it before anyone uses it.
    # psycopg reads the transaction's status from libpq, so it sends no BEGIN of its own after it.
    # Connections that begin otherwise (autocommit, or an isolation level of their own: none of
    # the app's) are left to psycopg. SQLite needs no check: a file does not go away.
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None or dbapi_connection.autocommit or pgconn.transaction_status != TransactionStatus.IDLE:
        return
    if (dbapi_connection.isolation_level, dbapi_connection.read_only, dbapi_connection.deferrable) != (None, None, None):
        return
    try:
        result = pgconn.exec_(b"BEGIN")
    except psycopg.OperationalError as exc:  # libpq could not even send it
        raise DisconnectionError(str(exc)) from exc
    if result.status != ExecStatus.COMMAND_OK:
        raise DisconnectionError((result.error_message or b"BEGIN failed").decode(errors="replace"))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    # SQLite ignores foreign keys (and so ON DELETE) unless asked, per connection; WAL lets the
    # worker write while pages read. Every process (web, `python -m workers`, a bare `rq worker`)
    # imports this module through create_app(), so every connection gets these.
    #
    # Concurrent writers wait in busy_timeout rather than fail with "database is locked". That is
    # enough, with no retry or BEGIN IMMEDIATE, because the sqlite3 driver (legacy transaction
    # control, which SQLAlchemy keeps) opens a transaction only at its first INSERT/UPDATE/DELETE:
    # reads before it hold no snapshot, so no transaction ever upgrades from reading to writing (the
    # SQLITE_BUSY that waiting cannot cure), and reads never queue behind writers as they would if
    # every transaction began IMMEDIATE. What is left is a write held longer than the timeout,
    # which bounded requests (services/images.py MAX_BULK, MAX_TAGS_PER_IMAGE) and jobs that
    # commit in chunks prevent. Turning on the driver's autocommit=False or a "BEGIN" event would
    # change this and need BEGIN IMMEDIATE for writes.
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

    @app.errorhandler(OperationalError)
    def database_busy(exc: OperationalError):
        # SQLite only: a write that waited out the whole busy timeout behind another one. Rare (see
        # _sqlite_pragmas), and nothing of this request was kept, so it is safe to send again.
        if "database is locked" not in str(exc.orig):
            raise exc
        db.session.rollback()
        response = make_response(error_response(503, "database_busy", "The database is busy with another change; nothing was saved, try again in a moment"))
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            # The request's own limit: a JSON body has a smaller one than an upload (core/http.py).
            413: f"The request is larger than the limit of {human_size(request.max_content_length)}",
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
        response = make_response(error_response(exc.code or 500, code, message, details))
        # Keep the headers the exception's own answer carries, e.g. Allow on a 405 (RFC 9110).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response


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
    app.add_template_filter(svg_points, "svg_points")


def human_size(n: int | None) -> str:
    """Bytes for a person: 1.5 MB, 1 MB, 640 B."""
    n = n or 0
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f}".removesuffix(".0") + f" {unit}"
        n /= 1024


def main(argv: list[str] | None = None) -> None:
    """`python app.py`: the one-machine launcher (core/launcher.py)."""
    from core.launcher import main as launch

    launch(create_app, argv)


if __name__ == "__main__":
    main()
