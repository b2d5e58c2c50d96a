"""Users, sign-in throttling, sessions and API tokens."""

import hashlib
import secrets

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash

from core.errors import Conflict, Invalid, NotFound, TooMany
from core.extensions import db
from core.queues import get_redis
from models import ApiToken, User
from models.base import utcnow

MIN_PASSWORD = 8
MAX_EMAIL = 254  # the column's size, and RFC 5321's limit for an address


def _check_email(email) -> str:
    """The address, normalised and lower-cased, or Invalid saying what is wrong with it."""
    # Only plain spaces around a pasted address are forgiven; any other whitespace is refused.
    text = email.strip(" ") if isinstance(email, str) else ""
    local, _, domain = text.rpartition("@")
    # The launcher's first admin is admin@localhost, a special-use name the library always rejects:
    # for that one domain, check the local part against a stand-in domain and keep "localhost".
    is_localhost = domain.lower() == "localhost"
    try:
        checked = validate_email(f"{local}@example.com" if is_localhost else text, check_deliverability=False)
    except EmailNotValidError as exc:
        shown = text if text.isprintable() and len(text) <= 80 else repr(text[:80])
        raise Invalid(f"{shown or 'An empty address'} is not an email address: {exc}", details={"field": "email"}) from None
    address = (f"{checked.local_part}@localhost" if is_localhost else checked.normalized).lower()
    if len(address) > MAX_EMAIL:
        raise Invalid(f"An email address has at most {MAX_EMAIL} characters", details={"field": "email"})
    return address


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise Invalid(f"The password must have at least {MIN_PASSWORD} characters", details={"field": "password"})


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(email: str, password: str | None = None, *, display_name: str = "", is_admin: bool = False) -> tuple[User, str]:
    """Create an account; returns it with its password (generated when none is given)."""
    email = _check_email(email)
    if User.by_email(email):
        raise Conflict(f"A user with the email {email} already exists", details={"field": "email"})
    password = password or generate_password()
    _check_password(password)
    user = User(email=email, display_name=display_name.strip()[:120], is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user, password


def needs_first_admin() -> bool:
    return db.session.scalar(db.select(User.id).limit(1)) is None


# What unknown e-mails are checked against: made once by werkzeug's generate_password_hash, with
# the cost every real hash has (scrypt:32768:8:1), of a password nobody knows. A constant rather than
# made on first use, which would make the first unknown e-mail of each process twice as slow.
DUMMY_HASH = (
    "scrypt:32768:8:1$E6KdsrvNlo226PG4$8fab07f76687ffbe91633aa19e8c238846424a5c8dae91f8d7cdf54707518bee"
    "420ba884e1038063cd97a8af9b8fe2a2ca74048477c6f5b58375283dd89e0936"
)


def _throttles(email: str, ip: str, attempts: int) -> list[tuple[str, int]]:
    """The Redis counters a failed sign-in raises, each with its limit.

    The account and the address together get the strict limit, so a spray from an office's one
    address does not lock a colleague behind it out of their own account. The address alone gets a
    looser one (it stops a spray across many accounts), and so does the account across every
    address (it stops one account's brute force from many addresses).
    """
    account = hashlib.sha256(User.normalize_email(email).encode()).hexdigest()  # any length, a short key
    return [
        (f"loupe:login:pair:{ip}:{account}", attempts),
        (f"loupe:login:ip:{ip}", attempts * 20),
        (f"loupe:login:account:{account}", attempts * 4),
    ]


def authenticate(email: str, password: str, ip: str, *, attempts: int, window_s: int) -> User:
    """Check a sign-in; repeated failures are throttled in Redis (see _throttles)."""
    redis = get_redis()
    throttles = _throttles(email or "", ip, attempts)
    for key, limit in throttles:
        if int(redis.get(key) or 0) >= limit:
            minutes = max(1, (redis.ttl(key) + 59) // 60)
            raise TooMany(f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
    user = User.by_email(email or "")
    if user is None:
        # Hash anyway, so an unknown email takes as long as a wrong password (no enumeration by timing).
        check_password_hash(DUMMY_HASH, password or "")
    if user is None or not user.check_password(password or "") or not user.active:
        with redis.pipeline() as pipe:
            for key, _ in throttles:
                pipe.incr(key)
                pipe.expire(key, window_s)
            pipe.execute()
        raise Invalid("Wrong email or password, or the account is deactivated")
    # The address's count stays: a spray that guesses one password right is still a spray.
    redis.delete(throttles[0][0], throttles[2][0])
    return user


def end_sessions(user: User) -> None:
    """Sign the user out of every browser: sessions and remember-me cookies of older generations stop loading."""
    # Incremented in SQL, so two concurrent sign-outs both count and neither is lost.
    user.session_generation = User.session_generation + 1
    db.session.commit()


def update_user(user: User, *, active: bool | None = None, is_admin: bool | None = None, password: str | None = None, by: User) -> User:
    """Admin changes to an account; an admin cannot lock themselves out."""
    if user.id == by.id and (active is False or is_admin is False):
        raise Invalid("You cannot deactivate yourself or remove your own admin rights")
    if active is not None:
        user.active = active
    if is_admin is not None:
        user.is_admin = is_admin
    if password is not None:
        _check_password(password)
        user.set_password(password)
    # A new password or a deactivation must not leave a stolen or forgotten session working.
    if password is not None or active is False:
        user.session_generation = User.session_generation + 1  # as end_sessions, in this transaction
    db.session.commit()
    return user


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Create an API token; the secret is returned once and only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise Invalid("Give the token a name of 1 to 120 characters", details={"field": "name"})
    token, secret = ApiToken.generate(user, name)
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_tokens(user: User) -> list[ApiToken]:
    return db.session.scalars(
        db.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).order_by(ApiToken.id)
    ).all()


def revoke_token(user: User, token_id: int) -> None:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound(f"Token {token_id} not found")
    token.revoked_at = utcnow()
    db.session.commit()


def user_for_token(secret: str) -> User | None:
    """The active user a token belongs to, or None; records when the token was last used."""
    # The user in the same query: every API request needs both.
    token = db.session.scalar(
        db.select(ApiToken).options(joinedload(ApiToken.user, innerjoin=True)).where(ApiToken.token_hash == ApiToken.hash(secret))
    )
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    # Only write last_used when it moved by a minute: a script's every request must not be a write.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    return token.user
