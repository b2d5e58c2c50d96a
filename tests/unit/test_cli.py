"""The operator CLI: `flask --app app users create` and `flask --app app tokens create`."""

import os
import subprocess

import pytest

from core.extensions import db
from models import ApiToken, User
from services.accounts import user_for_token
from tests.conftest import ROOT
from tests.support import BAD_EMAILS, GOOD_EMAILS


def test_users_create_makes_an_admin_with_a_generated_password_it_prints(app_ctx):
    result = app_ctx.test_cli_runner().invoke(args=["users", "create", "Ops@Example.com", "--admin"])

    assert result.exit_code == 0, result.output
    user = User.by_email("ops@example.com")
    assert user.is_admin and user.email == "ops@example.com"
    password = result.output.strip().rsplit(" ", 1)[-1]
    assert user.check_password(password)


def test_users_create_with_a_given_password_does_not_print_it(app_ctx):
    result = app_ctx.test_cli_runner().invoke(args=["users", "create", "a@example.com", "--password", "long-enough-pw"])

    assert result.exit_code == 0 and "long-enough-pw" not in result.output
    assert User.by_email("a@example.com").check_password("long-enough-pw")


def test_users_create_refuses_a_duplicate_and_a_short_password_with_a_clear_error(app_ctx):
    runner = app_ctx.test_cli_runner()
    runner.invoke(args=["users", "create", "a@example.com", "--password", "long-enough-pw"])

    duplicate = runner.invoke(args=["users", "create", "A@example.com"])
    short = runner.invoke(args=["users", "create", "b@example.com", "--password", "short"])

    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    assert short.exit_code != 0 and "at least 8 characters" in short.output
    assert db.session.scalar(db.select(db.func.count(User.id))) == 1


def test_tokens_create_prints_a_working_token_stored_only_as_a_hash(app_ctx):
    runner = app_ctx.test_cli_runner()
    runner.invoke(args=["users", "create", "bot@example.com", "--password", "long-enough-pw"])

    result = runner.invoke(args=["tokens", "create", "bot@example.com", "--name", "ci"])

    secret = result.output.strip()
    assert result.exit_code == 0 and secret.startswith(ApiToken.PREFIX)
    assert user_for_token(secret).email == "bot@example.com"
    assert db.session.scalar(db.select(ApiToken.token_hash)) != secret


def test_tokens_create_for_an_unknown_user_fails_clearly(app_ctx):
    result = app_ctx.test_cli_runner().invoke(args=["tokens", "create", "nobody@example.com"])

    assert result.exit_code != 0 and "No user with the email nobody@example.com" in result.output


@pytest.mark.parametrize("email", BAD_EMAILS, ids=repr)
def test_users_create_refuses_what_is_not_an_email_address(app_ctx, email):
    result = app_ctx.test_cli_runner().invoke(args=["users", "create", email, "--password", "long-enough-pw"])

    assert result.exit_code != 0 and "is not an email address" in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(db.select(db.func.count(User.id))) == 0


@pytest.mark.parametrize("email,stored", GOOD_EMAILS.items())
def test_users_create_accepts_real_addresses_and_the_launchers_localhost_admin(app_ctx, email, stored):
    result = app_ctx.test_cli_runner().invoke(args=["users", "create", email, "--password", "long-enough-pw"])

    assert result.exit_code == 0, result.output
    assert db.session.scalar(db.select(User.email)) == stored


# ---- an instance whose database has no tables yet (issue 7) --------------------------------


@pytest.fixture
def empty_app(backend, tmp_path):
    """An app on a database with no tables: a fresh SQLite file, or a fresh PostgreSQL schema."""
    import uuid

    from sqlalchemy import create_engine, text

    from tests.conftest import make_app

    url, admin, schema = f"sqlite:///{tmp_path / 'empty.db'}", None, None
    pg_url = os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        schema = f"loupe_empty_{uuid.uuid4().hex[:8]}"
        admin = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}"
    app = make_app({**backend, "database_url": url})
    yield app
    with app.app_context():
        db.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


NO_TABLES = "has no tables yet: run `python app.py` once, or `flask --app app db upgrade`, then try again."


@pytest.mark.parametrize("args", [
    ["users", "create", "ops@example.com", "--admin"],
    ["users", "create", "ops@example.com", "--password", "long-enough-pw"],
    ["tokens", "create", "ops@example.com"],
])
def test_a_cli_command_on_an_uninitialised_database_says_what_to_do(empty_app, args):
    result = empty_app.test_cli_runner().invoke(args=args)

    assert result.exit_code == 1
    assert result.output.startswith("Error: The database ") and result.output.strip().endswith(NO_TABLES), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_flask_command_on_a_new_instance_folder_says_what_to_do_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SECRET_KEY")}
    env["LOUPE_INSTANCE_DIR"] = str(tmp_path / "new-instance")
    result = subprocess.run(
        ["flask", "--app", "app", "users", "create", "ops@example.com", "--admin"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.strip().endswith(NO_TABLES), result.stderr
