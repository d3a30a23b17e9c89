"""Shared fixtures: a real redis-server on a free port, and helpers."""

# The controller runs on gevent and talks to Redis with blocking sockets, as
# in production (`tollgate run` patches first thing too): patch before any import.
from gevent import monkey

monkey.patch_all()



import os
import shutil

import pytest
import redis

from controller.testing import RedisServer, free_port  # noqa: F401 - re-exported for the tests


@pytest.fixture(scope="session")
def redis_server():
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_url(redis_server):
    if redis_server.proc.poll() is not None:  # a test stopped it: bring it back
        redis_server.start()
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    # The append-only file keeps every write of the session, flushed or not: a
    # test that restarts Redis would wait for it all to load again (seconds, by
    # the fault suite). Rewritten from the empty dataset, it is a few bytes.
    try:
        r.bgrewriteaof()
    except redis.ResponseError:
        pass  # one is running already
    return redis_server.url


@pytest.fixture
def rig(redis_url, caplog):
    """Simulator + real Redis, the seed tenant provisioned, no controller yet."""
    import logging

    from tests.rig import Rig

    caplog.set_level(logging.DEBUG)
    r = Rig(redis_url)
    r.provision()
    yield r
    r.close()
