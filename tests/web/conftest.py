"""Fixtures the web tests share."""

import pytest

from tests.support import fast_user, sign_in


@pytest.fixture
def owner(client):
    """A dataset owner-to-be, signed in on `client`."""
    user = fast_user("owner@example.com")
    sign_in(client, user)
    return user
