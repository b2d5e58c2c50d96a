"""Datasets: list, create, get, update, delete (a job), counters, stats and members."""

from flask import url_for
from flask_login import current_user

from blueprints.api.base import Blueprint, Extended, starts_deletion
from blueprints.api.labels import as_seen
from blueprints.api.schemas import (
    DatasetCreateArgs, DatasetListArgs, DatasetPageSchema, DatasetSchema, DatasetUpdateArgs, JobSchema,
    MemberArgs, MemberSchema,
)
from blueprints.api.stats import DatasetStatsSchema
from core.permissions import requires
from services import datasets as service
from services import team_stats

bp = Blueprint("api-datasets", __name__, url_prefix="/api/v1/datasets", description="Datasets, their counters and members")

LAST_OWNER = "The user owns the dataset, or is its last owner"

QUERY_FIELDS = ("search", "type", "archived", "sort", "order", "limit", "offset")


def _with_labels(dataset):
    labels = as_seen(dataset, service.labels_of([dataset])[dataset.id])
    return Extended(dataset, labels=labels, **service.counters_of([dataset], current_user)[dataset.id])


@bp.get("")
@bp.arguments(DatasetListArgs, location="query")
@bp.response(200, DatasetPageSchema)
def index(args):
    """The datasets the caller may see, one page at a time (offset paging)."""
    q = service.DatasetQuery(**{name: value for name, value in args.items() if name in QUERY_FIELDS})
    datasets, total = service.list_datasets(current_user, q)
    # A labeler's counters, the labels' too, are over their assigned images only.
    extra = service.counters_of(datasets, current_user)
    if args["with_labels"]:
        labels = service.labels_of(datasets)
        for dataset in datasets:
            extra[dataset.id]["labels"] = as_seen(dataset, labels[dataset.id])
    if args["preview"]:
        for dataset_id, image_ids in service.preview_image_ids(datasets, current_user).items():
            extra[dataset_id]["preview"] = [
                url_for("api-images.thumbnail", dataset_id=dataset_id, image_id=image_id) for image_id in image_ids
            ]
    next_offset = q.offset + q.limit
    return {
        "items": [Extended(d, **extra[d.id]) for d in datasets],
        "total": total,
        "next_offset": next_offset if next_offset < total else None,
    }


@bp.post("")
@bp.arguments(DatasetCreateArgs)
@bp.response(201, DatasetSchema)
def create(args):
    """Create a dataset; the caller becomes its owner."""
    return _with_labels(service.create_dataset(current_user, args["name"], args["type"], args["description"]))


@bp.get("/<int:dataset_id>")
@requires("dataset:view")
@bp.response(200, DatasetSchema)
def show(dataset):
    """One dataset with its counters and labels (as every single-dataset answer has)."""
    return _with_labels(dataset)


@bp.patch("/<int:dataset_id>")
@requires("dataset:manage")
@bp.arguments(DatasetUpdateArgs)
@bp.response(200, DatasetSchema)
def update(changes, dataset):
    """Rename, describe, archive or publish a dataset (owner or admin)."""
    return _with_labels(service.update_dataset(dataset, **changes))


@bp.delete("/<int:dataset_id>")
@requires("dataset:manage")
@bp.response(202, JobSchema)
@starts_deletion
def delete(dataset):
    """Delete a dataset and its images in a job (owner or admin); asked again meanwhile, the same job."""
    return service.request_delete(dataset, current_user)


@bp.post("/<int:dataset_id>/refresh-counters")
@requires("dataset:import")
@bp.response(202, JobSchema)
def refresh_counters(dataset):
    """Recompute the dataset's counters from its rows, in a job."""
    return service.request_refresh_counters(dataset, current_user)


@bp.get("/<int:dataset_id>/stats")
@requires("dataset:view")
@bp.response(200, DatasetStatsSchema)
def stats(dataset):
    """Image counts in all, by state and by split; the labeling tasks' and members' statistics."""
    return {**service.stats(dataset, current_user), **team_stats.dataset_team_stats(dataset, current_user)}


@bp.get("/<int:dataset_id>/members")
@requires("dataset:view")
@bp.response(200, MemberSchema(many=True))
def members(dataset):
    """Who holds which role on the dataset."""
    return service.list_members(dataset)


@bp.post("/<int:dataset_id>/members")
@requires("dataset:members")
@bp.arguments(MemberArgs)
@bp.response(201, MemberSchema)
@bp.alt_response(409, description=LAST_OWNER)
def add_member(args, dataset):
    """Give an existing user a role on the dataset, or change the role they hold.

    Only an owner or a site admin grants or takes away the owner role (403), nobody raises their
    own role (403), and the last owner keeps it (409).
    """
    return service.add_member(dataset, args["email"], args["role"], by=current_user)


@bp.delete("/<int:dataset_id>/members/<int:member_id>")
@requires("dataset:members")
@bp.response(204)
@bp.alt_response(409, description=LAST_OWNER)
def remove_member(dataset, member_id: int):
    """Take a member's role away; an owner only by an owner or a site admin, never the last owner (409)."""
    service.remove_member(dataset, member_id, by=current_user)
