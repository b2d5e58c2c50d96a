"""Serving stored objects: content-addressed, so cacheable for a year and validated by ETag.

Also the one rule for file names a person or a header will read (cleaning uploads, Content-Disposition).
"""

import os
import re
import unicodedata
from urllib.parse import quote

from flask import request, send_file
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from core.errors import NotFound
from core.storage import get_storage

MEDIA_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "bmp": "image/bmp", "tiff": "image/tiff", "gif": "image/gif"}

# Control characters (C0, DEL, C1) and the bidirectional controls that make "photo‮gpj.exe" read as
# "photoexe.jpg": a name keeps none of them, in the database or in a header.
UNSAFE_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def media_type(fmt: str | None) -> str:
    """The content type of a format Loupe decoded (Image.format), never one guessed from a file name."""
    return MEDIA_TYPES.get(fmt or "", "application/octet-stream")


def clean_file_name(name: str) -> str:
    """The name with each control or bidirectional-override character replaced by "_"."""
    return UNSAFE_IN_NAMES.sub("_", name)


def content_disposition(name: str, attachment: bool = True) -> str:
    """A Content-Disposition any name is safe in: RFC 6266 `filename*=UTF-8''…` with an ASCII fallback."""
    name = clean_file_name(name) or "file"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r'["\\%/]', "_", fallback).strip() or "file"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def send_original(image, attachment: bool = False):
    """An image's original bytes, for the page and the API alike: typed by the format Loupe decoded,
    named by its file name (shown inline, or saved as an attachment)."""
    return send_object(image.storage_key, media_type(image.format), image.file_name, attachment)


def send_object(key: str, media_type: str, file_name: str | None = None, attachment: bool = False):
    """Send a stored object with a strong ETag (its key); a matching If-None-Match gets 304.

    A file_name goes into Content-Disposition, built here: werkzeug's raises on a line break.
    """
    try:
        stream = get_storage().open(key)
    except FileNotFoundError:
        raise NotFound("The file is missing from storage") from None
    response = send_file(stream, mimetype=media_type, etag=key.replace("/", "-"), conditional=False, max_age=None)
    # send_file knows no size for a stream, and without one answers a Range with the whole file;
    # with it a broken download resumes (206). A RequestedRangeNotSatisfiable is werkzeug's 416.
    size = os.fstat(stream.fileno()).st_size if hasattr(stream, "fileno") else None
    if size is not None:
        response.content_length = size
    try:
        response = response.make_conditional(request.environ, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        stream.close()
        raise
    if file_name is not None:
        response.headers["Content-Disposition"] = content_disposition(file_name, attachment)
    # private: permission is checked per request, so shared caches must not keep a copy.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
