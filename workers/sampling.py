"""Send a failed acceptance sample's lot back to review (services/sampling.py).

An image sent back leaves the lot (services.sampling.lot_query), and each is committed on its own,
so a re-run after a crash or a cancel picks up exactly the images still to send back.
"""

from core.errors import NotFound
from core.extensions import db
from models import AcceptanceSample, SampleOutcome, User
from services import sampling
from workers.runtime import app_context, job_run


def send_back_lot(job_id: str, sample_id: int, user_id: int) -> dict:
    """Move every image of the sample's lot that is still accepted to to_review, recorded in its history."""
    with app_context(), job_run(job_id) as run:
        sample, user = db.session.get(AcceptanceSample, sample_id), db.session.get(User, user_id)
        if sample is None or user is None:
            raise NotFound("The sample, or the person who decided it, no longer exists")
        if sample.outcome != SampleOutcome.failed:
            run.job.message = f"Sample {sample_id} did not fail; nothing is sent back"
            run.job.result = {"sent_back": 0}
            return run.job.result
        # A re-run continues the counts of the run that stopped.
        done, sent = run.done, (run.job.result or {}).get("sent_back", 0)
        run.progress(done, done + sampling.lot_remaining(sample), f"Sending the lot of sample {sample_id} back for review", force=True)
        run.job.result, after = {"sent_back": sent}, 0
        while True:
            image_ids, sent_now = sampling.send_back_chunk(sample, user, after)
            if not image_ids:
                break
            after, sent, done = image_ids[-1], sent + sent_now, done + len(image_ids)
            run.job.result = {"sent_back": sent}
            db.session.commit()
            run.progress(done, max(run.total, done))
        run.job.message = f"Sent {sent:,} images of sample {sample_id}'s lot back for review"
        return run.job.result
