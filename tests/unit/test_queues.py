"""The embedded Redis: started under the instance folder, stopped for real when Loupe stops."""

import os

from core.queues import redis_url_of, start_embedded_redis, stop_embedded_redis


def test_stopping_the_embedded_redis_ends_its_server_process_and_keeps_its_data(tmp_path):
    connection = start_embedded_redis(str(tmp_path))
    connection.set("kept", "yes")
    pid = connection.pid
    assert redis_url_of(connection).startswith("unix://")

    stop_embedded_redis(connection, save=True)

    # The server is gone (a zombie child until reaped at most), and its data was written to disk.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z"
    assert (tmp_path / "redis.db").exists()
