"""The OpenAPI document (generated from the code) and the browsable docs page."""

import json
import re

import openapi_spec_validator

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
    assert files == {"type": "array", "items": {"type": "string", "format": "binary"}}
    datasets = doc["paths"]["/api/v1/datasets"]
    assert {"search", "type", "archived", "sort", "order", "limit", "offset", "with_labels", "preview"} <= {
        p["name"] for p in datasets["get"]["parameters"]
    }
    create = datasets["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert doc["components"]["schemas"][create]["properties"]["type"]["enum"][0] == "classification"
    assert "201" in datasets["post"]["responses"]
    assert "202" in doc["paths"]["/api/v1/datasets/{dataset_id}"]["delete"]["responses"]


def test_token_auth_and_the_error_shape_are_documented(client):
    doc = _doc(client)
    assert doc["components"]["securitySchemes"]["token"] == {
        "type": "apiKey", "in": "header", "name": "Authorization", "description": doc["components"]["securitySchemes"]["token"]["description"],
    }
    assert doc["security"] == [{"token": []}]
    error = doc["components"]["schemas"]["Error"]["properties"]["error"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][error]["properties"]) == {"code", "message", "details"}


def test_the_docs_page_loads_swagger_ui_from_the_vendored_files(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in assets and "/static/vendor/swagger-ui/swagger-ui.css" in assets
    assert all(a.startswith("/static/vendor/swagger-ui/") for a in assets), assets  # never a CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    assert '"/api/v1/openapi.json"' in html
