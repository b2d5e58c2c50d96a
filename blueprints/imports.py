"""The Import annotations page: send an annotation file (or a ZIP of a format's folder layout,
with or without its images), start the job, and see the dataset's past annotation imports."""

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user

from core.errors import LoupeError
from core.permissions import requires
from formats import IMPORTS
from services import annotation_imports as service
from services.job_kinds import IMPORT_ANNOTATIONS
from services.jobs import recent_jobs

bp = Blueprint("imports", __name__, url_prefix="/datasets/<int:dataset_id>/imports")


def _page(dataset, status: int = 200, error: str | None = None):
    jobs = [job for job in recent_jobs(current_user, dataset, limit=200) if job.kind == IMPORT_ANNOTATIONS.key][:20]
    return render_template("imports/new.html", dataset=dataset, formats=IMPORTS.values(), jobs=jobs, error=error,
                           chosen=request.form.get("format", "")), status


@bp.get("/")
@requires("dataset:import")
def new(dataset):
    return _page(dataset)


@bp.post("/")
@requires("dataset:import")
def create(dataset):
    try:
        job = service.start_import(dataset, current_user, request.form, request.files.get("file"))
    except LoupeError as exc:
        if exc.status not in (409, 422):
            raise
        return _page(dataset, exc.status, exc.message)
    return redirect(url_for("jobs.show", job_id=job.id), 303)
