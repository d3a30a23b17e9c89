"""The hot path's lane on Redis Cluster: one Lane per master, chosen by slot.

Every key of a tenant shares its hash tag, so a call's script, its verdict's
MULTI and its audit entry all go to one node, in one round trip, exactly as
on a single Redis. Batches that mix tenants (the batched audit writes, the
ends of calls) are split by slot: one MULTI per slot (Redis refuses a
transaction across slots), the nodes' writes sent concurrently.

After a failover the slot map is stale: a MOVED reply refreshes it and the
command is sent once more to the new owner; a refused connection refreshes
it (at most every REFRESH_EVERY seconds) and the error goes to the caller,
which fails closed or spools as it does when a single Redis is down.
"""

from __future__ import annotations

import time

import gevent
import redis
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError

from controller.store.lane import Lane

REFRESH_EVERY = 0.2  # seconds between two slot-map refreshes after connection errors
_STALE = (MovedError, AskError, ClusterDownError, TryAgainError)


def key_of(command: tuple) -> str | None:
    """The first key of a command as the store builds them: ("HSET", key, ...),
    ("EVALSHA", sha, numkeys, key, ...). MULTI and EXEC have none."""
    name = command[0].upper()
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) else None
    return command[1] if len(command) > 1 else None


class ClusterLane:
    def __init__(self, cluster: redis.RedisCluster, size: int, wait: float):
        self.cluster = cluster
        self._size = size
        self._wait = wait
        self._lanes: dict[str, Lane] = {}
        self._refreshed = 0.0
        self.refreshes = 0

    # -- routing ---------------------------------------------------------------------
    def _node(self, key: str):
        return self.cluster.nodes_manager.get_node_from_slot(self.cluster.keyslot(key))

    def _lane(self, node) -> Lane:
        lane = self._lanes.get(node.name)
        if lane is None:
            conn = node.redis_connection or self.cluster.get_redis_connection(node)
            lane = self._lanes[node.name] = Lane(conn, self._size, self._wait)
        return lane

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._refreshed < REFRESH_EVERY:
            return
        self._refreshed = now
        try:
            self.cluster.nodes_manager.initialize()
            self.refreshes += 1
        except redis.RedisError:
            pass  # no node answered: the next error tries again

    def _on(self, key: str, send):
        """send(lane of key's node), and once more after a MOVED (the slot moved:
        failover). Lane.script and Lane.transaction raise error replies."""
        for attempt in (0, 1):
            try:
                return send(self._lane(self._node(key)))
            except (redis.ConnectionError, redis.TimeoutError):
                self.refresh()
                raise
            except _STALE:
                self.refresh(force=True)
                if attempt:
                    raise

    # -- the Lane's interface --------------------------------------------------------
    def script(self, sha: str, body: str, keys: list[str], args: list) -> list:
        return self._on(keys[0], lambda lane: lane.script(sha, body, keys, args))

    def transaction(self, commands: list[tuple], corked: bool = False) -> list:
        """One slot's MULTI ... EXEC (a call's verdict: all its keys share its tenant's tag)."""
        key = next(k for k in map(key_of, commands) if k)
        return self._on(key, lambda lane: lane.transaction(commands, corked=corked))

    def transactions(self, groups: list[list[tuple]], corked: bool = False) -> list[Exception | None]:
        """Each group in a MULTI of its slot (groups of one slot share it);
        per group, None or the error that kept it out."""
        by_slot: dict[int, list[int]] = {}
        for i, group in enumerate(groups):
            key = next(k for k in map(key_of, group) if k)
            by_slot.setdefault(self.cluster.keyslot(key), []).append(i)
        results: list[Exception | None] = [None] * len(groups)

        def one(indexes: list[int]) -> None:
            commands = [c for i in indexes for c in groups[i]]
            try:
                self.transaction(commands, corked=corked)
            except redis.RedisError as exc:
                for i in indexes:
                    results[i] = exc

        jobs = [gevent.spawn(one, idx) for idx in by_slot.values()]
        gevent.joinall(jobs)
        return results

    def roundtrip(self, commands: list[tuple], _again: bool = True) -> list:
        """Commands without a transaction, sent per node concurrently; replies in
        order. Only the commands a node sent back with MOVED go again (the others
        ran: an INCRBY must not run twice)."""
        by_node: dict[str, tuple] = {}  # node name -> (node, indexes)
        for i, command in enumerate(commands):
            node = self._node(key_of(command))
            by_node.setdefault(node.name, (node, []))[1].append(i)
        replies: list = [None] * len(commands)

        def one(node, indexes: list[int]) -> None:
            try:
                out = self._lane(node).roundtrip([commands[i] for i in indexes])
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.refresh()
                out = [exc] * len(indexes)
            for i, reply in zip(indexes, out):
                replies[i] = reply

        gevent.joinall([gevent.spawn(one, node, idx) for node, idx in by_node.values()])
        stale = [i for i, reply in enumerate(replies) if isinstance(reply, _STALE)]
        if stale and _again:
            self.refresh(force=True)
            for i, reply in zip(stale, self.roundtrip([commands[i] for i in stale], _again=False)):
                replies[i] = reply
        return replies

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.close()
