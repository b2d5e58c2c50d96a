"""The Versions page of a dataset: released versions with their statistics, a release form whose
job progress is polled in place, and the comparison of two versions."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from core.errors import INT32_MAX, Invalid, parse_int
from core.htmx import is_htmx, render
from core.permissions import requires
from services import versions as service

bp = Blueprint("versions", __name__, url_prefix="/datasets/<int:dataset_id>/versions")


def _releases(dataset, **extra) -> dict:
    versions, total, _ = service.list_versions(dataset)
    pending = service.pending_releases(dataset)
    return {
        "dataset": dataset, "versions": versions, "total": total, "pending": pending,
        "labels": {v.id: service.labels_with_stats(v) for v in versions}, "names": {v.id: v.name for v in versions},
        # The list polls while a release is queued or running, and stops once none is.
        "polling": any(job is not None and job.status.active for _, job in pending), **extra,
    }


@bp.get("/")
@requires("dataset:export")
def index(dataset):
    return render("versions/index.html", "versions/_releases.html", **_releases(dataset))


@bp.post("/")
@requires("dataset:export")
def release(dataset):
    job = service.release_version(dataset, current_user, request.form.get("note", ""))
    if not is_htmx():
        return redirect(url_for("versions.index", dataset_id=dataset.id), 303)
    return render("versions/index.html", "versions/_releases.html", **_releases(dataset, released=job.result.get("version")))


def _version_arg(name: str) -> int:
    try:
        return parse_int(request.args.get(name, ""), INT32_MAX)
    except ValueError:
        raise Invalid(f"Choose the version to compare as {name!r}", details={"field": name}) from None


@bp.get("/compare")
@requires("dataset:export")
def compare(dataset):
    a = service.get_version(dataset, _version_arg("a"))
    b = service.get_version(dataset, _version_arg("b"))
    return render(
        "versions/compare.html", "versions/_compare.html",
        dataset=dataset, comparison=service.compare(dataset, a, b), versions=service.list_versions(dataset)[0],
    )
