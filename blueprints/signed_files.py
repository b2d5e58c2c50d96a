"""Signed, expiring image links (the CSV of URLs): the one route reachable without signing in that
serves a dataset's file; the link's signature is its permission (services/signed_urls.py)."""

import time

from flask import Blueprint

from core.files import media_type, send_object
from core.permissions import public
from services import signed_urls

bp = Blueprint("signed-files", __name__, url_prefix="/files")


@bp.get("/<token>")
@public
def show(token: str):
    """The original bytes of the file the link names, until it expires."""
    link = signed_urls.open_link(token)
    response = send_object(link.storage_key, media_type(link.format), link.file_name)
    # Cached no longer than the link works: after that it must be refused, not served from a cache.
    response.headers["Cache-Control"] = f"private, max-age={max(0, link.expires_at - int(time.time()))}"
    return response
