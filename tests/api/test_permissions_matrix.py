"""Every API route × every role → the status the permission table promises (SPEC sections 4 and 9).

Like CVAT's rule tests, one row per route; a new API route without a row fails
`test_every_api_route_has_a_row`.
"""

import io
from dataclasses import dataclass
from typing import Callable

import pytest

from core.extensions import db
from core.permissions import SCOPES
from services.accounts import create_token, revoke_token
from tests.factories import assign, image_bytes, token_for
from tests.support import actor
from tests.workforces.support import a_workforce, a_workforce_member, in_team

ROLES = ["admin", "owner", "manager", "reviewer", "labeler", "outsider"]


def allowed(ok: int, *roles: str) -> dict:
    """`ok` for the roles named, 403 for other members, 404 for an outsider (existence must not leak)."""
    return {role: ok if role in roles else 404 if role == "outsider" else 403 for role in ROLES}


def everyone(ok: int) -> dict:
    return {role: ok for role in ROLES}


def viewers(ok: int) -> dict:
    return allowed(ok, "admin", "owner", "manager", "reviewer", "labeler")


def owners(ok: int) -> dict:  # dataset:manage
    return allowed(ok, "admin", "owner")


def managers(ok: int) -> dict:  # dataset:import, dataset:members, job:cancel
    return allowed(ok, "admin", "owner", "manager")


def not_for_labelers(expected: dict) -> dict:  # job:view: a labeler sees only jobs they started, so the owner's do not exist
    return {**expected, "labeler": 404}


def upload_body(w, user) -> dict:
    return {"data": {"files": [(io.BytesIO(image_bytes(seed=99)), "new.jpg")]}, "content_type": "multipart/form-data"}


def annotation_import_body(w, user) -> dict:
    csv = b"image_name,label_name\nnew.jpg,cat\n"
    return {"data": {"kind": "annotations", "format": "csv", "file": (io.BytesIO(csv), "labels.csv")}, "content_type": "multipart/form-data"}


def with_revision(w, user) -> dict:
    """Give the image a revision 1 to restore."""
    from services.annotations import replace_annotations

    replace_annotations(w.image, w.owner, [], 0)
    return {}


def with_tag(w, body: dict) -> dict:
    """Tag the image "old", for the rename and delete rows."""
    from services.images import update_image

    update_image(w.image, tags=["old"])
    return body


def a_label(w) -> int:
    """A new label of the world's dataset, for the label rows."""
    import uuid

    from services.labels import create_label

    return create_label(w.dataset, name=f"label-{uuid.uuid4().hex[:8]}").id


def a_member(w) -> int:
    """A labeler's member row of the world's dataset, for the member rows to remove."""
    from models import DatasetMember
    from tests.support import member

    user = member(w.dataset, "labeler")
    return db.session.scalar(db.select(DatasetMember.id).where(DatasetMember.user_id == user.id))


def every_label(w) -> list[int]:
    from services.labels import list_labels

    a_label(w)
    return [label.id for label in list_labels(w.dataset)]


def failed(w) -> dict:
    """End the world's queued job as failed, for the retry row."""
    from models import JobStatus

    w.queued_job.status = JobStatus.failed
    db.session.commit()
    return {}


def public_dataset(w) -> int:
    from tests.factories import make_dataset

    return make_dataset(w.owner, name="Public source", public=True).id


def an_export(w) -> int:
    """A finished export of the world's dataset, its file in storage, for the export rows."""
    from core.storage import get_storage
    from models import Export

    export = Export(dataset_id=w.dataset.id, format="json", options={"format": "json"}, created_by_id=w.owner.id, file_name="cats.json")
    db.session.add(export)
    db.session.flush()
    export.storage_key = f"exports/{export.id}/cats.json"
    get_storage().put_bytes(export.storage_key, b'{"images": []}')
    db.session.commit()
    return export.id


def a_version(w) -> int:
    """A released (complete) version of the world's dataset, for the version rows."""
    from models import Version

    number = (db.session.scalar(db.select(db.func.max(Version.number)).where(Version.dataset_id == w.dataset.id)) or 0) + 1
    version = Version(dataset_id=w.dataset.id, number=number, labels=[], stats={}, complete=True, created_by_id=w.owner.id)
    db.session.add(version)
    db.session.commit()
    return version.id


def waiting_for_review(w, body: dict) -> dict:
    """Put the world's image in to_review, for the review rows; returns the body unchanged."""
    from models import ImageState

    w.image.state = ImageState.to_review
    db.session.commit()
    return body


def a_task(w) -> int:
    """A built task holding the world's image: the labeler's (the matrix assigns them {img} in a task
    of its own), or else one whose only member is the owner."""
    from models import Assignment, LabelingTask, TaskMember

    held = db.session.scalar(db.select(Assignment.task_id).where(Assignment.image_id == w.image.id))
    if held is not None:
        return held
    task = LabelingTask(dataset_id=w.dataset.id, name="Matrix", complete=True, image_count=1, created_by_id=w.owner.id)
    db.session.add(task)
    db.session.flush()
    db.session.add(TaskMember(task_id=task.id, user_id=w.owner.id))
    db.session.add(Assignment(task_id=task.id, image_id=w.image.id, labeler_id=w.owner.id))
    db.session.commit()
    return task.id


def sampled_task(w) -> int:
    """A task of the owner's whose one image (the world's) is accepted, for the sampling rows."""
    from tests.team_stats.support import accepted_task

    return accepted_task(w.dataset, w.owner, [w.image.id], name="Sampled").id


def a_sample(w) -> int:
    """A pending acceptance sample holding the world's image."""
    from models import LabelingTask
    from services.sampling import start_sample

    return start_sample(db.session.get(LabelingTask, sampled_task(w)), w.owner, rate=1).id


def samplers(ok: int, denied: int = 403) -> dict:  # task:sampling, sample:view / sample:decide: owners and site admins
    # The labeler does not work on the sampled task, so it does not exist for them.
    return {**{role: denied for role in ROLES}, "admin": ok, "owner": ok, "labeler": 404, "outsider": 404}


def task_member(w) -> int:
    from models import TaskMember

    return db.session.scalar(db.select(TaskMember.user_id).where(TaskMember.task_id == a_task(w)))


def new_dataset_member(w) -> int:
    from tests.support import member

    return member(w.dataset, "labeler").id


def a_repeated_task(w) -> int:
    """A task with repetition 2 over the world's other image: the owner and every labeler member hold a turn at it."""
    from models import Assignment, DatasetMember, LabelingTask, Role, TaskMember

    task = LabelingTask(dataset_id=w.dataset.id, name="Twice", repetition=2, complete=True, image_count=1, created_by_id=w.owner.id)
    db.session.add(task)
    db.session.flush()
    labelers = db.session.scalars(db.select(DatasetMember.user_id).where(DatasetMember.dataset_id == w.dataset.id, DatasetMember.role == Role.labeler))
    for user_id in [w.owner.id, *labelers]:
        db.session.add(TaskMember(task_id=task.id, user_id=user_id))
        db.session.add(Assignment(task_id=task.id, image_id=w.other.id, labeler_id=user_id))
    db.session.commit()
    return task.id


def handed_in_version(w, body: dict) -> dict:
    """A version of the world's image handed in by the owner, in a task that repeats it, for the keep row."""
    from models import Assignment, AssignmentState, LabelingTask

    task = LabelingTask(dataset_id=w.dataset.id, name="Kept", repetition=2, complete=True, image_count=1, created_by_id=w.owner.id)
    db.session.add(task)
    db.session.flush()
    db.session.add(Assignment(task_id=task.id, image_id=w.image.id, labeler_id=w.owner.id, state=AssignmentState.submitted, annotations=[]))
    db.session.commit()
    return body


def task_workers(ok: int) -> dict:  # task:work: the task's members (the owner, or the assigned labeler); others see it or not
    return {**allowed(ok, "owner", "labeler"), "admin": 403}


def reviewers(ok: int) -> dict:  # dataset:review: reviewers and up; a labeler never gives verdicts
    return allowed(ok, "admin", "owner", "manager", "reviewer")


# Workforces: the matrix's dataset roles stand for team roles (tests.workforces.support.in_team).
def creators(ok: int) -> dict:  # workforces:create: site admins, owners and managers of a dataset; nothing to hide
    return {**managers(ok), "outsider": 403}


@dataclass
class Row:
    endpoint: str
    method: str
    path: str  # formatted with ds, img, job and token (a token id of the caller's)
    expected: dict
    body: Callable = lambda w, user: {}


ROWS = [
    Row("api-accounts.me", "GET", "/api/v1/me", everyone(200)),
    Row("api-accounts.list_tokens", "GET", "/api/v1/tokens", everyone(200)),
    Row("api-accounts.create_token", "POST", "/api/v1/tokens", everyone(201), lambda w, u: {"json": {"name": "ci"}}),
    Row("api-accounts.revoke_token", "DELETE", "/api/v1/tokens/{token}", everyone(204)),
    Row("api-datasets.index", "GET", "/api/v1/datasets", everyone(200)),
    Row("api-datasets.create", "POST", "/api/v1/datasets", everyone(201), lambda w, u: {"json": {"name": "Dogs", "type": "classification"}}),
    Row("api-datasets.show", "GET", "/api/v1/datasets/{ds}", viewers(200)),
    Row("api-datasets.update", "PATCH", "/api/v1/datasets/{ds}", owners(200), lambda w, u: {"json": {"description": "new"}}),
    Row("api-datasets.delete", "DELETE", "/api/v1/datasets/{ds}", owners(202)),
    Row("api-datasets.refresh_counters", "POST", "/api/v1/datasets/{ds}/refresh-counters", managers(202)),
    Row("api-datasets.stats", "GET", "/api/v1/datasets/{ds}/stats", viewers(200)),
    Row("api-datasets.members", "GET", "/api/v1/datasets/{ds}/members", viewers(200)),
    Row("api-datasets.add_member", "POST", "/api/v1/datasets/{ds}/members", managers(201),
        lambda w, u: {"json": {"email": w.candidate.email, "role": "labeler"}}),
    Row("api-datasets.remove_member", "DELETE", "/api/v1/datasets/{ds}/members/{member}", managers(204)),
    Row("api-images.index", "GET", "/api/v1/datasets/{ds}/images", viewers(200)),
    Row("api-images.upload", "POST", "/api/v1/datasets/{ds}/images", managers(202), upload_body),
    Row("api-images.show", "GET", "/api/v1/datasets/{ds}/images/{img}", viewers(200)),
    Row("api-images.update", "PATCH", "/api/v1/datasets/{ds}/images/{img}", managers(200), lambda w, u: {"json": {"split": "train"}}),
    Row("api-images.delete", "DELETE", "/api/v1/datasets/{ds}/images/{img}", managers(204)),
    Row("api-images.show_external", "GET", "/api/v1/datasets/{ds}/images/external/ext-1", viewers(200)),
    Row("api-images.delete_many", "POST", "/api/v1/datasets/{ds}/images/delete", managers(200),
        lambda w, u: {"json": {"image_ids": [w.image.id]}}),
    Row("api-images.file", "GET", "/api/v1/datasets/{ds}/images/{img}/file", viewers(200)),
    Row("api-images.thumbnail", "GET", "/api/v1/datasets/{ds}/images/{img}/thumbnail", viewers(200)),
    Row("api-images.region", "GET", "/api/v1/datasets/{ds}/images/{img}/region?x=0&y=0&width=32&height=24&scale=0.5", viewers(200)),
    # Annotations: read with image:view, write with image:annotate (the labeler is assigned to {img}).
    Row("api-annotations.show", "GET", "/api/v1/datasets/{ds}/images/{img}/annotations", viewers(200)),
    Row("api-annotations.replace", "PUT", "/api/v1/datasets/{ds}/images/{img}/annotations", viewers(200),
        lambda w, u: {"json": {"revision": 0, "annotations": []}}),
    Row("api-annotations.submit", "POST", "/api/v1/datasets/{ds}/images/{img}/submit", viewers(200)),
    Row("api-annotations.skip", "POST", "/api/v1/datasets/{ds}/images/{img}/skip", viewers(200)),
    Row("api-annotations.history", "GET", "/api/v1/datasets/{ds}/images/{img}/history", viewers(200)),
    Row("api-annotations.restore", "POST", "/api/v1/datasets/{ds}/images/{img}/history/1/restore", viewers(200), with_revision),
    Row("api-tags.index", "GET", "/api/v1/datasets/{ds}/tags", viewers(200)),
    Row("api-tags.rename", "POST", "/api/v1/datasets/{ds}/tags/old/rename", managers(200), lambda w, u: with_tag(w, {"json": {"name": "new"}})),
    Row("api-tags.delete", "DELETE", "/api/v1/datasets/{ds}/tags/old", managers(200), lambda w, u: with_tag(w, {})),
    Row("api-labels.index", "GET", "/api/v1/datasets/{ds}/labels", viewers(200)),
    Row("api-labels.create", "POST", "/api/v1/datasets/{ds}/labels", managers(201), lambda w, u: {"json": {"name": "New"}}),
    Row("api-labels.update", "PATCH", "/api/v1/datasets/{ds}/labels/{lbl}", managers(200), lambda w, u: {"json": {"color": "#000000"}}),
    Row("api-labels.delete", "DELETE", "/api/v1/datasets/{ds}/labels/{lbl}", managers(202)),
    Row("api-labels.merge", "POST", "/api/v1/datasets/{ds}/labels/merge", managers(202),
        lambda w, u: {"json": {"label_ids": [a_label(w), a_label(w)], "name": "merged"}}),
    Row("api-labels.reorder", "POST", "/api/v1/datasets/{ds}/labels/reorder", managers(200), lambda w, u: {"json": {"label_ids": every_label(w)}}),
    Row("api-labels.copy", "POST", "/api/v1/datasets/{ds}/labels/copy", managers(200), lambda w, u: {"json": {"from_dataset_id": public_dataset(w)}}),
    Row("api-labels.refresh_counters", "POST", "/api/v1/datasets/{ds}/labels/refresh-counters", managers(202)),
    Row("api-labels.crops", "GET", "/api/v1/datasets/{ds}/labels/{lbl}/crops", managers(200)),  # an export of pixels
    # Exports: release versions, export, download (SPEC section 4): managers and up.
    Row("api-exports.create", "POST", "/api/v1/datasets/{ds}/exports", managers(202), lambda w, u: {"json": {"format": "json"}}),
    Row("api-imports.create", "POST", "/api/v1/datasets/{ds}/imports", managers(202), annotation_import_body),
    Row("api-exports.index", "GET", "/api/v1/datasets/{ds}/exports", managers(200)),
    Row("api-exports.csv_shortcut", "GET", "/api/v1/datasets/{ds}/csv?test=20&validation=10", managers(202)),
    Row("api-exports.show", "GET", "/api/v1/exports/{export}", managers(200)),
    Row("api-exports.download", "GET", "/api/v1/exports/{export}/download", managers(200)),
    Row("api-versions.index", "GET", "/api/v1/datasets/{ds}/versions", managers(200)),
    Row("api-versions.release", "POST", "/api/v1/datasets/{ds}/versions", managers(202), lambda w, u: {"json": {"note": "v"}}),
    Row("api-versions.show", "GET", "/api/v1/datasets/{ds}/versions/{ver}", managers(200)),
    Row("api-versions.compare", "GET", "/api/v1/datasets/{ds}/versions/compare?a={ver}&b={ver}", managers(200)),
    # Set splits (SPEC section 4): managers and up.
    Row("api-splits.split", "POST", "/api/v1/datasets/{ds}/split", managers(202),
        lambda w, u: {"json": {"train": 80, "validation": 10, "test": 10, "seed": 1}}),
    # Statistics of a task (the labeler works on {task}: their own row) and its acceptance sampling.
    Row("api-stats.task_stats", "GET", "/api/v1/tasks/{task}/stats", viewers(200)),
    Row("api-sampling.create", "POST", "/api/v1/tasks/{stask}/samples", samplers(201), lambda w, u: {"json": {"rate": 1}}),
    Row("api-sampling.index", "GET", "/api/v1/tasks/{stask}/samples", samplers(200)),
    # A sample is visible to owners only (sample:view): anyone else is told it does not exist.
    Row("api-samples.show", "GET", "/api/v1/samples/{sample}", samplers(200, denied=404)),
    Row("api-samples.decide", "POST", "/api/v1/samples/{sample}/items/{img}", samplers(200, denied=404), lambda w, u: {"json": {"verdict": "accept"}}),
    Row("api-jobs.show", "GET", "/api/v1/jobs/{job}", not_for_labelers(viewers(200))),
    Row("api-jobs.cancel", "POST", "/api/v1/jobs/{job}/cancel", not_for_labelers(managers(200))),
    Row("api-jobs.retry", "POST", "/api/v1/jobs/{job}/retry", not_for_labelers(managers(202)), lambda w, u: failed(w)),
    # Reviews (SPEC section 4): reviewers and up; the labeler is assigned to {img}, so sees it (403, not 404).
    Row("api-reviews.decide", "POST", "/api/v1/datasets/{ds}/images/{img}/review", reviewers(200),
        lambda w, u: waiting_for_review(w, {"json": {"verdict": "reject", "comment": "redo"}})),
    Row("api-reviews.decide_many", "POST", "/api/v1/datasets/{ds}/reviews", reviewers(200),
        lambda w, u: waiting_for_review(w, {"json": {"image_ids": [w.image.id], "verdict": "accept"}})),
    Row("api-reviews.next_image", "GET", "/api/v1/datasets/{ds}/reviews/next", reviewers(200), lambda w, u: waiting_for_review(w, {})),
    Row("api-reviews.rejection", "GET", "/api/v1/datasets/{ds}/images/{img}/rejection", viewers(200)),
    # Tasks (SPEC section 4): managers make and change them; everyone who sees the dataset sees its
    # tasks, a labeler only those they work on; only a task's members ask it for their next image.
    Row("api-tasks.index", "GET", "/api/v1/datasets/{ds}/tasks", viewers(200)),
    Row("api-tasks.create", "POST", "/api/v1/datasets/{ds}/tasks", managers(202),
        lambda w, u: {"json": {"name": "Boxes", "member_ids": [w.owner.id], "image_ids": [w.other.id]}}),
    Row("api-task.show", "GET", "/api/v1/tasks/{task}", viewers(200)),
    Row("api-task.delete", "DELETE", "/api/v1/tasks/{task}", managers(204)),
    Row("api-task.next_image", "GET", "/api/v1/tasks/{task}/next", task_workers(200)),
    Row("api-task.later", "POST", "/api/v1/tasks/{task}/later", task_workers(200), lambda w, u: {"json": {"image_id": w.image.id}}),
    Row("api-task.reassign", "POST", "/api/v1/tasks/{task}/reassign", managers(200),
        lambda w, u: {"json": {"from_member_id": None, "to_member_id": task_member(w)}}),
    Row("api-task.unassign", "POST", "/api/v1/tasks/{task}/unassign", managers(200), lambda w, u: {"json": {"from_member_id": None}}),
    Row("api-task.add_member", "POST", "/api/v1/tasks/{task}/members", managers(201), lambda w, u: {"json": {"user_id": new_dataset_member(w)}}),
    Row("api-task.remove_member", "DELETE", "/api/v1/tasks/{task}/members/{task_member}", managers(200)),
    # Repetition: a labeler's own version (the task's members), and the reviewer's view of all of them.
    Row("api-task.show_version", "GET", "/api/v1/tasks/{rtask}/images/{other}/version", task_workers(200)),
    Row("api-task.save_version", "PUT", "/api/v1/tasks/{rtask}/images/{other}/version", task_workers(200),
        lambda w, u: {"json": {"revision": 0, "annotations": []}}),
    Row("api-task.submit_version", "POST", "/api/v1/tasks/{rtask}/images/{other}/version/submit", task_workers(200)),
    Row("api-task.skip_version", "POST", "/api/v1/tasks/{rtask}/images/{other}/version/skip", task_workers(200)),
    Row("api-repetition.versions", "GET", "/api/v1/datasets/{ds}/images/{img}/versions", reviewers(200)),
    Row("api-repetition.keep", "POST", "/api/v1/datasets/{ds}/images/{img}/versions/keep", reviewers(200),
        lambda w, u: handed_in_version(w, {"json": {"merge": True}})),
    # Workforces (see TEAM_ROLE_OF): every member sees one, team admins (and its creator) manage it.
    Row("api-workforces.index", "GET", "/api/v1/workforces", everyone(200), lambda w, u: in_team(w, u)),
    Row("api-workforces.create", "POST", "/api/v1/workforces", creators(201), lambda w, u: {"json": {"name": "Day shift"}}),
    Row("api-workforces.show", "GET", "/api/v1/workforces/{wf}", viewers(200), lambda w, u: in_team(w, u)),
    Row("api-workforces.update", "PATCH", "/api/v1/workforces/{wf}", managers(200), lambda w, u: in_team(w, u, {"json": {"name": "Renamed"}})),
    Row("api-workforces.delete", "DELETE", "/api/v1/workforces/{wf}", managers(204), lambda w, u: in_team(w, u)),
    Row("api-workforces.members", "GET", "/api/v1/workforces/{wf}/members", viewers(200), lambda w, u: in_team(w, u)),
    Row("api-workforces.add_member", "POST", "/api/v1/workforces/{wf}/members", managers(201),
        lambda w, u: in_team(w, u, {"json": {"email": w.candidate.email, "role": "labeler"}})),
    Row("api-workforces.update_member", "PATCH", "/api/v1/workforces/{wf}/members/{wf_member}", managers(200),
        lambda w, u: in_team(w, u, {"json": {"role": "reviewer"}})),
    Row("api-workforces.remove_member", "DELETE", "/api/v1/workforces/{wf}/members/{wf_member}", managers(204), lambda w, u: in_team(w, u)),
    Row("api-workforces.create_invite", "POST", "/api/v1/workforces/{wf}/invites", managers(201), lambda w, u: in_team(w, u, {"json": {"hours": 1}})),
    # A dataset's workforces: dataset:members, and the workforce must be one the caller sees.
    Row("api-workforces.dataset_workforces", "GET", "/api/v1/datasets/{ds}/workforces", viewers(200), lambda w, u: in_team(w, u, attached=True)),
    Row("api-workforces.attach", "POST", "/api/v1/datasets/{ds}/workforces", managers(201),
        lambda w, u: in_team(w, u, {"json": {"workforce_id": a_workforce(w)}})),
    Row("api-workforces.detach", "DELETE", "/api/v1/datasets/{ds}/workforces/{wf}", managers(204), lambda w, u: in_team(w, u, attached=True)),
]

CASES = [pytest.param(row, role, id=f"{row.method} {row.path} as {role}") for row in ROWS for role in ROLES]


def _path(row: Row, w, token_id: int) -> str:
    lbl = a_label(w) if "{lbl}" in row.path else None  # a label only for the rows that name one
    member = a_member(w) if "{member}" in row.path else None
    export = an_export(w) if "{export}" in row.path else None
    ver = a_version(w) if "{ver}" in row.path else None
    task = a_task(w) if "{task}" in row.path else None
    member_of_task = task_member(w) if "{task_member}" in row.path else None
    repeated = a_repeated_task(w) if "{rtask}" in row.path else None
    stask = sampled_task(w) if "{stask}" in row.path else None
    sample = a_sample(w) if "{sample}" in row.path else None
    wf = a_workforce(w) if "{wf}" in row.path else None
    wf_member = a_workforce_member(w) if "{wf_member}" in row.path else None
    return row.path.format(
        ds=w.dataset.id, img=w.image.id, job=w.queued_job.id, token=token_id, lbl=lbl, member=member, export=export, ver=ver,
        task=task, task_member=member_of_task, stask=stask, sample=sample, wf=wf, wf_member=wf_member, rtask=repeated, other=w.other.id,
    )


@pytest.mark.parametrize("row, role", CASES)
def test_role_gets_the_promised_status(client, world, row, role):
    user = actor(world.dataset, role)
    if role == "labeler":
        assign(world.dataset, world.image.id, user)
    headers = token_for(user)
    spare, _ = create_token(user, "spare")
    response = client.open(_path(row, world, spare.id), method=row.method, headers=headers, **row.body(world, user))
    assert response.status_code == row.expected[role], response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        error = response.get_json()["error"]
        assert error["code"] in ("forbidden", "not_found") and error["message"]


def _revoked_token(user) -> dict:
    token, secret = create_token(user, "old")
    revoke_token(user, token.id)
    return {"Authorization": f"Token {secret}"}


CREDENTIALS = {
    "anonymous": lambda user: {},
    "wrong token": lambda user: {"Authorization": "Token loupe_not-a-real-token"},
    "revoked token": _revoked_token,
    "basic auth": lambda user: {"Authorization": "Basic b3duZXI6cGFzcw=="},
    "empty bearer": lambda user: {"Authorization": "Bearer "},
}


@pytest.mark.parametrize("row", [pytest.param(row, id=f"{row.method} {row.path}") for row in ROWS])
@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_no_valid_token_gets_401(client, world, row, credential):
    headers = CREDENTIALS[credential](world.owner)
    response = client.open(_path(row, world, 1), method=row.method, headers=headers, **row.body(world, world.owner))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_bearer_scheme_is_accepted(client, world):
    secret = token_for(world.owner)["Authorization"].split(" ", 1)[1]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200 and response.get_json()["id"] == world.owner.id


def test_labeler_sees_only_assigned_images(client, world):
    labeler = actor(world.dataset, "labeler")
    assign(world.dataset, world.image.id, labeler)
    headers = token_for(labeler)
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images", headers=headers).get_json()
    assert [i["id"] for i in listing["items"]] == [world.image.id] and listing["total"] == 1
    base = f"/api/v1/datasets/{world.dataset.id}/images/{world.other.id}"
    for path in (base, base + "/file", base + "/thumbnail"):
        assert client.get(path, headers=headers).status_code == 404, path
    world.other.external_id = "ext-2"
    db.session.commit()
    assert client.get(f"/api/v1/datasets/{world.dataset.id}/images/external/ext-2", headers=headers).status_code == 404


def test_outsider_sees_a_public_dataset_but_cannot_change_it(client, world):
    world.dataset.public = True
    db.session.commit()
    headers = token_for(actor(world.dataset, "outsider"))
    ds = f"/api/v1/datasets/{world.dataset.id}"
    assert client.get(ds, headers=headers).status_code == 200
    assert client.get(ds + "/images", headers=headers).get_json()["total"] == 2
    assert client.get(ds + "/stats", headers=headers).status_code == 200
    assert client.patch(ds, json={"name": "mine"}, headers=headers).status_code == 403
    assert client.delete(f"{ds}/images/{world.image.id}", headers=headers).status_code == 403


def test_tokens_of_others_cannot_be_revoked(client, world):
    other = actor(world.dataset, "manager")
    token, _ = create_token(world.owner, "owner's")
    response = client.delete(f"/api/v1/tokens/{token.id}", headers=token_for(other))
    assert response.status_code == 404


def test_every_api_route_has_a_row(app_ctx):
    routes = {
        (rule.endpoint, method)
        for rule in app_ctx.url_map.iter_rules()
        if rule.endpoint.startswith("api-") and not rule.endpoint.startswith("api-docs")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes == {(row.endpoint, row.method) for row in ROWS}


UNSCOPED = {"api-accounts.me", "api-accounts.list_tokens", "api-accounts.create_token", "api-accounts.revoke_token",
            "api-datasets.index", "api-datasets.create", "api-workforces.index"}


def test_every_api_route_on_a_dataset_or_job_checks_a_scope(app_ctx):
    for row in ROWS:
        scope = getattr(app_ctx.view_functions[row.endpoint], "permission_scope", None)
        if row.endpoint in UNSCOPED:
            assert scope is None  # the caller's own things; the token check is all they need
        else:
            assert scope in SCOPES, row.endpoint
