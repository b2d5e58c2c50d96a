"""Users, sign-in throttling and API tokens."""

import secrets


from core.errors import Conflict, Invalid, NotFound, TooMany
from core.extensions import db
from core.queues import get_redis
from models import ApiToken, User
from models.base import utcnow

MIN_PASSWORD = 8


def _check_email(email: str) -> str:
    email = User.normalize_email(email or "")
    local, _, domain = email.partition("@")
    if not local or not domain or len(email) > 254 or any(c.isspace() for c in email):
        raise Invalid(f"{email or 'An empty address'} is not an email address", details={"field": "email"})
    return email


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


def _throttle_keys(email: str, ip: str) -> list[str]:
    return [f"loupe:login:email:{User.normalize_email(email)}", f"loupe:login:ip:{ip}"]


def authenticate(email: str, password: str, ip: str, *, attempts: int, window_s: int) -> User:
    """Check a sign-in; repeated failures per address and per client are throttled in Redis."""
    redis = get_redis()
    keys = _throttle_keys(email, ip)
    # One client may try several accounts (an office behind one address), so it gets more tries.
    for key, limit in zip(keys, (attempts, attempts * 4)):
        if int(redis.get(key) or 0) >= limit:
            minutes = max(1, (redis.ttl(key) + 59) // 60)
            raise TooMany(f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
    user = User.by_email(email or "")
    if user is None or not user.check_password(password or "") or not user.active:
        with redis.pipeline() as pipe:
            for key in keys:
                pipe.incr(key)
                pipe.expire(key, window_s)
            pipe.execute()
        raise Invalid("Wrong email or password, or the account is deactivated")
    redis.delete(keys[0])
    return user


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
    token = db.session.scalar(db.select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(secret)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    now = utcnow()
    # Only write last_used when it moved by a minute: a script's every request must not be a write.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        db.session.commit()
    return token.user
