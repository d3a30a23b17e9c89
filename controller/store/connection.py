"""Redis clients: a real server from a URL, or the embedded in-memory store.

Every call on a real server has a socket timeout: a slow Redis must turn into
a clear error (and a fail-closed verdict), never into a call stuck in park.
"""

from __future__ import annotations

import logging
import sys

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from controller.errors import SchemaMismatch
from controller.store import keys

log = logging.getLogger("tollgate.store")

DEFAULT_TIMEOUT = 0.5  # seconds; a decision waits at most this long per round trip
POOL_SIZE = 64  # connections per process: thousands of calls share them

_embedded_server = None


def embedded_server():
    """One in-memory server per process, so the demo's parts share one store."""
    global _embedded_server
    if _embedded_server is None:
        import fakeredis

        _embedded_server = fakeredis.FakeServer()
    return _embedded_server


def connect(url: str | None, *, timeout: float = DEFAULT_TIMEOUT, warn: bool = True) -> redis.Redis:
    if not url:
        import fakeredis

        if warn:
            print(
                "tollgate: warning: no --redis-url / TOLLGATE_REDIS_URL: using an embedded "
                "in-memory store; nothing is kept after this process ends",
                file=sys.stderr,
            )
        return fakeredis.FakeRedis(server=embedded_server(), decode_responses=True)
    # A bounded pool that makes a greenlet wait (within the timeout) for a free
    # connection: with one connection per waiting greenlet, 5,000 PIN dialogs
    # would open 5,000 sockets to Redis.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=timeout,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        # No hidden retries: a failed call fails now and the caller decides
        # (fail closed, or spool), within the timeout above.
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


def check_schema(r: redis.Redis) -> None:
    """Stamp an empty store with our schema version; refuse a store of another one."""
    found = r.get(keys.SCHEMA_KEY)
    if found is None:
        r.set(keys.SCHEMA_KEY, keys.SCHEMA_VERSION, nx=True)
        return
    if found != keys.SCHEMA_VERSION:
        raise SchemaMismatch(
            f"Redis holds Tollgate schema version {found}, this program knows {keys.SCHEMA_VERSION}"
        )
