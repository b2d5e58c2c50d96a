"""Helpers the worker tests share: uploads through the real service, slow-to-decode images, polling."""

import io
import struct
import time
import zlib

from PIL import Image as PILImage
from sqlalchemy import select, text

from core.extensions import db
from models import Job
from services import images as images_service
from services.job_kinds import ALLOW, JobKind


def upload_files(dataset, user, files: list[tuple[str, bytes]]):
    """Send files through begin_upload/add_file/finish_upload, as the upload page does; returns (upload, job)."""
    upload = images_service.begin_upload(dataset, user)
    for name, data in files:
        images_service.add_file(upload, name, io.BytesIO(data))
    job = images_service.finish_upload(upload, user)
    return upload, job


def with_png_text(png: bytes, text: str) -> bytes:
    """The same PNG pixels with a tEXt chunk added: a distinct sha256 without re-encoding."""
    payload = b"Comment\x00" + text.encode()
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload + struct.pack(">I", zlib.crc32(b"tEXt" + payload))
    end = png.rindex(b"IEND") - 4  # the IEND chunk starts with its 4-byte length
    return png[:end] + chunk + png[end:]


def slow_pngs(count: int, size=(1600, 1200)) -> list[tuple[str, bytes]]:
    """Small files (a few KB) that take ~20 ms each to decode and thumbnail, so a job runs for seconds."""
    out = io.BytesIO()
    PILImage.new("RGB", size, (40, 90, 160)).save(out, "PNG")
    base = out.getvalue()
    return [(f"slow-{i:04d}.png", with_png_text(base, f"image {i}")) for i in range(count)]


def read_job(job_id: str) -> dict:
    """The job row as another process sees it now (own connection, so no stale snapshot)."""
    with db.engine.connect() as conn:
        row = conn.execute(
            select(Job.status, Job.done, Job.total, Job.message, Job.cancel_requested).where(Job.id == job_id)
        ).one()
    return {"status": getattr(row.status, "value", row.status), "done": row.done, "total": row.total,
            "message": row.message, "cancel_requested": row.cancel_requested}


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# Errors a job body can end on, as infrastructure raises them: each names server paths or code.
FAILURES = {
    "missing file": lambda: open("/srv/loupe/instance/storage/ab/cdef0123", "rb"),
    "database": lambda: db.session.execute(text("SELECT * FROM no_such_table_in_/srv/loupe")),
    "key": lambda: {}["/home/loupe/app/workers/imports.py"],
    "multi-line": lambda: (_ for _ in ()).throw(RuntimeError('Traceback (most recent call last):\n  File "/usr/lib/python3.11/x.py", line 1')),
    "zero": lambda: 1 / 0,
}


def lose_in_rq(job_id: str) -> None:
    """What a flushed or crashed Redis leaves: the row, no RQ job, and the moment past in which a
    row may not be enqueued yet (services.jobs.ENQUEUE_GRACE)."""
    from rq.job import Job as RQJob

    from core.queues import get_redis
    from services.jobs import ENQUEUE_GRACE

    RQJob.fetch(job_id, connection=get_redis()).delete()
    job = db.session.get(Job, job_id)
    job.created_at -= ENQUEUE_GRACE * 2
    db.session.commit()


# A kind of job of the tests' own: its body, failing_job, ends on the failure it is given.
FAILING = JobKind("check", "tests.workers.helpers.failing_job", "datasets", None, ALLOW)


def failing_job(job_id: str, failure: str) -> None:
    """A job body (run by a real RQ worker inside the real job runtime) that ends on FAILURES[failure]."""
    from core.errors import Invalid
    from workers.runtime import app_context, job_run

    with app_context(), job_run(job_id):
        if failure == "domain":
            raise Invalid("The manifest's third line has no URL")
        FAILURES[failure]()
