"""The OpenAPI document is the truth: schemathesis (4.32.5) sends every operation generated requests.

Each operation is its own test, so xdist spreads them and each gets a fresh dataset with really
imported images, labels, an annotation, tags and a member, as a signed-in admin who owns it (a
destructive example only spends its own operation's data). Positive examples aim at those real
resources; negative ones keep the ids schemathesis drew. Every answer must be no 5xx and match the
document: its status, content type, body schema and headers; a schema-valid request is accepted;
a method the document does not list gets 405 with Allow. Then workflows that follow the links
schemathesis infers, and every DELETE of the document, show a deleted resource gone.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance, ensure_resource_availability, positive_data_acceptance, response_headers_conformance,
    response_schema_conformance, status_code_conformance, unsupported_method, use_after_free,
)

from core.extensions import db
from models import DatasetMember, Role, Version
from services import annotations as annotation_service
from services import sampling as sampling_service
from services import exports as export_service
from services import images as image_service
from services import labels as label_service
from services import workforces as workforce_service
from services.accounts import create_token
from services.datasets import request_refresh_counters
from tests.conftest import make_app
from tests.factories import image_bytes, imported_image, make_dataset, make_user
from tests.team_stats.support import accepted_task


def _document() -> dict:
    """The document as the app serves it; rendering it needs no database or Redis."""
    with tempfile.TemporaryDirectory() as instance:
        app = make_app({"instance": Path(instance), "database_url": "sqlite://", "redis_url": ""})
        return app.test_client().get("/api/v1/openapi.json").get_json()


DOCUMENT = _document()
# The document lists every query parameter; others are refused (422), not ignored. Every request
# carries the world's token rather than a generated Authorization header.
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False, "with-security-parameters": False}})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# Where a schema-valid request can still be refused (422), for what a schema cannot say.
BEYOND_THE_SCHEMA = {
    "POST /api/v1/datasets/{dataset_id}/images": "the files must decode as images",
    "POST /api/v1/datasets/{dataset_id}/members": "the email must be a user's",
    "POST /api/v1/datasets/{dataset_id}/images/delete": "image_ids or names: at least one of the two",
    "GET /api/v1/datasets/{dataset_id}/images/{image_id}/region": "the region must lie inside the image",
    "POST /api/v1/datasets/{dataset_id}/labels": "the default shape must be one the dataset's type allows",
    "PATCH /api/v1/datasets/{dataset_id}/labels/{label_id}": "the default shape must be one the dataset's type allows",
    "POST /api/v1/datasets/{dataset_id}/labels/merge": "label_ids must be labels of this dataset",
    "POST /api/v1/datasets/{dataset_id}/labels/reorder": "label_ids must list every label of the dataset once",
    "POST /api/v1/datasets/{dataset_id}/labels/copy": "from_dataset_id must be another dataset",
    "PUT /api/v1/datasets/{dataset_id}/images/{image_id}/annotations": "labels of this dataset, shapes inside the image",
    "POST /api/v1/datasets/{dataset_id}/split": "the percentages must add up to 100; image_ids must be images of this dataset",
    "GET /api/v1/datasets/{dataset_id}/versions/compare": "a and b must be versions of this dataset",
    "POST /api/v1/datasets/{dataset_id}/exports": "the format must take the options sent; labels, images and version of this dataset",
    "GET /api/v1/datasets/{dataset_id}/csv": "test + validation <= 100; the tag map from:to,from:to",
    "POST /api/v1/datasets/{dataset_id}/images/{image_id}/review": "a rejection needs a comment that is not blank",
    "POST /api/v1/datasets/{dataset_id}/reviews": "a rejection needs a comment that is not blank",
    "GET /api/v1/datasets/{dataset_id}/reviews/next": "task_id must be a labeling task of this dataset",
    "POST /api/v1/tasks/{task_id}/samples": "one pending sample per task at a time",
    "POST /api/v1/samples/{sample_id}/items/{image_id}": "the image must be in the sample, and a decided sample takes no verdict",
    "POST /api/v1/datasets/{dataset_id}/tasks": "member_ids of the dataset's members or an attached workforce_id; batch_size only for batch",
    "POST /api/v1/tasks/{task_id}/reassign": "to_member_id must be a member of the task",
    "POST /api/v1/tasks/{task_id}/unassign": "from_member_id or image_ids: at least one of the two",
    "POST /api/v1/tasks/{task_id}/members": "user_id must be a member of the dataset and not yet of the task",
    "POST /api/v1/datasets/{dataset_id}/images/{image_id}/versions/keep": "labeler_id or merge, of a version handed in",
}

CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
    response_headers_conformance, positive_data_acceptance, unsupported_method,
]


@dataclass
class FuzzWorld:
    headers: dict
    ids: dict  # path parameter -> the real resource's value

    def aim(self, case) -> None:
        """Point a positive example's path at the real resources; a negative one keeps its drawn ids."""
        if case.meta is not None and case.meta.generation.mode != GenerationMode.POSITIVE:
            return
        for name in case.path_parameters or {}:
            case.path_parameters[name] = self.ids[name]

    def url(self, path: str) -> str:
        return path.format(**self.ids)


@pytest.fixture
def fuzz_world(app_ctx, run_jobs) -> FuzzWorld:
    """An admin's dataset with three imported images, two labels, an annotation, tags, a member and a queued job."""
    admin = make_user(is_admin=True)
    dataset = make_dataset(admin, name="Fuzzed cats")
    other = make_dataset(admin, name="Labels to copy")
    images = [imported_image(dataset, f"cat-{i}.jpg", image_bytes(seed=100 + i), owner=admin) for i in range(3)]
    images[0].external_id = "ext-1"
    labeler = DatasetMember(dataset_id=dataset.id, user_id=make_user().id, role=Role.labeler)
    db.session.add(labeler)
    db.session.commit()
    cat = label_service.create_label(dataset, name="cat", default_shape="box")
    label_service.create_label(dataset, name="dog", default_shape="box")
    label_service.create_label(other, name="bird", default_shape="box")
    box = {"label_id": cat.id, "shape": "box", "geometry": {"x": 1, "y": 2, "width": 10, "height": 8}}
    annotation_service.replace_annotations(images[0], admin, [box], 0)
    image_service.update_image(images[0], tags=["sunny", "outdoor"], folder="line-3/2024")
    export = export_service.create_export(dataset, admin, {"format": "json"})
    run_jobs()  # a ready export to get and download
    job = request_refresh_counters(dataset, admin)
    version = Version(dataset_id=dataset.id, number=1, labels=[], stats={}, complete=True, created_by_id=admin.id)
    db.session.add(version)
    db.session.commit()
    workforce = workforce_service.create_workforce("Fuzzed team", by=admin)
    workforce_member, _ = workforce_service.add_member(workforce, make_user().email, "labeler")
    workforce_service.attach(dataset, workforce.id, by=admin)
    # Not the image at {image_id}: the fuzzer submits and skips that one, which an accepted image refuses.
    sampled = accepted_task(dataset, admin, [image.id for image in images[1:]], name="Fuzzed task")
    sample = sampling_service.start_sample(sampled, admin, rate=1)
    _, secret = create_token(admin, "fuzzer")
    spare, _ = create_token(admin, "spare")
    return FuzzWorld(
        headers={"Authorization": f"Token {secret}"},
        ids={
            "dataset_id": dataset.id, "image_id": images[0].id, "label_id": cat.id, "job_id": job.id, "token_id": spare.id,
            "member_id": labeler.id, "tag": "sunny", "external_id": "ext-1", "number": 1,
            "version_id": version.id, "export_id": export.id, "workforce_id": workforce.id, "workforce_member_id": workforce_member.id,
            "task_id": sampled.id, "sample_id": sample.id, "user_id": admin.id,  # the task's one member
        },
    )


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(map(_has_nul, value))
    return False


# Bounded and reproducible: 15 generated examples an operation (plus schemathesis' coverage
# cases), the same ones on every run, no shrinking (a failure is reported as found).
@schema.parametrize()
@settings(
    max_examples=15, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_document_says(case, fuzz_world, client):
    fuzz_world.aim(case)
    # Text holding NUL is refused (PostgreSQL stores none), which the document's strings do not spell out.
    beyond = case.operation.label in BEYOND_THE_SCHEMA or _has_nul([case.path_parameters, case.query, case.body])
    excluded = [positive_data_acceptance] if beyond else []
    case.call_and_validate(
        app=client.application, session=client, headers=fuzz_world.headers, checks=CHECKS, excluded_checks=excluded
    )


STATEFUL_CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, use_after_free,
    ensure_resource_availability,
]


def test_workflows_following_the_documents_links_never_reach_a_deleted_resource(fuzz_world, client, run_jobs):
    """Schemathesis chains calls by the links it infers (a listed or created id, then its GET, PATCH, DELETE...)."""

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"app": client.application, "session": client, "headers": fuzz_world.headers}

        def after_call(self, response, case):
            if case.method == "DELETE" and response.status_code == 202:
                run_jobs()  # a delete job is what makes the resource gone, as a worker would run it

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=STATEFUL_CHECKS, transport_kwargs=kwargs)

    Workflow.run(settings=settings(
        max_examples=20, stateful_step_count=6, deadline=None, derandomize=True, database=None,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    ))


DELETES = sorted(path for path, operations in DOCUMENT["paths"].items() if "delete" in operations)


def _listed(listing, key: str, value) -> bool:
    items = listing["items"] if isinstance(listing, dict) else listing
    return any(item.get(key) == value for item in items)


@pytest.mark.parametrize("path", DELETES)
def test_a_deleted_resource_is_gone_from_its_url_and_its_listing(path, fuzz_world, client, run_jobs):
    url, headers = fuzz_world.url(path), fuzz_world.headers
    deleted = client.delete(url, headers=headers)
    assert deleted.status_code in (200, 202, 204), (url, deleted.status_code, deleted.get_json())
    if deleted.status_code == 202:  # a job does the deleting
        run_jobs()
        job = client.get(f"/api/v1/jobs/{deleted.get_json()['id']}", headers=headers).get_json()
        assert job["status"] == "finished", job
    if "get" in DOCUMENT["paths"][path]:
        assert client.get(url, headers=headers).status_code == 404, url
    parent, _, identifier = path.rpartition("/")
    if "get" in DOCUMENT["paths"].get(parent, {}) and client.get(fuzz_world.url(parent), headers=headers).status_code == 200:
        name = identifier.strip("{}")
        key = "name" if name == "tag" else "id"
        assert not _listed(client.get(fuzz_world.url(parent), headers=headers).get_json(), key, fuzz_world.ids[name]), url
    assert client.delete(url, headers=headers).status_code == 404, f"a second DELETE of {url} should find nothing"
