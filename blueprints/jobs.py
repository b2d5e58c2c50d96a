"""Jobs: the list, one job's live progress, cancel and run again."""

from flask import Blueprint
from flask_login import current_user

from core.htmx import render
from core.permissions import requires
from services import jobs as service

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.get("/")
def index():
    jobs = service.recent_jobs(current_user, limit=100)
    return render("jobs/index.html", "partials/jobs/_table.html", jobs=jobs, poll=any(j.status.active for j in jobs))


@bp.get("/<job_id>")
@requires("job:view")
def show(job):
    service.reconcile(job)
    return render("jobs/show.html", "partials/jobs/_status.html", job=job)


@bp.post("/<job_id>/cancel")
@requires("job:cancel")
def cancel(job):
    service.cancel_job(job)
    return render("jobs/show.html", "partials/jobs/_status.html", job=job)


@bp.post("/<job_id>/rerun")
@requires("job:cancel")
def rerun(job):
    service.rerun_job(job)
    return render("jobs/show.html", "partials/jobs/_status.html", job=job)
