"""Web-test fixtures: a client whose requests each get their own app context (see IsolatedClient)."""

import pytest

from tests.web.support import IsolatedClient


@pytest.fixture
def client(app_ctx):
    return IsolatedClient(app_ctx, app_ctx.response_class, use_cookies=True)


@pytest.fixture
def new_client(app_ctx):
    """Make more clients, for tests with two people (or a signed-in and an anonymous browser)."""
    return lambda: IsolatedClient(app_ctx, app_ctx.response_class, use_cookies=True)
