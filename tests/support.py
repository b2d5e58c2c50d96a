"""Helpers shared by the tests: a per-request isolated client, fast users, signing in without a password round-trip, uploads."""

import contextvars
import io
import re
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import event

from core.extensions import db
from models import DatasetMember, Image, Role, User
from tests.factories import make_user

# A byte-for-byte copy of ../shared/fixtures/formats (third-party annotation files; see its README).
FORMAT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    The `app_ctx` fixture keeps an app context pushed for the whole test; Flask reuses it for test
    requests, so `g` (flask-login's cached `current_user`, the per-request role cache) and the
    database session would leak from one request, or one client, into the next. Running each
    request in an empty contextvars context gives it a fresh app context, `g` and session.
    """

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(super().open, *args, **kwargs)
        # End the test's own transaction so it sees what the request committed (SQLite WAL keeps
        # a reader on its snapshot until its transaction ends).
        db.session.commit()
        return response




# Values that are no e-mail address, for every path that creates an account (issue 7).
BAD_EMAILS = [
    "with space@example.com", "a@exa mple.com", "tab\t@example.com", "line\r\nbreak@example.com",
    "a@example.com\r\nBcc: x@example.com", "no-at-sign", "two@@example.com", "one@two@example.com",
    "@example.com", "trailing@", "nul\x00@example.com", "bell\x07@example.com", "rtl\u202e@example.com",
    "x" * 290 + "@example.com", "a@" + "b" * 300 + ".com", "a@localhost\n",
]


def email_refusal(email: str) -> str:
    """What a page says of a bad address: NUL is refused by the HTTP edge before any service sees it."""
    return "NUL character" if "\x00" in email else "is not an email address"


GOOD_EMAILS = {"admin@localhost": "admin@localhost", "Ops@Example.COM": "ops@example.com", "first.last+tag@sub.example.org": "first.last+tag@sub.example.org"}


@contextmanager
def sql_statements():
    """The SQL statements sent while the block runs, as a list that fills up (to pin a hot path's queries)."""
    sent: list[str] = []

    def listener(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def save_statement_count(sent: list[str], annotations: int) -> int:
    """The statements a save sent, its annotation INSERTs counted once.

    PostgreSQL inserts the rows in one statement; SQLite one by one (it cannot return many ids in
    order), so the INSERTs are checked per database and the rest is the same on both.
    """
    inserts = [statement for statement in sent if statement.startswith("INSERT INTO annotation ")]
    one_statement = db.engine.dialect.name == "postgresql"
    assert len(inserts) == (min(annotations, 1) if one_statement else annotations), inserts
    return len(sent) - len(inserts) + min(len(inserts), 1)


def member(dataset, role: str, **kwargs) -> User:
    user = make_user(**kwargs)
    db.session.add(DatasetMember(dataset_id=dataset.id, user_id=user.id, role=Role(role)))
    db.session.commit()
    return user


def actor(dataset, role: str) -> User | None:
    """A user holding `role` on the dataset (admin, owner, a member role, outsider), or None for anonymous."""
    if role == "anonymous":
        return None
    if role == "admin":
        return make_user(is_admin=True)
    if role == "owner":
        return db.session.get(User, dataset.owner_id)
    if role == "outsider":
        return make_user()
    return member(dataset, role)


def sign_in(client, user: User) -> None:
    """Sign in by writing flask-login's session keys (the password flow is tested in test_auth)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def upload(client, dataset, files: list[tuple[bytes, str]], **form):
    """The no-JavaScript upload form: every file in one post; returns the response (303 to the job)."""
    data = {"files": [(io.BytesIO(content), name) for content, name in files], **form}
    return client.post(f"/datasets/{dataset.id}/upload/", data=data, content_type="multipart/form-data")


def job_id_from(response) -> str:
    location = response.headers["Location"]
    return urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]


def insert_images(dataset, count: int, *, start: int = 0, **columns) -> list[int]:
    """Bulk-insert image rows (no bytes) for grid tests where only the rows matter."""
    rows = [
        {
            "dataset_id": dataset.id, "file_name": f"img_{start + i:05d}.jpg", "storage_key": f"{start + i:064x}",
            "width": 64, "height": 48, "byte_size": 1000, "format": "jpeg", **columns,
        }
        for i in range(count)
    ]
    db.session.execute(db.insert(Image), rows)
    dataset.image_count = (dataset.image_count or 0) + count
    db.session.commit()
    return list(db.session.scalars(db.select(Image.id).where(Image.dataset_id == dataset.id).order_by(Image.id)))


def location_path(response) -> str:
    return urlsplit(response.headers.get("Location", "")).path


def hidden_csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def tile_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-image-id="(\d+)"', html)]
