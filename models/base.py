"""Column helpers shared by the models."""

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids (COCO ids exceed 2^32).
BigId = BigInteger().with_variant(Integer(), "sqlite")
