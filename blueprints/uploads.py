"""Uploading images from the browser: per-file requests into an upload batch, then its import job."""

from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from core.errors import Invalid
from core.permissions import requires
from services import images as service

bp = Blueprint("uploads", __name__, url_prefix="/datasets/<int:dataset_id>/upload")


def outcome_json(outcome: service.FileOutcome) -> dict:
    return {"name": outcome.name, "stored": outcome.stored, "reason": outcome.reason, "size": outcome.size}


@bp.get("/")
@requires("dataset:import")
def new(dataset):
    return render_template("uploads/new.html", dataset=dataset)


@bp.post("/")
@requires("dataset:import")
def create(dataset):
    """Without JavaScript: one form post with every file, then the job page."""
    files = request.files.getlist("files")
    if not files or all(not f.filename for f in files):
        raise Invalid("Choose at least one file to upload", details={"field": "files"})
    upload = service.begin_upload(dataset, current_user, request.form.get("split") or None)
    service.store_files(upload, files, [], request.form.get("folder", ""))
    job = service.finish_upload(upload, current_user)
    return redirect(url_for("jobs.show", job_id=job.id), 303)


@bp.post("/batches")
@requires("dataset:import")
def begin(dataset):
    upload = service.begin_upload(dataset, current_user, request.form.get("split") or None)
    return jsonify(
        upload_id=upload.id,
        files_url=url_for("uploads.add_files", dataset_id=dataset.id, upload_id=upload.id),
        finish_url=url_for("uploads.finish", dataset_id=dataset.id, upload_id=upload.id),
    ), 201


@bp.post("/batches/<int:upload_id>/files")
@requires("dataset:import")
def add_files(dataset, upload_id: int):
    upload = service.get_upload(dataset, upload_id, current_user)
    files = request.files.getlist("files")
    if not files:
        raise Invalid("No file in the request", details={"field": "files"})
    outcomes = service.store_files(upload, files, request.form.getlist("paths"), request.form.get("folder", ""))
    return jsonify(files=[outcome_json(o) for o in outcomes])


@bp.post("/batches/<int:upload_id>/finish")
@requires("dataset:import")
def finish(dataset, upload_id: int):
    upload = service.get_upload(dataset, upload_id, current_user)
    job = service.finish_upload(upload, current_user)
    return render_template("partials/jobs/_status.html", job=job)
