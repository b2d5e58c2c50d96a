"""Flask CLI for operators and scripts: `flask --app app users create`, `flask --app app tokens create`."""

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import inspect

from core.errors import LoupeError
from core.extensions import db
from models import User
from services.accounts import create_token, create_user


@with_appcontext
def _require_schema() -> None:
    """Say what to do, rather than print a traceback, on a database that has no tables yet."""
    if not inspect(db.engine).has_table(User.__tablename__):
        where = db.engine.url.render_as_string(hide_password=True)
        raise click.ClickException(
            f"The database {where} has no tables yet: run `python app.py` once, or `flask --app app db upgrade`, then try again."
        )


# The groups' callback runs before any of their commands.
users = AppGroup("users", help="Manage user accounts.", callback=_require_schema)
tokens = AppGroup("tokens", help="Manage API tokens.", callback=_require_schema)


@users.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Make the user a site admin.")
@click.option("--password", help="The password (generated and printed when left out).")
@click.option("--name", default="", help="Display name.")
def users_create(email: str, admin: bool, password: str | None, name: str) -> None:
    """Create a user account."""
    try:
        user, password_used = create_user(email, password, display_name=name, is_admin=admin)
    except LoupeError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Created {'admin ' if admin else ''}{user.email}" + ("" if password else f" with password {password_used}"))


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="A name for the token.")
def tokens_create(email: str, name: str) -> None:
    """Create an API token for a user and print it (shown once)."""
    user = User.by_email(email)
    if user is None:
        raise click.ClickException(f"No user with the email {email}")
    _, secret = create_token(user, name)
    click.echo(secret)


def register_cli(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(tokens)
