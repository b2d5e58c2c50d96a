"""Accounts and API tokens."""

import hashlib
import re
import secrets
from datetime import datetime
from typing import Callable

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from core.extensions import db
from models.base import utcnow

SESSION_ID = re.compile(r"(?P<user>[0-9]{1,18}):(?P<generation>[0-9]{1,18})")


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased so uniqueness is case-insensitive on every database.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of every session's and remember-me cookie's identity (get_id): raising it signs the
    # user out everywhere at once, since a cookie naming an older generation no longer loads.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    tokens: Mapped[list["ApiToken"]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        """The identity flask-login keeps in the session and the remember-me cookie."""
        return f"{self.id}:{self.session_generation}"

    @classmethod
    def from_session_id(cls, session_id: str, load: "Callable[[int], User | None] | None" = None) -> "User | None":
        """The user a session identity names, or None when it is malformed or its generation ended.

        Args:
            load: reads the user of an id (default: by primary key), e.g. with more in the same query.
        """
        match = SESSION_ID.fullmatch(session_id or "")
        if match is None:  # also the plain ids of cookies issued before generations existed
            return None
        user_id = int(match["user"])
        user = load(user_id) if load is not None else db.session.get(cls, user_id)
        return user if user is not None and user.session_generation == int(match["generation"]) else None

    @property
    def name(self) -> str:
        return self.display_name or self.email

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @staticmethod
    def normalize_email(email: str) -> str:
        return email.strip().lower()

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(db.select(cls).where(func.lower(cls.email) == cls.normalize_email(email)))


class ApiToken(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    # Only a sha256 of the token is kept: a leaked database does not leak working tokens.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    PREFIX = "loupe_"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def generate(cls, user: User, name: str) -> tuple["ApiToken", str]:
        secret = cls.PREFIX + secrets.token_urlsafe(32)
        return cls(user=user, name=name, token_hash=cls.hash(secret), prefix=secret[: len(cls.PREFIX) + 4]), secret
