"""The caller (the signed-in user, or the token's) and their API tokens."""

from flask_login import current_user

from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import NewTokenSchema, TokenArgs, TokenSchema, UserSchema
from services import accounts as service

bp = Blueprint("api-accounts", __name__, url_prefix="/api/v1", description="The caller and their API tokens")


@bp.get("/me")
@bp.response(200, UserSchema)
def me():
    """The caller: the signed-in user, or the user the token belongs to."""
    return current_user


@bp.get("/tokens")
@bp.response(200, TokenSchema(many=True))
def list_tokens():
    """The caller's tokens that are not revoked (without their secrets)."""
    return service.list_tokens(current_user)


@bp.post("/tokens")
@bp.arguments(TokenArgs)
@bp.response(201, NewTokenSchema)
def create_token(args):
    """Create a token; its secret is in this response and never again."""
    token, secret = service.create_token(current_user, args["name"])
    return Extended(token, token=secret)


@bp.delete("/tokens/<int:token_id>")
@bp.response(204)
def revoke_token(token_id: int):
    """Revoke one of the caller's tokens."""
    service.revoke_token(current_user, token_id)
