"""A body over LOUPE_MAX_UPLOAD_MB gets Loupe's 413 under the launcher's waitress and under gunicorn alike.

Real servers on free ports, spoken to over real sockets: the launcher's waitress refuses such a body
before reading it, so the test sends only the headers that announce it.
"""

import http.client
import subprocess
import sys
import threading
import time

import pytest
from waitress import wasyncore

from core import http as loupe_http
from tests.conftest import ROOT, free_port, make_app, worker_env
from tests.factories import make_dataset, make_user, token_for

LIMIT_MB = 1
OVER = LIMIT_MB * 1024 * 1024 + 1


@pytest.fixture
def world(app_ctx):
    user = make_user()
    return make_dataset(user), token_for(user)


def _serve_until(server, stop: threading.Event) -> None:
    """server.run() until `stop` is set, then close the server's sockets in this same thread.

    Closed from another thread, they are still in the loop's select(), which fails with EBADF and
    kills the thread (waitress issue #468); and the connections the test left open would keep the
    loop running past the teardown.
    """
    while not stop.is_set():
        wasyncore.loop(timeout=0.05, map=server._map, count=1)
    wasyncore.close_all(server._map)  # the listening socket, the trigger and every connection


@pytest.fixture
def waitress_port(app_ctx, backend):
    """The launcher's server (core.http.create_server, as core/launcher.py serves) on a free port."""
    app = make_app(backend, MAX_CONTENT_LENGTH=LIMIT_MB * 1024 * 1024, TESTING=False, WTF_CSRF_ENABLED=True, REDIS_URL=app_ctx.config["REDIS_URL"])
    port = free_port()
    server = loupe_http.create_server(app, host="127.0.0.1", port=port, threads=2, max_request_body_size=app.config["MAX_CONTENT_LENGTH"])
    stop = threading.Event()
    thread = threading.Thread(target=_serve_until, args=(server, stop), daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive(), "the waitress loop did not stop"
    server.task_dispatcher.shutdown()


@pytest.fixture
def gunicorn_port(app_ctx):
    port = free_port()
    env = {**worker_env(app_ctx), "LOUPE_MAX_UPLOAD_MB": str(LIMIT_MB)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:  # the master listens before its worker has built the app: wait for a real answer
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/static/js/app.js")
            assert connection.getresponse().status == 200
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def _announce_body(port: int, path: str, headers: dict, length: int = OVER):
    """Send the request line and headers of a `length`-byte multipart body, and read the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("POST", path)
    for name, value in {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(length), **headers}.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read().decode()


def _assert_loupe_413(port: int, world):
    import json

    dataset, token = world
    status, headers, body = _announce_body(port, f"/api/v1/datasets/{dataset.id}/images", token)
    assert status == 413 and headers["Content-Type"] == "application/json", body
    error = json.loads(body)["error"]
    assert error["code"] == "request_entity_too_large" and f"limit of {LIMIT_MB} MB" in error["message"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Pages: the error page, or the partial for htmx (signed out, the limit still comes first).
    status, headers, body = _announce_body(port, f"/datasets/{dataset.id}/upload/", {})
    assert status == 413 and headers["Content-Type"].startswith("text/html") and "<html" in body and f"{LIMIT_MB} MB" in body
    status, headers, body = _announce_body(port, f"/datasets/{dataset.id}/upload/", {"HX-Request": "true"})
    assert status == 413 and "<html" not in body and 'data-code="request_entity_too_large"' in body


def test_the_launchers_waitress_answers_a_body_over_the_limit_in_loupes_shape(waitress_port, world):
    _assert_loupe_413(waitress_port, world)


def test_gunicorn_answers_a_body_over_the_limit_in_loupes_shape(gunicorn_port, world):
    _assert_loupe_413(gunicorn_port, world)


@pytest.mark.parametrize("server", ["waitress_port", "gunicorn_port"])
def test_a_body_under_the_limit_still_goes_through(request, server, world):
    port = request.getfixturevalue(server)
    dataset, token = world
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/api/v1/datasets", body=b'{"name": "Under", "type": "detection", "description": "' + b"x" * 4000 + b'"}',
                       headers={**token, "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 201, response.read()


def test_waitress_still_answers_its_other_errors_itself(waitress_port):
    connection = http.client.HTTPConnection("127.0.0.1", waitress_port, timeout=10)
    connection.putrequest("POST", "/api/v1/me")
    connection.putheader("Content-Length", "not-a-number")
    connection.endheaders()
    assert connection.getresponse().status == 400

