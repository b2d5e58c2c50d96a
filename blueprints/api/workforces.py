"""Workforces (teams): list, create, get, rename, delete; members and their team roles; invite
links; and the workforces attached to a dataset."""

from flask import url_for
from flask_login import current_user
from marshmallow import Schema, fields, validate

from blueprints.api.base import Blueprint, Extended
from blueprints.api.schemas import Timestamp, name_rules
from core.errors import INT32_MAX
from core.permissions import requires
from models import WorkforceRole
from services import workforces as service

bp = Blueprint("api-workforces", __name__, url_prefix="/api/v1", description="Workforces (teams), their members and invite links")

ROLES = [role.value for role in WorkforceRole]
NAME_TAKEN = "Another workforce has this name (names are unique whatever their case)"
LAST_TEAM_ADMIN = "The member is the workforce's last team admin"


# ---- schemas (request types here; values are checked in services.workforces, as the pages do) ----


class WorkforceSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    created_by_id = fields.Integer(allow_none=True)
    created_at = Timestamp()
    member_count = fields.Integer()
    role = fields.String(allow_none=True, metadata={"enum": ROLES, "description": "The caller's team role; null when not a member"})


class WorkforceDatasetSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class WorkforceDetailSchema(WorkforceSchema):
    datasets = fields.List(fields.Nested(WorkforceDatasetSchema), metadata={"description": "The datasets it is attached to that the caller sees"})


class WorkforcePageSchema(Schema):
    items = fields.List(fields.Nested(WorkforceSchema))
    total = fields.Integer()
    next_offset = fields.Integer(allow_none=True)


class WorkforceListArgs(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, service.MAX_PAGE))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, INT32_MAX))


class WorkforceArgs(Schema):
    name = fields.String(required=True, metadata=name_rules(service.MAX_NAME, f"1 to {service.MAX_NAME} characters, unique (any case)"))


class WorkforceMemberSchema(Schema):
    id = fields.Integer()
    user_id = fields.Integer()
    email = fields.String()
    display_name = fields.String()
    active = fields.Boolean(metadata={"description": "False once the account is deactivated"})
    role = fields.Enum(WorkforceRole, by_value=True)


class WorkforceMemberArgs(Schema):
    email = fields.String(required=True, metadata={"format": "email", "description": "An active user's address"})
    role = fields.String(required=True, metadata={"enum": ROLES})


class WorkforceRoleArgs(Schema):
    role = fields.String(required=True, metadata={"enum": ROLES})


class InviteArgs(Schema):
    role = fields.String(load_default=WorkforceRole.labeler.value, metadata={"enum": ROLES})
    hours = fields.Integer(
        load_default=service.DEFAULT_INVITE_HOURS, strict=True, validate=validate.Range(1, service.MAX_INVITE_HOURS),
        metadata={"description": f"How long the link works (default {service.DEFAULT_INVITE_HOURS}, at most 30 days)"},
    )


class InviteSchema(Schema):
    id = fields.Integer()
    workforce_id = fields.Integer()
    role = fields.Enum(WorkforceRole, by_value=True)
    expires_at = Timestamp()
    url = fields.String(metadata={"description": "The sign-up link; shown only in this response"})
    token = fields.String(metadata={"description": "The link's secret; shown only in this response"})


class AttachedWorkforceSchema(Schema):
    id = fields.Integer(metadata={"description": "The workforce's id"})
    name = fields.String()
    member_count = fields.Integer()
    attached_at = Timestamp()


class AttachArgs(Schema):
    workforce_id = fields.Integer(required=True, strict=True, validate=validate.Range(1, INT32_MAX), metadata={"description": "A workforce the caller sees"})


# ---- helpers ---------------------------------------------------------------------------------


def _shown(workforces: list) -> list:
    counts, roles = service.member_counts(workforces), service.roles_in(current_user, workforces)
    return [
        Extended(w, member_count=counts[w.id], role=roles[w.id].value if roles[w.id] else None) for w in workforces
    ]


def _detail(workforce):
    [shown] = _shown([workforce])
    shown.datasets = service.datasets_of(workforce, current_user)
    return shown


def _member(member, user):
    return Extended(member, email=user.email, display_name=user.display_name, active=user.active)


def _attached(dataset, workforce_id: int | None = None) -> list:
    rows = service.workforces_of(dataset)
    counts = service.member_counts([w for w, _ in rows])
    return [Extended(w, member_count=counts[w.id], attached_at=link.created_at) for w, link in rows if workforce_id in (None, w.id)]


# ---- workforces ------------------------------------------------------------------------------


@bp.get("/workforces")
@bp.arguments(WorkforceListArgs, location="query")
@bp.response(200, WorkforcePageSchema)
def index(args):
    """The workforces the caller sees (site admins: all; others: those they made or belong to), by name."""
    items, total = service.list_workforces(current_user, limit=args["limit"], offset=args["offset"])
    next_offset = args["offset"] + args["limit"]
    return {"items": _shown(items), "total": total, "next_offset": next_offset if next_offset < total else None}


@bp.post("/workforces")
@requires("workforces:create")
@bp.arguments(WorkforceArgs)
@bp.response(201, WorkforceDetailSchema)
@bp.alt_response(409, description=NAME_TAKEN)
def create(args):
    """Create a workforce (site admins, and owners or managers of a dataset); the caller becomes its first team admin."""
    return _detail(service.create_workforce(args["name"], by=current_user))


@bp.get("/workforces/<int:workforce_id>")
@requires("workforce:view")
@bp.response(200, WorkforceDetailSchema)
def show(workforce):
    """One workforce, with the datasets it is attached to."""
    return _detail(workforce)


@bp.patch("/workforces/<int:workforce_id>")
@requires("workforce:manage")
@bp.arguments(WorkforceArgs)
@bp.response(200, WorkforceDetailSchema)
@bp.alt_response(409, description=NAME_TAKEN)
def update(args, workforce):
    """Rename a workforce."""
    return _detail(service.rename_workforce(workforce, args["name"]))


@bp.delete("/workforces/<int:workforce_id>")
@requires("workforce:manage")
@bp.response(204)
def delete(workforce):
    """Delete a workforce; its members hand back their open images of its tasks and lose the roles it gave them."""
    service.delete_workforce(workforce)


# ---- members ---------------------------------------------------------------------------------


@bp.get("/workforces/<int:workforce_id>/members")
@requires("workforce:view")
@bp.response(200, WorkforceMemberSchema(many=True))
def members(workforce):
    """The workforce's members and their team roles, team admins first."""
    return [_member(m, u) for m, u in service.list_members(workforce)]


@bp.post("/workforces/<int:workforce_id>/members")
@requires("workforce:manage")
@bp.arguments(WorkforceMemberArgs)
@bp.response(201, WorkforceMemberSchema)
@bp.alt_response(409, description="The user is a member already")
def add_member(args, workforce):
    """Add an existing, active user by email with a team role (404: no such user; 422: deactivated)."""
    return _member(*service.add_member(workforce, args["email"], args["role"]))


@bp.patch("/workforces/<int:workforce_id>/members/<int:workforce_member_id>")
@requires("workforce:manage")
@bp.arguments(WorkforceRoleArgs)
@bp.response(200, WorkforceMemberSchema)
@bp.alt_response(409, description=LAST_TEAM_ADMIN)
def update_member(args, workforce, workforce_member_id: int):
    """Change a member's team role; the last active team admin stays one (409)."""
    return _member(*service.change_role(workforce, workforce_member_id, args["role"]))


@bp.delete("/workforces/<int:workforce_id>/members/<int:workforce_member_id>")
@requires("workforce:manage")
@bp.response(204)
@bp.alt_response(409, description=LAST_TEAM_ADMIN)
def remove_member(workforce, workforce_member_id: int):
    """Take a member out; they hand back their open images of the workforce's tasks. Not the last team admin (409)."""
    service.remove_member(workforce, workforce_member_id)


@bp.post("/workforces/<int:workforce_id>/invites")
@requires("workforce:manage")
@bp.arguments(InviteArgs)
@bp.response(201, InviteSchema)
def create_invite(args, workforce):
    """Create a one-time sign-up link with a team role; its url and token are in this response and never again."""
    invite, token = service.create_invite(workforce, args["role"], args["hours"], by=current_user)
    return Extended(invite, token=token, url=url_for("workforces.invite", token=token, _external=True))


# ---- a dataset's workforces ------------------------------------------------------------------


@bp.get("/datasets/<int:dataset_id>/workforces")
@requires("dataset:view")
@bp.response(200, AttachedWorkforceSchema(many=True))
def dataset_workforces(dataset):
    """The workforces attached to the dataset: their members hold their team roles on it."""
    return _attached(dataset)


@bp.post("/datasets/<int:dataset_id>/workforces")
@requires("dataset:members")
@bp.arguments(AttachArgs)
@bp.response(201, AttachedWorkforceSchema)
@bp.alt_response(409, description="The workforce is attached already")
def attach(args, dataset):
    """Attach a workforce the caller sees (404 otherwise) to the dataset."""
    workforce, _ = service.attach(dataset, args["workforce_id"], by=current_user)
    [attached] = _attached(dataset, workforce.id)
    return attached


@bp.delete("/datasets/<int:dataset_id>/workforces/<int:workforce_id>")
@requires("dataset:members")
@bp.response(204)
def detach(dataset, workforce):
    """Detach a workforce; members left with no role on the dataset hand back their open images of its tasks."""
    service.detach(dataset, workforce)
