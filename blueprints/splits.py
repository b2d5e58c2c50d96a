"""The grid's Auto-split action: the selection, or every image the grid's filter matches, split by a job."""

from flask import Blueprint, redirect, request, url_for
from flask_login import current_user

from core.errors import INT64_MAX, Invalid, parse_int
from core.htmx import fragment, is_htmx
from core.permissions import requires
from services import splits as service
from services.images import ImageFilter

bp = Blueprint("splits", __name__, url_prefix="/datasets/<int:dataset_id>/images")


def _whole(name: str, default: str) -> int:
    try:
        return parse_int(request.form.get(name, default) or default, INT64_MAX)
    except ValueError:
        raise Invalid(f"{name} must be a whole number", details={"field": name}) from None


@bp.post("/auto-split")
@requires("dataset:import")
def auto_split(dataset):
    """Sent by the grid bar like its other bulk actions (static/js/app.js): the filter in the query,
    the selection (or all_matching) and the percentages in the form."""
    f = ImageFilter.from_args(request.args)
    image_ids = None
    if not request.form.get("all_matching"):
        try:
            image_ids = [parse_int(i) for i in request.form.getlist("image_ids")]
        except ValueError:
            raise Invalid("image_ids must be image ids", details={"field": "image_ids"}) from None
        if not image_ids:
            raise Invalid("Select images first, or select all matching the filter")
    job = service.auto_split(
        dataset, current_user, _whole("train", "0"), _whole("validation", "0"), _whole("test", "0"),
        _whole("seed", "0"), request.form.get("only_unassigned") == "1", f, image_ids,
    )
    if not is_htmx():
        return redirect(url_for("jobs.show", job_id=job.id), 303)
    return fragment(
        "partials/images/_auto_split_result.html", dataset=dataset, job=job,
        notice=f"A job is splitting {job.total:,} image{'' if job.total == 1 else 's'}; its progress is below",
    )
