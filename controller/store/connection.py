"""Redis clients: a real server from a URL, or the embedded in-memory store.

Every call on a real server has a socket timeout: a slow Redis must turn into
a clear error (and a fail-closed verdict), never into a call stuck in park.
"""

from __future__ import annotations

import logging
import sys
from urllib.parse import unquote

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


class BadRedisUrl(ValueError):
    pass


def _hosts(netloc: str, scheme: str) -> tuple[str | None, list[tuple[str, int]]]:
    """'[:password@]host:port,host:port' -> (password, [(host, port)])."""
    password = None
    if "@" in netloc:
        auth, _, netloc = netloc.rpartition("@")
        password = unquote(auth.partition(":")[2] if ":" in auth else auth) or None
    hosts = []
    for item in filter(None, netloc.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise BadRedisUrl(f"{scheme}: '{item}' is not host:port")
        hosts.append((host.strip("[]"), int(port)))
    if not hosts:
        raise BadRedisUrl(f"{scheme}: no host:port given")
    return password, hosts


def _sentinel(url: str, timeout: float) -> redis.Redis:
    """redis+sentinel://[:password@]host:port,host:port/service[/db]: the master
    the Sentinels name, asked again on every new connection, so a failover is
    followed without a restart (redis-py's SentinelManagedConnection)."""
    from redis.sentinel import Sentinel

    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    password, hosts = _hosts(netloc, "redis+sentinel")
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise BadRedisUrl("redis+sentinel: the path must be /<service>[/<db>], e.g. /mymaster/0")
    sentinels = Sentinel(hosts, socket_timeout=timeout, socket_connect_timeout=timeout,
                         sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout})
    return sentinels.master_for(parts[0], db=int(parts[1]) if len(parts) == 2 else 0, password=password,
                                decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
                                retry_on_timeout=False, retry=Retry(NoBackoff(), 0), max_connections=4 * POOL_SIZE)


def _cluster(url: str, timeout: float) -> redis.RedisCluster:
    """redis+cluster://[:password@]host:port,...: any reachable node gives the
    slot map. A tenant's keys share a hash tag, so a call's reads and writes
    go to one node."""
    from redis.cluster import ClusterNode

    netloc = url.split("://", 1)[1].partition("/")[0]
    password, hosts = _hosts(netloc, "redis+cluster")
    return redis.RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in hosts], password=password,
                              decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
                              max_connections=4 * POOL_SIZE)


def kind(url: str | None) -> str:
    """'embedded', 'redis', 'sentinel' or 'cluster'."""
    if not url:
        return "embedded"
    scheme = url.split("://", 1)[0].lower()
    return {"redis+sentinel": "sentinel", "redis+cluster": "cluster"}.get(scheme, "redis")


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
    if kind(url) == "sentinel":
        return _sentinel(url, timeout)
    if kind(url) == "cluster":
        return _cluster(url, timeout)
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
