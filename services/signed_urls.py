"""Expiring image links that work without signing in (the CSV of URLs), signed with the app's secret.

A link names a dataset, a stored file (its sha256 key), the file name it downloads as, and when it
stops working; nothing else is trusted from it. It works only while the dataset still holds the file
(an image of it, or of one of its released versions): deleting the dataset or the image ends it,
before it expires.
"""

import time
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from core.errors import Forbidden, Gone, NotFound
from core.extensions import db
from models import Dataset, Image
from models.version import Version, VersionImage
from services.job_kinds import DELETING
from services.jobs import dataset_status

# Keeps these signatures apart from every other use of the secret (sessions, CSRF, undo tokens).
_SALT = "loupe.signed-file"
ENDPOINT = "signed-files.show"
DEFAULT_BASE_URL = "http://localhost:5000"


@dataclass(frozen=True)
class SignedFile:
    dataset_id: int
    storage_key: str
    file_name: str
    expires_at: int  # seconds since the epoch
    format: str  # as Loupe decoded it, for the content type


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def base_url() -> str:
    """Where people reach Loupe: LOUPE_BASE_URL, else SERVER_NAME, else the launcher's default."""
    config = current_app.config
    if config.get("LOUPE_BASE_URL"):
        return config["LOUPE_BASE_URL"].rstrip("/")
    if config.get("SERVER_NAME"):
        return f"{config.get('PREFERRED_URL_SCHEME') or 'http'}://{config['SERVER_NAME']}"
    return DEFAULT_BASE_URL


def image_url(dataset_id: int, storage_key: str, file_name: str, expires_in_s: int) -> str:
    """An absolute URL that downloads the stored file as file_name, without signing in, for expires_in_s seconds."""
    token = _serializer().dumps({"d": dataset_id, "k": storage_key, "n": file_name, "e": int(time.time()) + expires_in_s})
    return base_url() + _path_before_token() + token


def _path_before_token() -> str:
    """The route's path up to the token, from the URL map with no request (a worker makes links).

    Built once per app: building a URL costs more than signing, and an export makes one per image.
    """
    extensions = current_app.extensions
    if "loupe.signed_file_path" not in extensions:
        adapter = current_app.url_map.bind("", script_name=current_app.config.get("APPLICATION_ROOT") or "/")
        extensions["loupe.signed_file_path"] = adapter.build(ENDPOINT, {"token": "-"})[:-1]
    return extensions["loupe.signed_file_path"]


def _payload(token: str) -> dict:
    try:
        payload = _serializer().loads(token)
    except BadSignature:
        payload = None
    fields = {"d": int, "k": str, "n": str, "e": int}
    if not isinstance(payload, dict) or any(type(payload.get(key)) is not kind for key, kind in fields.items()):
        raise Forbidden("This download link is not valid: it was changed or cut short", code="bad_link")
    return payload


def _held_format(dataset_id: int, storage_key: str) -> str | None:
    """The format of the file if the dataset still holds it, live or in a released version; else None."""
    live = db.session.scalar(select(Image.format).where(Image.dataset_id == dataset_id, Image.storage_key == storage_key))
    if live is not None:
        return live
    return db.session.scalar(
        select(VersionImage.format).join(Version, Version.id == VersionImage.version_id)
        .where(Version.dataset_id == dataset_id, VersionImage.storage_key == storage_key).limit(1)
    )


def open_link(token: str) -> SignedFile:
    """The file a link names: Forbidden if it was tampered with, Gone once it expired,
    NotFound once its dataset (or the image) is gone."""
    payload = _payload(token)
    if payload["e"] <= time.time():
        raise Gone("This download link has expired; export the CSV of URLs again for fresh links", code="link_expired")
    dataset = db.session.get(Dataset, payload["d"])
    fmt = _held_format(payload["d"], payload["k"]) if dataset is not None and dataset_status(dataset) != DELETING else None
    if fmt is None:
        raise NotFound("The file of this link is no longer in Loupe")
    return SignedFile(payload["d"], payload["k"], payload["n"], payload["e"], fmt)
