"""Every web route × every role → the status the permission table promises (SPEC section 4).

The table below must name every non-static, non-API route of the app: a new route without a
row fails `test_every_web_route_has_a_row_in_the_permission_matrix`.
"""

import io
from dataclasses import dataclass, field
from typing import Callable

import pytest

from core.extensions import db
from models import Dataset, DatasetMember, Image, Job, JobStatus, User, Workforce
from services import accounts
from services import images as image_service
from services.datasets import request_refresh_counters
from services.jobs import cancel_job
from tests.factories import PASSWORD, image_bytes, make_dataset, make_user
from tests.support import actor, location_path, member, sign_in
from tests.workforces.support import a_workforce, a_workforce_member, in_team

ROLES = ["admin", "owner", "manager", "reviewer", "labeler", "outsider", "anonymous"]
SIGNED_IN = ROLES[:-1]


@dataclass
class World:
    owner: User
    dataset: Dataset
    image_id: int
    queued_job: Job
    cancelled_job: Job
    bystander: DatasetMember  # a member row others may remove
    candidate: User  # a user with no role, to add as member or promote
    token_id: int  # the owner's API token


@pytest.fixture
def world(app_ctx, run_jobs) -> World:
    """A private dataset with a really uploaded and imported image, jobs, members and a token."""
    owner = make_user("owner@example.com")
    dataset = make_dataset(owner, name="Private cats")
    upload = image_service.begin_upload(dataset, owner)
    outcome = image_service.add_file(upload, "cat.jpg", io.BytesIO(image_bytes(seed=1)))
    assert outcome.stored, outcome.reason
    import_job = image_service.finish_upload(upload, owner)
    run_jobs()
    image_id = db.session.scalar(db.select(db.func.max(Image.id)).where(Image.dataset_id == dataset.id))
    import_job = db.session.get(Job, import_job.id)
    assert image_id, f"the import job did not import the image: {import_job.status} {import_job.message} {import_job.errors}"
    queued = request_refresh_counters(dataset, owner)
    cancelled = cancel_job(request_refresh_counters(dataset, owner))
    assert cancelled.status == JobStatus.cancelled
    bystander_user = member(dataset, "labeler", email="bystander@example.com")
    bystander = db.session.scalar(db.select(DatasetMember).where(DatasetMember.user_id == bystander_user.id))
    token, _ = accounts.create_token(owner, "owner-token")
    return World(owner, dataset, image_id, queued, cancelled, bystander, make_user("candidate@example.com"), token.id)


# ---- the table ---------------------------------------------------------------------------------

# Shorthands for who may do what on the (private) dataset: the status each signed-in role gets.
def allowed(ok: int, *roles: str, denied: int = 403, outsider: int | None = None) -> dict:
    expected = {role: (ok if role in roles else denied) for role in SIGNED_IN}
    if outsider is not None and "outsider" not in roles:
        expected["outsider"] = outsider
    return expected


def everyone(ok: int) -> dict:
    return {role: ok for role in SIGNED_IN}


def viewers(ok: int) -> dict:  # dataset:view: every member; an outsider must not learn it exists
    return allowed(ok, "admin", "owner", "manager", "reviewer", "labeler", outsider=404)


def image_viewers(ok: int) -> dict:  # image:view: the matrix's labeler has no assignment
    return allowed(ok, "admin", "owner", "manager", "reviewer", denied=404)


def managers(ok: int) -> dict:  # dataset:import / dataset:members, and job:cancel on the dataset's jobs
    return allowed(ok, "admin", "owner", "manager", outsider=404)


def not_for_labelers(expected: dict) -> dict:  # job:view: a labeler sees only jobs they started, so the owner's do not exist
    return {**expected, "labeler": 404}


def owners(ok: int) -> dict:  # dataset:manage
    return allowed(ok, "admin", "owner", outsider=404)


def site_admins(ok: int) -> dict:
    return allowed(ok, "admin")


def reviewers(ok: int) -> dict:  # dataset:review: reviewers and up; a labeler never gives verdicts
    return allowed(ok, "admin", "owner", "manager", "reviewer", outsider=404)


def task_managers(ok: int) -> dict:  # task:manage, on a task the matrix's labeler does not work on (so cannot see)
    return {**managers(ok), "labeler": 404}


def a_task(w: World) -> int:
    """A built task of the world's image whose only member is the owner."""
    from models import Assignment, LabelingTask, TaskMember

    task = LabelingTask(dataset_id=w.dataset.id, name="Matrix", complete=True, image_count=1, created_by_id=w.owner.id)
    db.session.add(task)
    db.session.flush()
    db.session.add(TaskMember(task_id=task.id, user_id=w.owner.id))
    db.session.add(Assignment(task_id=task.id, image_id=w.image_id, labeler_id=w.owner.id))
    db.session.commit()
    return task.id


def task_url(w: World, rest: str = "") -> str:
    return ds(w, f"/tasks/{a_task(w)}{rest}")


@dataclass
class Route:
    request: Callable[[World, User | None], tuple[str, dict]]  # (url, form data)
    expected: dict
    public: bool = False  # reachable without signing in
    anonymous: int | None = None  # for public routes: the status an anonymous visitor gets
    files: bool = False
    extra: dict = field(default_factory=dict)


def ds(w: World, rest: str = "") -> str:
    return f"/datasets/{w.dataset.id}{rest}"


def img(w: World, rest: str = "") -> str:
    return ds(w, f"/images/{w.image_id}{rest}")


def own_upload(w: World, user: User | None, with_file: bool = False) -> int:
    """An upload batch belonging to the caller (batches are private to whoever began them)."""
    upload = image_service.begin_upload(w.dataset, user or w.owner)
    if with_file:
        image_service.add_file(upload, "more.jpg", io.BytesIO(image_bytes(seed=2)))
    return upload.id


def own_token(w: World, user: User | None) -> int:
    if user is None:
        return w.token_id
    token, _ = accounts.create_token(user, "mine")
    return token.id


def a_label(w: World) -> int:
    """A new label of the world's dataset, for the Labels page rows."""
    import uuid

    from services.labels import create_label

    return create_label(w.dataset, name=f"label-{uuid.uuid4().hex[:8]}", default_shape="box").id


def public_dataset(w: World) -> int:
    """Another dataset every signed-in user may see, to copy labels from."""
    return make_dataset(w.owner, name="Public source", public=True).id


def grid_classification(w: World) -> dict:
    """Make the world's dataset a classification one with a label, for the grid-labeling rows."""
    from models import DatasetType, Label
    from services.labels import create_label

    w.dataset.type = DatasetType.classification
    db.session.commit()
    label = db.session.scalar(db.select(Label).where(Label.dataset_id == w.dataset.id, Label.name == "grid-cat"))
    label = label or create_label(w.dataset, name="grid-cat", shortcut="g", default_shape="tag")
    return {"label_id": str(label.id), "image_ids": [str(w.image_id)]}


def grid_undo(w: World, user: User | None) -> dict:
    """An undo token of the caller's own grid classification of the world's image (it had no classes)."""
    from flask import current_app
    from itsdangerous import URLSafeTimedSerializer

    from services import grid_labeling

    grid_classification(w)
    payload = {"dataset_id": w.dataset.id, "user_id": (user or w.owner).id, "images": {str(w.image_id): {"before": [], "after": []}}}
    token = URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=grid_labeling._SALT).dumps(payload)
    return {"undo": token}


def tagged(w: World, form: dict) -> dict:
    """Tag the world's image "old", for the tag manager's rows; returns the form unchanged."""
    image_service.add_tag_to_images(w.dataset, [w.image_id], "old")
    return form


def signed_link(w: World) -> str:
    """A signed link to the world's image (the CSV of URLs): the link is the permission, whoever follows it."""
    from urllib.parse import urlsplit

    from services.signed_urls import image_url

    image = db.session.get(Image, w.image_id)
    return urlsplit(image_url(w.dataset.id, image.storage_key, image.file_name, 600)).path


def a_version(w: World) -> int:
    """A released (complete) version of the world's dataset, for the Versions page rows."""
    from models import Version

    number = (db.session.scalar(db.select(db.func.max(Version.number)).where(Version.dataset_id == w.dataset.id)) or 0) + 1
    version = Version(dataset_id=w.dataset.id, number=number, labels=[], stats={}, complete=True, created_by_id=w.owner.id)
    db.session.add(version)
    db.session.commit()
    return version.id


def sampled_task(w: World) -> int:
    """A task of the owner's whose one image (the world's) is accepted, for the sampling page rows
    (made once: the anonymous rows ask twice)."""
    from models import LabelingTask
    from tests.team_stats.support import accepted_task

    made = db.session.scalar(db.select(LabelingTask.id).where(LabelingTask.dataset_id == w.dataset.id, LabelingTask.name == "Sampled"))
    return made or accepted_task(w.dataset, w.owner, [w.image_id], name="Sampled").id


def sampling_url(w: World, rest: str = "", sample: bool = False) -> str:
    """The sampling page of a sampled task; with `sample`, of a pending sample holding the world's image."""
    from models import LabelingTask
    from services.sampling import start_sample

    from services.sampling import pending_sample

    task_id = sampled_task(w)
    if sample:
        task = db.session.get(LabelingTask, task_id)
        rest = f"/{(pending_sample(task) or start_sample(task, w.owner, rate=1)).id}{rest}"
    return ds(w, f"/tasks/{task_id}/sampling{rest}")


def samplers(ok: int, denied: int = 403) -> dict:  # dataset:sampling, and a sample seen only by them (sample:view)
    # The labeler does not work on the sampled task, so it does not exist for them.
    return {**allowed(ok, "admin", "owner", denied=denied, outsider=404), "labeler": 404}


def team_url(w: World, rest: str = "") -> str:
    return f"/workforces/{a_workforce(w)}{rest}"


def an_invite(w: World) -> str:
    """A fresh invite link (its raw token) into the world's workforce."""
    from services.workforces import create_invite

    return create_invite(db.session.get(Workforce, a_workforce(w)), "labeler", by=w.owner)[1]


def jpeg_file() -> dict:
    return {"files": (io.BytesIO(image_bytes(seed=3)), "new.jpg")}


def annotation_csv() -> dict:
    return {"kind": "annotations", "format": "csv", "file": (io.BytesIO(b"image_name,label_name\nnew.jpg,cat\n"), "labels.csv")}


ROUTES: dict[tuple[str, str], Route] = {
    ("auth.login", "GET"): Route(lambda w, u: ("/login", {}), everyone(302), public=True, anonymous=200),
    ("auth.login_submit", "POST"): Route(
        lambda w, u: ("/login", {"email": w.owner.email, "password": "wrong password"}), everyone(422), public=True, anonymous=422
    ),
    ("auth.logout", "POST"): Route(lambda w, u: ("/logout", {}), everyone(303)),
    ("auth.setup", "GET"): Route(lambda w, u: ("/setup", {}), everyone(302), public=True, anonymous=302),
    ("auth.setup", "POST"): Route(
        lambda w, u: ("/setup", {"email": "intruder@example.com", "password": "long enough pw"}), everyone(302), public=True, anonymous=302
    ),
    ("auth.home", "GET"): Route(lambda w, u: ("/", {}), everyone(302)),
    ("datasets.index", "GET"): Route(lambda w, u: ("/datasets/", {}), everyone(200)),
    ("datasets.new", "GET"): Route(lambda w, u: ("/datasets/new", {}), everyone(200)),
    ("datasets.create", "POST"): Route(lambda w, u: ("/datasets/", {"name": "Mine", "type": "classification"}), everyone(303)),
    ("datasets.show", "GET"): Route(lambda w, u: (ds(w), {}), viewers(200)),
    ("datasets.team_statistics", "GET"): Route(lambda w, u: (ds(w, "/team-stats"), {}), viewers(200)),
    ("datasets.edit", "GET"): Route(lambda w, u: (ds(w, "/settings"), {}), owners(200)),
    ("datasets.update", "POST"): Route(lambda w, u: (ds(w, "/settings"), {"name": "Renamed", "description": ""}), owners(200)),
    ("datasets.archive", "POST"): Route(lambda w, u: (ds(w, "/archive"), {"archived": "1"}), owners(303)),
    ("datasets.delete", "POST"): Route(lambda w, u: (ds(w, "/delete"), {"confirm_name": w.dataset.name}), owners(303)),
    ("datasets.refresh_counters", "POST"): Route(lambda w, u: (ds(w, "/refresh-counters"), {}), managers(303)),
    ("datasets.add_member", "POST"): Route(
        lambda w, u: (ds(w, "/members"), {"email": w.candidate.email, "role": "reviewer"}), managers(303)
    ),
    ("datasets.remove_member", "POST"): Route(lambda w, u: (ds(w, f"/members/{w.bystander.id}/delete"), {}), managers(303)),
    ("images.index", "GET"): Route(lambda w, u: (ds(w, "/images/"), {}), viewers(200)),
    ("images.bulk", "POST"): Route(
        lambda w, u: (ds(w, "/images/bulk"), {"action": "set_split", "split": "train", "image_ids": [str(w.image_id)]}), managers(200)
    ),
    # dataset:view; a labeler gets only the tiles of images assigned to them (none here), still 200.
    ("images.tiles", "POST"): Route(lambda w, u: (ds(w, "/images/tiles"), {"image_ids": [str(w.image_id)]}), viewers(200)),
    # dataset:view, then image:annotate per image: the matrix's labeler has no assignment.
    ("images.classify", "POST"): Route(
        lambda w, u: (ds(w, "/images/classify"), grid_classification(w)), allowed(200, "admin", "owner", "manager", "reviewer", outsider=404)
    ),
    ("images.classify_undo", "POST"): Route(
        lambda w, u: (ds(w, "/images/classify/undo"), grid_undo(w, u)), allowed(200, "admin", "owner", "manager", "reviewer", outsider=404)
    ),
    # Without HX-Request the tag manager's forms return to the grid.
    ("images.rename_tag", "POST"): Route(
        lambda w, u: (ds(w, "/images/tags/rename"), tagged(w, {"name": "old", "new_name": "new"})), managers(303)
    ),
    ("images.delete_tag", "POST"): Route(lambda w, u: (ds(w, "/images/tags/delete"), tagged(w, {"name": "old"})), managers(303)),
    ("images.show", "GET"): Route(lambda w, u: (img(w), {}), image_viewers(200)),
    ("images.thumbnail", "GET"): Route(lambda w, u: (img(w, "/thumbnail"), {}), image_viewers(200)),
    ("images.file", "GET"): Route(lambda w, u: (img(w, "/file"), {}), image_viewers(200)),
    ("labeling.show", "GET"): Route(lambda w, u: (img(w, "/label"), {}), image_viewers(200)),
    # image:annotate: reviewers and up; the matrix's labeler has no assignment, so sees no image.
    ("labeling.save", "PUT"): Route(lambda w, u: (img(w, "/annotations"), {"revision": 0, "annotations": []}), image_viewers(200)),
    ("labeling.preview", "GET"): Route(lambda w, u: (img(w, "/preview"), {}), image_viewers(200)),
    ("labeling.region", "GET"): Route(lambda w, u: (img(w, "/region?x=0&y=0&width=32&height=24&scale=0.5"), {}), image_viewers(200)),
    ("uploads.new", "GET"): Route(lambda w, u: (ds(w, "/upload/"), {}), managers(200)),
    ("uploads.create", "POST"): Route(lambda w, u: (ds(w, "/upload/"), jpeg_file()), managers(303), files=True),
    ("imports.new", "GET"): Route(lambda w, u: (ds(w, "/imports/"), {}), managers(200)),
    ("imports.create", "POST"): Route(lambda w, u: (ds(w, "/imports/"), annotation_csv()), managers(303), files=True),
    ("uploads.begin", "POST"): Route(lambda w, u: (ds(w, "/upload/batches"), {}), managers(201)),
    ("uploads.add_files", "POST"): Route(
        lambda w, u: (ds(w, f"/upload/batches/{own_upload(w, u)}/files"), jpeg_file()), managers(200), files=True
    ),
    ("uploads.finish", "POST"): Route(
        lambda w, u: (ds(w, f"/upload/batches/{own_upload(w, u, with_file=True)}/finish"), {}), managers(200)
    ),
    ("labels.index", "GET"): Route(lambda w, u: (ds(w, "/labels/"), {}), viewers(200)),
    ("labels.create", "POST"): Route(lambda w, u: (ds(w, "/labels/"), {"name": "new", "color": "#112233", "default_shape": "box"}), managers(303)),
    ("labels.show", "GET"): Route(lambda w, u: (ds(w, f"/labels/{a_label(w)}"), {}), viewers(200)),
    ("labels.edit", "GET"): Route(lambda w, u: (ds(w, f"/labels/{a_label(w)}/edit"), {}), managers(200)),
    ("labels.update", "POST"): Route(
        lambda w, u: (ds(w, f"/labels/{a_label(w)}"), {"name": "renamed", "color": "#112233", "default_shape": "box"}), managers(303)
    ),
    ("labels.reorder", "POST"): Route(lambda w, u: (ds(w, "/labels/reorder"), {"label_id": str(a_label(w)), "direction": "up"}), managers(303)),
    ("labels.copy", "POST"): Route(lambda w, u: (ds(w, "/labels/copy"), {"from_dataset_id": str(public_dataset(w))}), managers(303)),
    ("labels.merge", "POST"): Route(
        lambda w, u: (ds(w, "/labels/merge"), {"label_ids": [str(a_label(w)), str(a_label(w))], "name": "merged"}), managers(303)
    ),
    ("labels.delete", "POST"): Route(lambda w, u: (ds(w, f"/labels/{a_label(w)}/delete"), {}), managers(303)),
    ("labels.refresh_counters", "POST"): Route(lambda w, u: (ds(w, "/labels/refresh-counters"), {}), managers(303)),
    ("labels.job_status", "GET"): Route(lambda w, u: (ds(w, f"/labels/jobs/{w.queued_job.id}"), {}), not_for_labelers(viewers(303))),
    ("jobs.index", "GET"): Route(lambda w, u: ("/jobs/", {}), everyone(200)),
    ("jobs.show", "GET"): Route(lambda w, u: (f"/jobs/{w.queued_job.id}", {}), not_for_labelers(viewers(200))),
    ("jobs.cancel", "POST"): Route(lambda w, u: (f"/jobs/{w.queued_job.id}/cancel", {}), not_for_labelers(managers(200))),
    ("jobs.rerun", "POST"): Route(lambda w, u: (f"/jobs/{w.cancelled_job.id}/rerun", {}), not_for_labelers(managers(200))),
    ("profile.show", "GET"): Route(lambda w, u: ("/profile/", {}), everyone(200)),
    ("profile.create_token", "POST"): Route(lambda w, u: ("/profile/tokens", {"name": "ci"}), everyone(200)),
    ("profile.revoke_token", "POST"): Route(lambda w, u: (f"/profile/tokens/{own_token(w, u)}/revoke", {}), everyone(200)),
    ("profile.change_password", "POST"): Route(
        lambda w, u: ("/profile/password", {"current": PASSWORD, "new": "another good password"}), everyone(200)
    ),
    ("exports.index", "GET"): Route(lambda w, u: (ds(w, "/exports/"), {}), managers(200)),
    ("exports.options", "GET"): Route(lambda w, u: (ds(w, "/exports/options?format=csv"), {}), managers(200)),
    ("exports.listing", "GET"): Route(lambda w, u: (ds(w, "/exports/list"), {}), managers(200)),
    ("exports.create", "POST"): Route(lambda w, u: (ds(w, "/exports/"), {"format": "json", "coordinates": "percent"}), managers(303)),
    ("versions.index", "GET"): Route(lambda w, u: (ds(w, "/versions/"), {}), managers(200)),
    ("versions.release", "POST"): Route(lambda w, u: (ds(w, "/versions/"), {"note": "first"}), managers(303)),
    ("versions.compare", "GET"): Route(lambda w, u: (ds(w, "/versions/compare?a={0}&b={0}".format(a_version(w))), {}), managers(200)),
    # Without HX-Request the grid's Auto-split goes to its job's page.
    ("splits.auto_split", "POST"): Route(
        lambda w, u: (ds(w, "/images/auto-split"), {"all_matching": "1", "train": "80", "validation": "10", "test": "10"}), managers(303)
    ),
    ("admin.users", "GET"): Route(lambda w, u: ("/admin/users", {}), site_admins(200)),
    ("admin.create_user", "POST"): Route(lambda w, u: ("/admin/users", {"email": "new@example.com", "password": "a fine password"}), site_admins(200)),
    ("admin.update_user", "POST"): Route(lambda w, u: (f"/admin/users/{w.candidate.id}", {"action": "make_admin"}), site_admins(200)),
    # Acceptance sampling of a task: owners and site admins.
    ("sampling.index", "GET"): Route(lambda w, u: (sampling_url(w), {}), samplers(200)),
    ("sampling.create", "POST"): Route(lambda w, u: (sampling_url(w), {"rate": "1"}), samplers(303)),
    ("sampling.show", "GET"): Route(lambda w, u: (sampling_url(w, sample=True), {}), samplers(200, denied=404)),
    ("sampling.decide", "POST"): Route(
        lambda w, u: (sampling_url(w, f"/items/{w.image_id}", sample=True), {"verdict": "reject"}), samplers(303, denied=404)
    ),
    ("signed-files.show", "GET"): Route(lambda w, u: (signed_link(w), {}), everyone(200), public=True, anonymous=200),
    # The Review tab: the queue, "Start reviewing" (to the canvas, or back to the queue when nothing waits), the grid review.
    ("reviews.index", "GET"): Route(lambda w, u: (ds(w, "/review/"), {}), reviewers(200)),
    ("reviews.start", "GET"): Route(lambda w, u: (ds(w, "/review/start"), {}), reviewers(303)),
    ("reviews.grid", "GET"): Route(lambda w, u: (ds(w, "/review/grid"), {}), reviewers(200)),
    # Tasks: managers make and change them; everyone who sees the dataset sees the task list (a
    # labeler: the tasks they work on); only a task's members start working on it.
    ("tasks.index", "GET"): Route(lambda w, u: (ds(w, "/tasks/"), {}), viewers(200)),
    ("tasks.new", "GET"): Route(lambda w, u: (ds(w, f"/tasks/new?image_ids={w.image_id}"), {}), managers(200)),
    ("tasks.create", "POST"): Route(
        lambda w, u: (ds(w, "/tasks/"), {"name": "Boxes", "member_ids": str(w.owner.id), "image_ids": str(w.image_id), "review_required": "on"}),
        managers(303),
    ),
    ("tasks.show", "GET"): Route(lambda w, u: (task_url(w), {}), {**reviewers(200), "labeler": 404}),
    ("tasks.reassign", "POST"): Route(lambda w, u: (task_url(w, "/reassign"), {"from_member_id": "", "to_member_id": str(w.owner.id)}), task_managers(303)),
    ("tasks.unassign", "POST"): Route(lambda w, u: (task_url(w, "/unassign"), {"from_member_id": str(w.owner.id)}), task_managers(303)),
    ("tasks.add_member", "POST"): Route(lambda w, u: (task_url(w, "/members"), {"user_id": str(w.bystander.user_id)}), task_managers(303)),
    ("tasks.remove_member", "POST"): Route(lambda w, u: (task_url(w, f"/members/{w.owner.id}/delete"), {}), task_managers(303)),
    ("tasks.delete", "POST"): Route(lambda w, u: (task_url(w, "/delete"), {}), task_managers(303)),
    ("work.my_work", "GET"): Route(lambda w, u: ("/work", {}), everyone(200)),
    ("work.start", "GET"): Route(
        lambda w, u: (f"/tasks/{a_task(w)}/start", {}), {**allowed(303, "owner", outsider=404), "labeler": 404},
    ),
    # Workforces (tests.workforces.support.in_team: the dataset roles stand for team roles in the
    # owner's workforce): every member sees it, its team admins (and its creator) manage it.
    ("workforces.index", "GET"): Route(lambda w, u: ("/workforces/", in_team(w, u)), everyone(200)),
    ("workforces.create", "POST"): Route(lambda w, u: ("/workforces/", {"name": "Day shift"}), {**managers(303), "outsider": 403}),
    ("workforces.show", "GET"): Route(lambda w, u: (team_url(w), in_team(w, u)), viewers(200)),
    ("workforces.update", "POST"): Route(lambda w, u: (team_url(w), in_team(w, u, {"name": "Renamed"})), managers(303)),
    ("workforces.delete", "POST"): Route(lambda w, u: (team_url(w, "/delete"), in_team(w, u)), managers(303)),
    ("workforces.add_member", "POST"): Route(
        lambda w, u: (team_url(w, "/members"), in_team(w, u, {"email": w.candidate.email, "role": "labeler"})), managers(303)
    ),
    ("workforces.update_member", "POST"): Route(
        lambda w, u: (team_url(w, f"/members/{a_workforce_member(w)}"), in_team(w, u, {"role": "reviewer"})), managers(303)
    ),
    ("workforces.remove_member", "POST"): Route(lambda w, u: (team_url(w, f"/members/{a_workforce_member(w)}/delete"), in_team(w, u)), managers(303)),
    ("workforces.create_invite", "POST"): Route(lambda w, u: (team_url(w, "/invites"), in_team(w, u, {"role": "labeler", "hours": "1"})), managers(201)),
    # The invite page is public: a sign-up form for anonymous visitors, a join button for the signed in;
    # the owner made the workforce, so is a member already (409, and the link stays unused).
    ("workforces.invite", "GET"): Route(lambda w, u: (f"/invites/{an_invite(w)}", {}), everyone(200), public=True, anonymous=200),
    ("workforces.accept", "POST"): Route(
        lambda w, u: (f"/invites/{an_invite(w)}", {"email": "joiner@example.com", "display_name": "Joiner", "password": "long enough"}),
        {**everyone(303), "owner": 409}, public=True, anonymous=303,
    ),
    # A dataset's attached workforces: dataset:members, and a workforce the caller sees.
    ("workforces.attach", "POST"): Route(lambda w, u: (ds(w, "/workforces"), in_team(w, u, {"workforce_id": str(a_workforce(w))})), managers(303)),
    ("workforces.detach", "POST"): Route(
        lambda w, u: (ds(w, f"/workforces/{a_workforce(w)}/delete"), in_team(w, u, attached=True)), managers(303)
    ),
}


def web_routes(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/api/"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((rule.endpoint, method))
    return routes


def test_every_web_route_has_a_row_in_the_permission_matrix(app):
    missing = web_routes(app) - set(ROUTES)
    assert not missing, f"routes without a permission-matrix row (add them to ROUTES): {sorted(missing)}"


def test_the_permission_matrix_names_no_route_that_does_not_exist(app):
    stale = set(ROUTES) - web_routes(app)
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


def _send(client, method: str, url: str, data: dict, route: Route, headers=None):
    if method == "GET":
        return client.get(url, headers=headers)
    if method == "PUT":  # the labeling canvas's JSON save
        return client.put(url, json=data, headers=headers)
    return client.post(url, data=data, headers=headers, content_type="multipart/form-data" if route.files else None)


CASES = [(endpoint, method, role) for (endpoint, method) in ROUTES for role in ROLES]


@pytest.mark.parametrize("endpoint,method,role", CASES, ids=[f"{e}-{m}-{r}" for e, m, r in CASES])
def test_route_answers_each_role_with_the_status_the_permission_table_promises(client, world, endpoint, method, role):
    route = ROUTES[(endpoint, method)]
    user = actor(world.dataset, role)
    if user is not None:
        sign_in(client, user)
    url, data = route.request(world, user)
    response = _send(client, method, url, data, route)
    body = response.get_data().decode("utf-8", "replace")
    if role == "anonymous" and not route.public:
        assert response.status_code in (302, 303), body[:300]
        assert location_path(response) == "/login"
        # htmx would follow a 302 and swap the login page into a fragment: it gets 401 + HX-Redirect.
        url, data = route.request(world, None)
        response = _send(client, method, url, data, route, headers={"HX-Request": "true"})
        assert response.status_code == 401
        assert response.headers["HX-Redirect"].startswith("/login")
        assert "<html" not in response.get_data(as_text=True)
        return
    expected = route.anonymous if role == "anonymous" else route.expected[role]
    assert response.status_code == expected, f"{method} {url} as {role}: {response.status_code}\n{body[:500]}"
    if expected == 404 and endpoint.startswith(("datasets.", "images.", "uploads.", "labeling.", "reviews.")):
        assert world.dataset.name not in body, "a 404 must not reveal the dataset's name"


def test_anonymous_page_redirect_remembers_the_page_in_next(client, world):
    response = client.get(f"/datasets/{world.dataset.id}/images/?split=train")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert f"/datasets/{world.dataset.id}/images/" in response.headers["Location"].replace("%2F", "/")


@pytest.mark.parametrize("role,expected", [("reviewer", 403), ("labeler", 403), ("outsider", 404)])
def test_denied_htmx_request_gets_the_error_partial_not_a_page(client, world, role, expected):
    sign_in(client, actor(world.dataset, role))
    response = client.post(
        f"/datasets/{world.dataset.id}/images/bulk", data={"action": "delete", "image_ids": [str(world.image_id)]},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == expected
    body = response.get_data(as_text=True)
    assert 'role="alert"' in body and "<html" not in body
    assert db.session.scalar(db.select(db.func.count(Image.id))) == 1, "a denied delete deleted nothing"


@pytest.mark.parametrize(
    "url,expected",
    [
        ("", 200), ("/images/", 200), ("/images/{image}", 200), ("/images/{image}/thumbnail", 200),
        ("/settings", 403), ("/upload/", 403),
    ],
)
def test_outsider_sees_a_public_dataset_read_only(client, world, url, expected):
    world.dataset.public = True
    db.session.commit()
    sign_in(client, make_user())
    response = client.get(f"/datasets/{world.dataset.id}" + url.format(image=world.image_id))
    assert response.status_code == expected


def test_outsider_cannot_change_a_public_dataset(client, world):
    world.dataset.public = True
    db.session.commit()
    sign_in(client, make_user())
    response = client.post(
        f"/datasets/{world.dataset.id}/images/bulk", data={"action": "delete", "image_ids": [str(world.image_id)]}
    )
    assert response.status_code == 403
    assert client.post(f"/datasets/{world.dataset.id}/delete", data={"confirm_name": world.dataset.name}).status_code == 403


@pytest.mark.parametrize("url", ["/images/{image}", "/images/{image}/thumbnail", "/images/{image}/file"])
def test_labeler_sees_an_image_once_it_is_assigned_to_them(client, world, url):
    from tests.factories import assign

    labeler = actor(world.dataset, "labeler")
    sign_in(client, labeler)
    target = f"/datasets/{world.dataset.id}" + url.format(image=world.image_id)
    assert client.get(target).status_code == 404
    assign(world.dataset, world.image_id, labeler)
    assert client.get(target).status_code == 200
