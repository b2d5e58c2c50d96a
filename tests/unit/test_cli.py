"""The operator CLI: `flask --app app users create` and `flask --app app tokens create`."""

from core.extensions import db
from models import ApiToken, User
from services.accounts import user_for_token


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
