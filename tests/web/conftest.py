"""Fixtures the web tests share."""

import pytest

from tests.factories import make_user
from tests.support import sign_in


@pytest.fixture
def owner(client):
    """A dataset owner-to-be, signed in on `client`."""
    user = make_user("owner@example.com")
    sign_in(client, user)
    return user
