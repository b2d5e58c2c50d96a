"""Serving stored objects: content-addressed, so cacheable for a year and validated by ETag."""

from flask import send_file

from core.errors import NotFound
from core.storage import get_storage

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp", "tiff": "image/tiff", "gif": "image/gif"}


def send_object(key: str, media_type: str, download_name: str | None = None):
    """Send a stored object with a strong ETag (its key); a matching If-None-Match gets 304."""
    try:
        stream = get_storage().open(key)
    except FileNotFoundError:
        raise NotFound("The file is missing from storage") from None
    response = send_file(
        stream, mimetype=media_type, download_name=download_name, as_attachment=download_name is not None,
        etag=key.replace("/", "-"), conditional=True, max_age=None,
    )
    # private: permission is checked per request, so shared caches must not keep a copy.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
