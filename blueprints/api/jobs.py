"""Jobs: poll one, cancel one, run one again."""

from blueprints.api.base import Blueprint
from blueprints.api.schemas import JobSchema
from core.permissions import requires
from services import jobs as service

bp = Blueprint("api-jobs", __name__, url_prefix="/api/v1/jobs", description="Long operations (imports, deletes, counters)")


@bp.get("/<job_id>")
@requires("job:view")
@bp.response(200, JobSchema)
def show(job):
    """A job's status and progress; a job whose worker died is reported failed."""
    return service.reconcile(job)


@bp.post("/<job_id>/cancel")
@requires("job:cancel")
@bp.response(200, JobSchema)
@bp.alt_response(409, description="The job has already ended")
def cancel(job):
    """Cancel a queued job at once, or ask a running one to stop."""
    return service.cancel_job(job)


@bp.post("/<job_id>/retry")
@requires("job:cancel")
@bp.response(202, JobSchema)
@bp.alt_response(409, description="The job is queued, running or finished: only a failed or cancelled job runs again")
def retry(job):
    """Run a failed (for instance interrupted) or cancelled job again; it continues where it stopped."""
    return service.rerun_job(job)
