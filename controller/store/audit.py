"""The audit stream (SPEC §1.6): every verdict and every operator change.

One stream per tenant (`tg:{acme}:audit`, capped). An entry is flat string
fields so that `redis-cli XRANGE` is readable; `before`/`after` of a change are
JSON. PINs never get here: callers pass holder names, never digits or hashes.

When Redis is down, entries wait in a bounded local spool and are written
first on the next successful append or an explicit flush. The controller keeps
that spool in a file too (`attach`, `spool_file`): what waits survives a
SIGKILL and is written after the next start. A call's verdict also marks its
guard key (`verdict:<uuid>`) in the same transaction, so a spooled verdict
whose write did reach Redis (the reply was lost: Redis killed right after
EXEC, or the controller killed before it could empty its file) is not written
a second time.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from typing import Any, Iterator

import redis

from controller.store import keys

log = logging.getLogger("tollgate.audit")

STREAM_MAXLEN = 200_000
SPOOL_MAX = 50_000


def encode(kind: str, tenant: str, fields: dict[str, Any]) -> dict[str, str]:
    out = {"ts": f"{time.time():.3f}", "kind": kind, "tenant": tenant}
    for k, v in fields.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)
    return out


def settled_verdicts(entries: list[tuple[str, dict[str, str]]]) -> list[dict[str, str]]:
    """A call's verdict is written before it is carried out, with the outcome
    intended; an "outcome" entry follows when what happened differs (the
    caller left, the bridge failed). The verdicts of `entries`, each with the
    outcome that finally happened (`recorded_outcome` keeps the intended one)."""
    final = {f.get("uuid"): f for _, f in entries if f.get("kind") == "outcome"}
    out = []
    for _, f in entries:
        if f.get("kind") != "verdict":
            continue
        later = final.get(f.get("uuid"))
        out.append({**f, "outcome": later["outcome"], "recorded_outcome": f.get("outcome", "")} if later else f)
    return out


GUARD_TTL = 600  # seconds a verdict's guard (and the intent beside it) lives


def _guard(tenant: str, fields: dict[str, str]) -> str | None:
    """The key that says a call's verdict is in the stream."""
    if fields.get("kind") == "verdict" and fields.get("uuid"):
        return keys.verdict(tenant, fields["uuid"])
    return None


def entry_commands(tenant: str, fields: dict[str, str], extra: list) -> list[tuple]:
    """The writes of one entry: its XADD, its extra operations, and for a call's
    verdict its guard. Every path that writes an entry (the audit's MULTI, the
    admission script) sends these, so the guard is written one way only."""
    flat = [x for item in fields.items() for x in item]
    commands = [("XADD", keys.audit(tenant), "MAXLEN", "~", STREAM_MAXLEN, "*", *flat), *extra]
    guard = _guard(tenant, fields)
    if guard:
        # A verdict's intent lives in the same key: one HSET for both (in the
        # admission script each command costs Redis 1.5-3 us more than in a MULTI).
        at = next((i for i, c in enumerate(commands) if c[0] == "HSET" and c[1] == guard), None)
        if at is None:
            commands.append(("HSET", guard, "audited", fields["ts"]))
        else:
            commands[at] = (*commands[at], "audited", fields["ts"])
        commands.append(("EXPIRE", guard, GUARD_TTL))
    return commands


# With replicas (Sentinel, Cluster), a write the master acknowledged may not
# have reached the replica that a failover promotes. Verdicts written in the
# last RECENT_WINDOW seconds are kept in memory; after a failed write (the
# master went away) their guards are checked on whoever answers next, and the
# verdicts that are missing are written again.
RECENT_WINDOW = 10.0
RECENT_MAX = 50_000

BATCH_WINDOW = 0.002  # seconds a verdict may wait to share a write with others
BATCH_MAX = 500


class Audit:
    def __init__(self, r: redis.Redis, lane=None):
        self.r = r
        self.lane = lane  # controller.store.lane.Lane for a real server, else None
        self.spool: collections.deque[tuple[str, dict[str, str]]] = collections.deque(maxlen=SPOOL_MAX)
        self.journal = None  # controller.store.spool_file.SpoolFile: the spool on disk too (attach)
        self._taken: dict[int, list] = {}  # spooled entries being written by a _send, not yet settled
        self.dropped = 0
        self.replays_skipped = 0  # spooled verdicts found already written
        self._batch: list[tuple[str, dict[str, str], list]] | None = None  # None: write at once
        self._wake = None
        self.replicated = False  # Sentinel or Cluster: keep recent verdicts for a failover (RECENT_WINDOW)
        self.recent: collections.deque[tuple[float, str, dict[str, str]]] = collections.deque(maxlen=RECENT_MAX)
        self._suspect = False  # a write failed: the master may have changed since `recent` was written
        self.replayed_after_failover = 0

    # -- batching (the controller's hot path) ---------------------------------------
    def start_batching(self) -> None:
        """Verdicts of many calls share one MULTI: a call never waits for its audit
        write, and Redis sees one round trip per batch instead of per call."""
        import gevent
        import gevent.event

        self._batch = []
        self._wake = gevent.event.Event()
        self._writer = gevent.spawn(self._write_batches)

    def submit(self, tenant: str, fields: dict[str, str], extra: list | None = None) -> None:
        """An encoded entry plus extra Redis commands, as tuples ("HSET", key, ...)."""
        entry = (tenant, fields, extra or [])
        if self._batch is None:
            self._send([entry])
            return
        self._batch.append(entry)
        self._wake.set()

    def _write_batches(self) -> None:
        import gevent

        while True:
            self._wake.wait()
            gevent.sleep(BATCH_WINDOW)  # let the calls of this instant join
            self._wake.clear()
            self.drain_batch()

    def drain_batch(self) -> None:
        while self._batch:
            batch, self._batch[:] = self._batch[:BATCH_MAX], self._batch[BATCH_MAX:]
            try:
                self._send(batch)
            except redis.RedisError as exc:
                log.warning("audit write failed, %d entries spooled: %s", len(self.spool), exc)
                return

    def write_now(self, tenant: str, fields: dict[str, str], extra: list) -> None:
        """Write one entry (and its extra commands) before the caller goes on:
        a call's verdict, written before it is carried out so that no action
        exists without its record. Shares the write with the other calls of
        this turn of the event loop. On failure the entry is spooled (its extra
        commands are not) and the error raised."""
        self._send([(tenant, fields, extra)], corked=True)

    def append(self, kind: str, tenant: str, **fields: Any) -> bool:
        """Write now; on failure keep the entry in the spool. True when written."""
        try:
            self._send([(tenant, encode(kind, tenant, fields), [])])
            return True
        except redis.RedisError as exc:
            log.warning("audit write failed, entry spooled (%d waiting): %s", len(self.spool), exc)
            return False

    def flush(self) -> int:
        if self._batch:
            self.drain_batch()
        if self._suspect:
            self.recheck_recent()
        if not self.spool:
            return 0
        waiting = len(self.spool)
        try:
            self._send([])
        except redis.RedisError:
            return 0
        return waiting

    def _send(self, new: list, corked: bool = False) -> None:
        """The spooled entries first, then `new`, in one transaction. On failure
        what was not written waits in the spool and the error is raised."""
        try:
            old = self._drain()
        except redis.RedisError:
            self._spool(new)
            raise
        entries = [*old, *new]
        if not entries:
            self._compact()  # the spool held only verdicts already written
            return
        self._taken[id(old)] = [(t, f) for t, f, _ in old]
        try:
            failed = self._write(entries, corked=corked)
        except redis.RedisError:
            self._back(old, new)
            self.failed_write()
            raise
        finally:
            del self._taken[id(old)]
        if failed:
            lost = {id(entry[1]) for entry, _ in failed}
            self._back([e for e in old if id(e[1]) in lost], [e for e in new if id(e[1]) in lost])
            self.failed_write()
            raise failed[0][1]
        self.written(entries)
        self._compact()

    # -- the spool on disk (the controller's) ---------------------------------------
    def attach(self, journal) -> int:
        """Keep the spool in `journal` (a SpoolFile) too, and take back what it
        holds: a previous process's entries, written with the next write (a
        verdict already in the stream is known by its guard). Returns how many."""
        found = journal.read()
        journal.replace(found)  # a clean file: a line a crash cut short would swallow the next one
        self.journal = journal
        self._requeue([(tenant, fields, []) for tenant, fields in found])
        return len(found)

    def _back(self, old: list, new: list) -> None:
        """What a failed write took: the spooled entries go back (the file has
        them still), the new ones are spooled (and filed)."""
        self._requeue(old)
        self._spool(new)

    def _compact(self) -> None:
        """Once written, entries leave the file: it keeps only what still waits
        (nothing, most of the time: an empty file is the common case)."""
        if self.journal is None:
            return
        waiting = len(self.spool) + sum(len(x) for x in self._taken.values())
        if self.journal.entries == waiting:  # the file holds at least what waits: the same entries
            return
        try:
            self.journal.replace([x for batch in self._taken.values() for x in batch] + list(self.spool))
        except OSError as exc:
            log.error("audit spool file %s not emptied: %s", self.journal.path, exc)

    # -- failover: acknowledged by a master, lost with it ----------------------------
    def written(self, entries) -> None:
        if not self.replicated:
            return
        now = time.monotonic()
        for tenant, fields, *_ in entries:
            if fields.get("kind") == "verdict":
                self.recent.append((now, tenant, fields))

    @property
    def suspect(self) -> bool:
        """A write failed on a replicated store: recent verdicts need a look."""
        return self._suspect

    def failed_write(self) -> None:
        if self.replicated:
            self._suspect = True

    def recheck_recent(self) -> int:
        """The recent verdicts whose guard the (maybe new) master lacks go back
        to the spool, to be written with the next write. Returns how many."""
        horizon = time.monotonic() - RECENT_WINDOW
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()
        items = list(self.recent)
        try:
            pipe = self.r.pipeline(transaction=False)
            for _, tenant, fields in items:
                pipe.exists(_guard(tenant, fields))
            found = pipe.execute() if items else []
        except redis.RedisError:
            return 0  # still away: the next flush looks again
        self._suspect = False
        lost = [(tenant, fields) for (_, tenant, fields), present in zip(items, found) if not present]
        for tenant, fields in lost:
            log.warning("verdict of %s lost in a Redis failover: written again", fields.get("uuid", "?"))
            self.keep(tenant, fields)
        self.replayed_after_failover += len(lost)
        return len(lost)

    def _drain(self) -> list[tuple[str, dict[str, str], list]]:
        """The spooled entries, in order, less the verdicts whose guard says they
        did reach the stream (their extra operations were not kept)."""
        if not self.spool:
            return []
        # Taken out before the guard check yields: another greenlet writing
        # meanwhile (the batch writer, a call, the flush loop) must not take
        # the same entries and write them a second time.
        items = list(self.spool)
        self.spool.clear()
        guards = [_guard(tenant, fields) for tenant, fields in items]
        present: set[str] = set()
        if any(guards):
            pipe = self.r.pipeline(transaction=False)
            for g in guards:
                if g:
                    pipe.exists(g)
            self._taken[id(items)] = items  # still in the file while the check yields
            try:
                found = iter(pipe.execute())
            except redis.RedisError:
                self.spool.extendleft(reversed(items))  # back, in order, ahead of newer ones
                raise
            finally:
                del self._taken[id(items)]
            present = {g for g in guards if g and next(found)}
        out = []
        for (tenant, fields), g in zip(items, guards):
            if g in present:
                self.replays_skipped += 1
                continue
            out.append((tenant, fields, []))
        return out

    def keep(self, tenant: str, fields: dict[str, str]) -> None:
        """Spool one entry a caller could not write (written with the next one)."""
        self._spool([(tenant, fields, [])])

    def _spool(self, entries) -> None:
        """Entries that wait for Redis: in memory, and on disk before the caller
        goes on (a verdict is spooled before the call is carried out)."""
        self._requeue(entries)
        if self.journal is not None and entries:
            try:
                self.journal.append([(tenant, fields) for tenant, fields, _ in entries])
            except OSError as exc:
                log.error("audit spool file %s: %s; %d entries kept in memory only", self.journal.path, exc,
                          len(entries))

    def _requeue(self, entries) -> None:
        for tenant, fields, _extra in entries:
            if len(self.spool) == self.spool.maxlen:
                self.dropped += 1  # the oldest goes; counted so an operator can see it
            self.spool.append((tenant, fields))

    def _write(self, entries, corked: bool = False) -> list:
        """Entries are (tenant, fields, extra operations). All or nothing per
        tenant from the caller's view: a MULTI makes the stream see them all or
        none, so a retry never duplicates. On one Redis the whole batch is one
        MULTI; Redis Cluster's lane makes one per tenant's slot. Returns the
        (entry, error) pairs that were not written."""
        groups = [entry_commands(tenant, fields, extra) for tenant, fields, extra in entries]
        if self.lane is not None:
            errors = self.lane.transactions(groups, corked=corked)
            return [(entry, exc) for entry, exc in zip(entries, errors) if exc is not None]
        pipe = self.r.pipeline(transaction=True)
        for command in (c for group in groups for c in group):
            pipe.execute_command(*command)
        pipe.execute()
        return []

    def read(self, tenant: str, count: int = 50, since_id: str = "-") -> list[tuple[str, dict[str, str]]]:
        """The newest `count` entries after since_id, oldest first."""
        items = self.r.xrevrange(keys.audit(tenant), max="+", min=since_id, count=count)
        return list(reversed(items))

    def follow(self, tenants: list[str], last_ids: dict[str, str] | None = None,
               block_ms: int = 1000) -> Iterator[tuple[str, str, dict[str, str]]]:
        ids = {keys.audit(t): (last_ids or {}).get(t, "$") for t in tenants}
        cluster = isinstance(self.r, redis.RedisCluster) and len(ids) > 1
        if cluster:  # one XREAD cannot span slots: read each stream from its last id, then pause
            for stream, since in ids.items():
                if since == "$":
                    last = self.r.xrevrange(stream, count=1)
                    ids[stream] = last[0][0] if last else "0-0"
        while True:
            if cluster:
                got = [x for s in ids for x in (self.r.xread({s: ids[s]}, count=100) or [])]
                if not got:
                    time.sleep(min(block_ms, 200) / 1000)
            else:
                got = self.r.xread(ids, block=block_ms, count=100) or []
            for stream, entries in got:
                for entry_id, fields in entries:
                    ids[stream] = entry_id
                    yield keys.tenant_of(stream), entry_id, fields
            if not got:
                yield "", "", {}  # a tick, so the caller can stop between blocks
