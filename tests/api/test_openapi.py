"""The OpenAPI document (generated from the code) and the browsable docs page."""

import json
import re
from datetime import datetime, timedelta, timezone

import openapi_spec_validator
import pytest

from tests.api.support import post_files
from tests.factories import image_bytes, make_user, token_for
from tests.support import sign_in

# SPEC section 9: the paths of this slice, as OpenAPI spells them.
CONTRACT = {
    "/api/v1/me": {"get"},
    "/api/v1/tokens": {"get", "post"},
    "/api/v1/tokens/{token_id}": {"delete"},
    "/api/v1/datasets": {"get", "post"},
    "/api/v1/datasets/{dataset_id}": {"get", "patch", "delete"},
    "/api/v1/datasets/{dataset_id}/refresh-counters": {"post"},
    "/api/v1/datasets/{dataset_id}/stats": {"get"},
    "/api/v1/datasets/{dataset_id}/members": {"get", "post"},
    "/api/v1/datasets/{dataset_id}/images": {"get", "post"},
    "/api/v1/datasets/{dataset_id}/images/{image_id}": {"get", "patch", "delete"},
    "/api/v1/datasets/{dataset_id}/images/external/{external_id}": {"get"},
    "/api/v1/datasets/{dataset_id}/images/delete": {"post"},
    "/api/v1/datasets/{dataset_id}/images/{image_id}/file": {"get"},
    "/api/v1/datasets/{dataset_id}/images/{image_id}/thumbnail": {"get"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/jobs/{job_id}/cancel": {"post"},
}


def _doc(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return json.loads(response.data)


def test_the_document_is_valid_json_openapi_and_lists_every_path_of_the_contract(client):
    doc = _doc(client)  # no token: the document and the docs page are public
    openapi_spec_validator.validate(doc)
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "Loupe API"
    for path, methods in CONTRACT.items():
        assert path in doc["paths"], path
        assert methods <= set(doc["paths"][path]), (path, set(doc["paths"][path]))


def test_parameters_and_bodies_are_documented(client):
    doc = _doc(client)
    images = doc["paths"]["/api/v1/datasets/{dataset_id}/images"]
    assert {"split", "state", "folder", "tag", "search", "limit", "cursor"} <= {p["name"] for p in images["get"]["parameters"]}
    assert [p["name"] for p in images["parameters"]] == ["dataset_id"]
    upload = images["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    files = doc["components"]["schemas"][upload]["properties"]["files"]
    assert files == {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1}
    datasets = doc["paths"]["/api/v1/datasets"]
    assert {"search", "type", "archived", "sort", "order", "limit", "offset", "with_labels", "preview"} <= {
        p["name"] for p in datasets["get"]["parameters"]
    }
    create = datasets["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert doc["components"]["schemas"][create]["properties"]["type"]["enum"][0] == "classification"
    assert "201" in datasets["post"]["responses"]
    assert "202" in doc["paths"]["/api/v1/datasets/{dataset_id}"]["delete"]["responses"]


def test_token_and_session_auth_and_the_error_shape_are_documented(client):
    doc = _doc(client)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["token"] == {"type": "apiKey", "in": "header", "name": "Authorization", "description": schemes["token"]["description"]}
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "session", "description": schemes["session"]["description"]}
    assert "X-CSRFToken" in schemes["session"]["description"]
    assert doc["security"] == [{"token": []}, {"session": []}]  # either one
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][error]["properties"]) == {"code", "message", "details"}


def test_each_documented_scheme_signs_the_caller_in_as_the_document_says(client, app_ctx):
    user, schemes = make_user(), _doc(client)["components"]["securitySchemes"]
    by_token = client.get("/api/v1/me", headers={schemes["token"]["name"]: token_for(user)["Authorization"]})
    assert by_token.status_code == 200 and by_token.get_json()["id"] == user.id
    sign_in(client, user)
    assert client.get_cookie(schemes["session"]["name"]) is not None  # the cookie the browser really sends
    by_session = client.get("/api/v1/me")
    assert by_session.status_code == 200 and by_session.get_json()["id"] == user.id


def test_the_docs_page_loads_swagger_ui_from_the_vendored_files(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets and "/static/vendor/swagger-ui/swagger-ui.css" in assets
    assert all(a.startswith("/static/") for a in assets), assets  # never a CDN (api_docs.js is Loupe's own)
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    assert '"/api/v1/openapi.json"' in html


def _operations(doc: dict):
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if method != "parameters":
                yield path, method, operation


def test_every_operation_lists_the_errors_it_answers_and_none_hides_behind_a_default(client):
    doc = _doc(client)
    for path, method, operation in _operations(doc):
        responses = operation["responses"]
        assert "default" not in responses, (method, path)  # a default would make any status look documented
        assert "401" in responses, (method, path)
        if "{" in path:
            assert {"400", "404"} <= set(responses), (method, path)
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body:
            assert {"400", "413", "415", "422"} <= set(responses), (method, path)
        if "202" in responses:
            assert "503" in responses, (method, path)  # the job is saved, the queue unreachable
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                target = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]] if "$ref" in response else response
                assert target.get("content", {}).get("application/json", {}).get("schema") == {"$ref": "#/components/schemas/Error"}, (
                    method, path, status
                )
    conflicts = {(p, m) for p, m, o in _operations(doc) if "409" in o["responses"]}
    assert {
        ("/api/v1/datasets/{dataset_id}/labels", "post"), ("/api/v1/datasets/{dataset_id}/labels/{label_id}", "patch"),
        ("/api/v1/datasets/{dataset_id}/members", "post"), ("/api/v1/datasets/{dataset_id}/images", "post"),
    } <= conflicts


def test_every_whole_number_in_the_document_has_the_bounds_the_server_reads(client):
    doc = _doc(client)
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            if node.get("type") == "integer" and where[-2:-1] != ("paths",):
                found.append(where)
                assert -(2**63) <= node["minimum"] and node["maximum"] <= 2**63 - 1, where
            for key, value in node.items():
                walk(value, (*where, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, (*where, i))

    walk({name: s for name, s in doc["components"]["schemas"].items() if name != "PaginationMetadata"}, ("components",))  # flask-smorest's, unused
    assert len(found) > 40
    schemas = doc["components"]["schemas"]
    assert schemas["LabelUpdateArgs"]["properties"]["position"]["maximum"] == 2**31 - 1  # an INTEGER column


def test_names_the_services_refuse_when_blank_are_documented_as_not_blank(client):
    schemas = _doc(client)["components"]["schemas"]
    for schema, field, longest in [
        ("TokenArgs", "name", 120), ("DatasetCreateArgs", "name", 200), ("DatasetUpdateArgs", "name", 200),
        ("LabelCreateArgs", "name", 200), ("LabelMergeArgs", "name", 200), ("TagRenameArgs", "name", 100),
    ]:
        prop = schemas[schema]["properties"][field]
        assert (prop["minLength"], prop["maxLength"], prop["pattern"]) == (1, longest, r"\S"), (schema, field)


def test_timestamps_in_every_kind_of_answer_carry_their_timezone(client, world):
    headers = token_for(world.owner)
    annotations = f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}/annotations"
    assert client.put(annotations, json={"annotations": [], "revision": 0}, headers=headers).status_code == 200
    stamps = [
        client.get("/api/v1/me", headers=headers).get_json()["created_at"],
        *[t[key] for t in client.get("/api/v1/tokens", headers=headers).get_json() for key in ("created_at", "last_used_at")],
        *[d[key] for d in client.get("/api/v1/datasets", headers=headers).get_json()["items"] for key in ("created_at", "updated_at")],
        client.get(f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}", headers=headers).get_json()["created_at"],
        client.get(f"/api/v1/jobs/{world.queued_job.id}", headers=headers).get_json()["created_at"],
        *[m["created_at"] for m in client.get(f"/api/v1/datasets/{world.dataset.id}/members", headers=headers).get_json()],
        *[r["created_at"] for r in client.get(f"/api/v1/datasets/{world.dataset.id}/images/{world.image.id}/history", headers=headers).get_json()["items"]],
        client.post(f"/api/v1/jobs/{world.queued_job.id}/cancel", headers=headers).get_json()["finished_at"],
    ]
    now = datetime.now(timezone.utc)
    assert len(stamps) >= 9
    for stamp in stamps:
        parsed = datetime.fromisoformat(stamp)
        assert parsed.utcoffset() == timedelta(0), stamp  # the models store naive UTC
        assert abs(parsed - now) < timedelta(minutes=5), stamp


def test_arrays_are_never_null_a_label_attribute_without_choices_has_an_empty_list(client, world):
    headers = token_for(world.owner)
    attributes = [
        {"name": "note", "type": "text"}, {"name": "count", "type": "number"}, {"name": "ok", "type": "checkbox"},
        {"name": "kind", "type": "select", "values": ["a", "b"]},
    ]
    created = client.post(f"/api/v1/datasets/{world.dataset.id}/labels", json={"name": "cat", "attributes": attributes}, headers=headers)
    assert created.status_code == 201, created.get_json()
    values = {a["name"]: a["values"] for a in created.get_json()["attributes"]}
    assert values == {"note": [], "count": [], "ok": [], "kind": ["a", "b"]}
    # What GET answers can be sent back as it is.
    label = created.get_json()
    again = client.patch(
        f"/api/v1/datasets/{world.dataset.id}/labels/{label['id']}", json={"attributes": label["attributes"]}, headers=headers
    )
    assert again.status_code == 200 and again.get_json()["attributes"] == label["attributes"]


@pytest.mark.parametrize("fmt, media_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")])
def test_an_original_is_served_with_a_media_type_the_document_lists(client, world, run_jobs, fmt, media_type):
    headers = token_for(world.owner)
    documented = _doc(client)["paths"]["/api/v1/datasets/{dataset_id}/images/{image_id}/file"]["get"]["responses"]["200"]["content"]
    sent = post_files(client, world.dataset.id, headers, [(image_bytes(fmt=fmt, seed=77), f"picture.{fmt.lower()}")])
    assert sent.status_code == 202, sent.get_json()
    run_jobs()
    listing = client.get(f"/api/v1/datasets/{world.dataset.id}/images?search=picture", headers=headers).get_json()
    served = client.get(listing["items"][0]["file_url"], headers=headers)
    assert served.status_code == 200 and served.mimetype == media_type and media_type in documented
