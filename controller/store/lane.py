"""The hot path's own Redis connections: send, read, nothing else.

A call without a PIN makes two round trips (its load, and its verdict written
before it is carried out). Through redis-py's pool each one cost several times
more Python than Redis spent on it: a readiness poll (one more syscall), pool
observability counters, retry and deprecation wrappers, response callbacks.
The lane keeps connections of the pool's own class and settings (same URL,
auth, TLS, timeouts, hiredis parser) and only packs, sends and reads.
Everything else (operators, recovery, PIN failures) keeps using redis-py's
client: it is not hot, and its conveniences are worth more there.
"""

from __future__ import annotations

import time

import gevent
import gevent.event
import gevent.lock
import redis
from redis.exceptions import DataError, NoScriptError, ResponseError

from controller.turns import others_due

try:
    from hiredis import pack_command as _pack_one
except ImportError:  # pragma: no cover - hiredis is a dependency; redis-py packs without it
    _pack_one = None

# A connection idle longer than this is checked before use: Redis may have
# restarted meanwhile, and a dead socket must cost a reconnect, not a call.
IDLE_CHECK = 1.0


class Lane:
    def __init__(self, r: redis.Redis, size: int, wait: float):
        pool = r.connection_pool
        self._new = lambda: pool.connection_class(**pool.connection_kwargs)
        self._idle: list = []  # [(connection, monotonic time it was put back)], used LIFO
        self._slots = gevent.lock.BoundedSemaphore(size)
        self._wait = wait  # for a free connection, as the pool's own timeout
        self._cork: list = []  # [(commands, AsyncResult)] asked for in this turn of the loop

    def script(self, sha: str, body: str, keys: list[str], args: list) -> list:
        """EVALSHA, and EVAL when the server lost its script cache (a restart).
        Calls that ask in the same turn of the event loop share one round trip."""
        n = len(keys)
        reply = self._corked([("EVALSHA", sha, n, *keys, *args)])[0]
        if isinstance(reply, NoScriptError):
            reply = self.roundtrip([("EVAL", body, n, *keys, *args)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def transaction(self, commands: list[tuple], corked: bool = False) -> list:
        """MULTI ... EXEC in one write; raises the first error Redis reported.
        corked: share the write with the other calls of this turn (hot path)."""
        group = [("MULTI",), *commands, ("EXEC",)]
        replies = self._corked(group) if corked else self.roundtrip(group)
        for reply in replies[:-1]:
            if isinstance(reply, Exception):
                raise reply
        result = replies[-1]
        if isinstance(result, Exception):
            raise result
        for reply in result or ():
            if isinstance(reply, Exception):
                raise reply
        return result

    def transactions(self, groups: list[list[tuple]], corked: bool = False) -> list[Exception | None]:
        """Several writes in one MULTI (one server: all of them or none); per
        group, None or the error (the same for all). Redis Cluster's lane
        splits them by slot instead."""
        try:
            self.transaction([c for group in groups for c in group], corked=corked)
        except redis.RedisError as exc:
            return [exc] * len(groups)
        return [None] * len(groups)

    def _corked(self, commands: list[tuple]) -> list:
        """The replies to a group of commands, sent together with those of every
        call that asks in this turn of the event loop: under load, calls arrive
        together (one read of the Event Socket brings several parks), and one
        write and one read serve them all. A call yields once before its
        write, and only when another greenlet is due to run (others_due). A
        group stays contiguous, so a MULTI ... EXEC of one call is never
        interleaved with another's commands."""
        waiter = gevent.event.AsyncResult()
        self._cork.append((commands, waiter))
        if len(self._cork) > 1:
            return waiter.get()  # the first caller of this turn answers it, whatever happens
        batch = None
        try:
            if others_due():
                gevent.sleep(0)  # let this turn's other calls join
            batch, self._cork = self._cork, []
            replies = self.roundtrip([c for group, _ in batch for c in group])
        except BaseException as exc:
            if batch is None:
                batch, self._cork = self._cork, []
            failed = exc if isinstance(exc, redis.RedisError) else redis.ConnectionError(
                "the shared Redis round trip was interrupted")
            for _, other in batch[1:]:
                other.set_exception(failed)
            raise
        at = 0
        for group, w in batch:
            w.set(replies[at:at + len(group)])
            at += len(group)
        return waiter.get()

    def roundtrip(self, commands: list[tuple]) -> list:
        """Commands in one write, their replies in order (error replies as exception
        objects: the connection stays in step with the server and is reused)."""
        if not self._slots.acquire(timeout=self._wait):
            raise redis.ConnectionError("no free Redis connection in time")
        conn = None
        try:
            conn = self._take()
            if not conn.is_connected:
                conn.connect()  # through the class's own connect: Sentinel's asks where the master is
            packed = pack(conn, commands)
            conn.send_packed_command(packed, check_health=False)
            replies = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            self._idle.append((conn, time.monotonic()))
            conn = None
            return replies
        finally:
            if conn is not None:  # anything but a reply: the stream is out of step
                conn.disconnect()
            self._slots.release()

    def _take(self):
        if not self._idle:
            return self._new()
        conn, since = self._idle.pop()
        if time.monotonic() - since > IDLE_CHECK:
            try:
                stale = conn.can_read(timeout=0)  # EOF or stray bytes: not usable as is
            except (redis.ConnectionError, OSError):
                stale = True
            if stale:
                conn.disconnect()  # reconnects on send
        return conn

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.disconnect()


def pack(conn, commands: list[tuple]) -> list[bytes]:
    """The commands in Redis's protocol. hiredis packs them itself: redis-py's
    serializer wraps the same call in a Python pass over every argument (for
    a verdict's admission, 115 of them: 24 us instead of 9). Its rules are the
    same (str as UTF-8, int and float as text, no None or bool), and what it
    refuses is a DataError, as from redis-py. Command names are one word here
    (redis-py would split "SCRIPT LOAD")."""
    if _pack_one is None:
        return conn.pack_commands(commands)
    try:
        # A list, as send_packed_command wants it (it sends each item).
        return [b"".join([_pack_one(c if type(c) is tuple else tuple(c)) for c in commands])]
    except TypeError as exc:
        raise DataError(f"cannot send to Redis: {exc}") from None
