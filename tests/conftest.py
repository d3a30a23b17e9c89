"""Shared fixtures: a real redis-server on a free port, and helpers."""

# The controller runs on gevent and talks to Redis with blocking sockets, as
# in production (`tollgate run` patches first thing too): patch before any import.
from gevent import monkey

monkey.patch_all()



import os
import shutil
import time

import pytest
import redis

from controller.testing import RedisServer, free_port  # noqa: F401 - re-exported for the tests


def _server(durable: bool):
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(durable=durable)
    server.start()
    return server


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch):
    """Controllers a test starts as processes keep their audit spool file in
    the test's own directory: not in the user's state directory, where other
    runs (and other tests' controllers of the same name) would find it."""
    monkeypatch.setenv("TOLLGATE_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture(scope="session")
def redis_server():
    """A durable redis-server (append-only file, fsync on every write), for the
    tests that kill, stop or restart it and expect its data back. A test that
    asks for it gets it from `redis_url` too."""
    server = _server(durable=True)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def memory_redis():
    """A redis-server without persistence, for every other test: fsync on every
    write of every test's calls made the durable one stall past clients' 0.5 s
    timeouts on this shared disk, now and then."""
    server = _server(durable=False)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def ha_redis():
    """TOLLGATE_TEST_REDIS=cluster|sentinel runs every test that takes `redis_url`
    (and does not kill its server) on a Redis Cluster or behind Sentinels."""
    from controller.testing.ha import ClusterSet, SentinelSet

    which = os.environ.get("TOLLGATE_TEST_REDIS", "")
    setup = {"cluster": ClusterSet, "sentinel": SentinelSet}[which]().start()
    yield setup
    setup.stop()


@pytest.fixture
def plain_redis_url(memory_redis):
    """One plain redis-server whatever TOLLGATE_TEST_REDIS says: the tests of
    the single-server lane."""
    if memory_redis.proc.poll() is not None:
        memory_redis.start()
    redis.Redis.from_url(memory_redis.url).flushall()
    return memory_redis.url


@pytest.fixture
def redis_url(request):
    durable = "redis_server" in request.fixturenames
    if os.environ.get("TOLLGATE_TEST_REDIS") and not durable:
        from controller.store.connection import connect

        setup = request.getfixturevalue("ha_redis")
        connect(setup.url, timeout=2).flushall()
        return setup.url
    server = request.getfixturevalue("redis_server" if durable else "memory_redis")
    if server.proc.poll() is not None:  # a test stopped it: bring it back
        server.start()
    r = redis.Redis.from_url(server.url)
    r.flushall()
    if durable:
        _compact_aof(r)
    return server.url


def _compact_aof(r: redis.Redis, limit: int = 4 << 20) -> None:
    """The append-only file keeps every write of the session, flushed or not: a
    test that restarts Redis would wait for all of it to load again (seconds,
    by the fault suite). Past a few MB it is rewritten from the empty dataset,
    and the test starts once that is done (a rewrite under way can stall Redis
    past a client's timeout)."""
    if int(r.info("persistence").get("aof_current_size", 0)) < limit:
        return
    try:
        r.bgrewriteaof()
    except redis.ResponseError:
        pass  # one is running already
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = r.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.05)


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
