"""The API answers the signed-in browser session too, with CSRF checked on its writes (SPEC section 9)."""

import re

import pytest

from core.extensions import db
from models import ApiToken, Dataset
from tests.conftest import make_app
from tests.factories import PASSWORD, make_user, token_for
from tests.support import IsolatedClient, hidden_csrf

WRITES = [
    ("POST", "/api/v1/tokens", {"name": "from the browser"}),
    ("POST", "/api/v1/datasets", {"name": "Browser cats", "type": "classification"}),
    ("PATCH", "/api/v1/datasets/{ds}", {"description": "changed"}),
    ("DELETE", "/api/v1/datasets/{ds}", None),
]


@pytest.fixture
def csrf_client(app_ctx, backend):
    """A client of an app with CSRF on, as in production."""
    app = make_app(backend, WTF_CSRF_ENABLED=True, REDIS_URL=app_ctx.config["REDIS_URL"])
    return IsolatedClient(app, app.response_class, use_cookies=True)


def sign_in(client, user) -> str:
    """Sign in through the real form; return the CSRF token a Loupe page carries."""
    token = hidden_csrf(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}).status_code == 303
    return hidden_csrf(client.get("/datasets/new").get_data(as_text=True))


def send(client, method: str, path: str, body, user, **kwargs):
    dataset = Dataset.query.filter_by(owner_id=user.id).first()
    return client.open(path.format(ds=dataset.id if dataset else 0), method=method, json=body, **kwargs)


@pytest.fixture
def owner_with_dataset(app_ctx):
    from tests.factories import make_dataset

    user = make_user("owner@example.com")
    make_dataset(user, name="Mine")
    return user


def test_get_me_with_only_the_session_cookie_works(csrf_client, owner_with_dataset):
    sign_in(csrf_client, owner_with_dataset)
    response = csrf_client.get("/api/v1/me")
    assert response.status_code == 200 and response.get_json()["email"] == "owner@example.com"
    assert csrf_client.get("/api/v1/datasets").get_json()["total"] == 1


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize("header", [None, "", "not-the-token", "from another session"])
def test_a_cookie_authenticated_write_without_the_csrf_header_is_refused(csrf_client, owner_with_dataset, method, path, body, header):
    sign_in(csrf_client, owner_with_dataset)
    headers = {}
    if header == "from another session":
        elsewhere = IsolatedClient(csrf_client.application, csrf_client.application.response_class, use_cookies=True)
        headers["X-CSRFToken"] = sign_in(elsewhere, make_user("other@example.com"))
    elif header is not None:
        headers["X-CSRFToken"] = header
    response = send(csrf_client, method, path, body, owner_with_dataset, headers=headers)
    assert response.status_code in (400, 403), response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == "csrf_failed" and error["message"]
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(ApiToken.id))) == 0
    assert [d.name for d in db.session.scalars(db.select(Dataset))] == ["Mine"]
    assert Dataset.query.one().description == ""


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_cookie_authenticated_write_with_the_csrf_header_works(csrf_client, owner_with_dataset, method, path, body):
    csrf = sign_in(csrf_client, owner_with_dataset)
    response = send(csrf_client, method, path, body, owner_with_dataset, headers={"X-CSRFToken": csrf})
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("method,path,body", WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_a_token_request_needs_no_csrf_header(csrf_client, owner_with_dataset, method, path, body):
    response = send(csrf_client, method, path, body, owner_with_dataset, headers=token_for(owner_with_dataset))
    assert response.status_code in (200, 201, 202), response.get_data(as_text=True)[:300]


def test_a_token_wins_over_the_session_cookie(csrf_client, owner_with_dataset):
    """With both, the request is the token's: its user, and no CSRF asked."""
    sign_in(csrf_client, owner_with_dataset)
    other = make_user("script@example.com")
    response = csrf_client.post("/api/v1/tokens", json={"name": "ci"}, headers=token_for(other))
    assert response.status_code == 201
    assert csrf_client.get("/api/v1/me", headers=token_for(other)).get_json()["email"] == "script@example.com"


def test_without_a_token_or_a_session_the_api_answers_401(csrf_client, owner_with_dataset):
    for method in ("GET", "POST"):
        response = csrf_client.open("/api/v1/me" if method == "GET" else "/api/v1/tokens", method=method, json=None if method == "GET" else {"name": "x"})
        assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_the_docs_page_carries_the_csrf_token_for_its_requests(csrf_client, owner_with_dataset):
    sign_in(csrf_client, owner_with_dataset)
    page = csrf_client.get("/api/v1/docs").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    assert "/static/js/api_docs.js" in page and "<script>" not in page, "no inline script"
    assert csrf_client.post("/api/v1/tokens", json={"name": "docs"}, headers={"X-CSRFToken": token}).status_code == 201


@pytest.mark.browser
def test_try_it_out_on_the_docs_page_uses_the_signed_in_session(page, live_server):
    make_user("docs@example.com")
    page.goto("/login")
    page.fill("input[name=email]", "docs@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/datasets/")

    page.goto("/api/v1/docs")
    operation = page.locator(".opblock-get").filter(has=page.locator('[data-path="/api/v1/me"]'))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200")
    assert "docs@example.com" in operation.locator(".live-responses-table tr.response .response-col_description").first.inner_text()

    # A write from the page: the docs page's request interceptor adds the CSRF header.
    created = page.evaluate(
        """async () => {
            const request = window.ui.getConfigs().requestInterceptor({url: "/api/v1/tokens", method: "POST", headers: {}});
            const response = await fetch(request.url, {method: "POST", headers: {...request.headers, "Content-Type": "application/json"},
                                                       body: JSON.stringify({name: "from the docs page"})});
            return response.status;
        }"""
    )
    assert created == 201
