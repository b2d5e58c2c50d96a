"""Jobs: poll one, cancel one."""

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
def cancel(job):
    """Cancel a queued job at once, or ask a running one to stop."""
    return service.cancel_job(job)
