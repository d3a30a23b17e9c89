"""What a call reads and writes: one round trip to claim and load, one to record.

`load()` puts the claim (SET NX EX) and every read a decision needs in one
pipeline (or one Lua script), including a verdict another controller recorded
for the call; the counts under the tenant's limits are read where they are
taken (`record_verdict`), or by `read_counts` when a decision needs them
first. `record_verdict()` writes the verdict before it is carried out: the
audit entry, that intent, the entry's last-used time and the end of the call
state in one transaction. `finish()` audits what no recorded verdict
covers. PIN failures and lockouts are a small transaction of their own (they
only happen on PIN calls).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import redis

from controller.store import codec, keys
from controller.store.audit import Audit, encode, entry_commands
from controller.store.admission import Admission, admit_in_process, count_of, read_count, script_args
from controller.store.counting import admission_key, admission_keys, parse_counted, tenant_day
from controller.store.scripts import ADMIT_SCRIPT, LOAD_SCRIPT
from policies.identity import IdentityKind, resolve, valid_extension
from policies.limits import PLACE_BOUND, count_key
from policies.model import CallerAuth, Snapshot, TenantSettings
from policies.numbers import caller_identities, clean
from policies.validity import decode_grant, encode_grant, split_grants



def earlier_life(owner: str, me: str) -> bool:
    """Whether `owner` is this controller before a restart: the same name with
    another incarnation (`name~token`, controller.app). One name runs once at a
    time (a TOML file or a systemd unit pins it), so that process is gone: its
    calls are recovered at once rather than stranded as "ours, in progress"."""
    base, sep, _ = owner.rpartition("~")
    return bool(sep) and owner != me and base == me.rpartition("~")[0]


@dataclass(frozen=True)
class Loaded:
    snapshot: Snapshot | None  # None only for a lost claim with stop_if_taken
    claimed: bool  # False: another controller owns this call
    # The verdict a controller already recorded for this call ({} if none): it
    # is carried out as it is, never decided (nor audited) a second time.
    recorded: dict = field(default_factory=dict)


log = logging.getLogger("tollgate.store")

WAIT_MS = 200  # how long a PIN failure waits for a replica to confirm it (Sentinel, Cluster)

def _pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2]))


class CallStore:
    def __init__(self, r: redis.Redis, audit: Audit, owner: str = "tollgate", lane=None):
        self.r = r
        self.audit = audit
        self.owner = owner
        self.lane = lane  # controller.store.lane.Lane for a real server, else None
        self._sha = ""
        self._admit_sha = ""
        self.wait_replicas = False  # Sentinel, Cluster: WAIT for a replica on PIN failures and lockouts
        self.unreplicated = 0
        self.use_script = False

    def enable_script(self) -> bool:
        """Use the server-side load on a real Redis (over the lane): same data,
        less work per call. The embedded store runs no Lua, and is in-process."""
        if self.lane is None:
            return False
        try:
            self._sha = self.r.script_load(LOAD_SCRIPT)
            self._admit_sha = self.r.script_load(ADMIT_SCRIPT)
        except redis.RedisError:
            return False
        self.use_script = True
        return True

    def load(self, tenant: str, extension: str, caller_id: str, dialed: str, *, source: str = "",
             unattended: str = "", claim_uuid: str | None = None, claim_ttl: int = 120,
             country_hint: str | None = None, now: float | None = None,
             stop_if_taken: bool = False) -> Loaded:
        """Claim (optional) and read everything in ONE round trip.

        `extension` is the directory user FreeSWITCH authenticated ('' for none),
        `caller_id` the number the caller presented and `source` the gateway or
        trunk the dialplan says the call came through. The presented caller ID
        is looked up only for a call with a source, and counts only when the
        tenant trusts that source (policies.identity).

        `country_hint` is only used to normalize the presented caller ID before
        the tenant's own country is known (the channel's `tollgate_country` or
        the cached settings); the decision itself uses the stored settings.

        `stop_if_taken`: when another controller holds the claim, read nothing
        (snapshot None): every controller on a node gets every park, and only
        a take-over needs the state of a call someone else claimed.

        The counts under the tenant's limits are not read (snapshot.counts
        None): `record_verdict` checks them as it takes them, and `read_counts`
        reads them for a decision that needs them before (policies.decide).
        """
        ext = extension if valid_extension(extension) else ""
        cids = caller_identities(caller_id, country_hint or "FR") if caller_id and source else ()
        cid = cids[0] if cids else None
        dest = clean(dialed) or ""
        now = time.time() if now is None else now
        read_keys = [keys.tenant(tenant), keys.ext(tenant, ext), keys.pins(tenant, ext), keys.ext_auth(tenant, ext),
                     keys.phone_auth(tenant, cid or "-"), keys.rules(tenant), keys.overrides(tenant),
                     keys.exts(tenant), keys.locked(tenant, ext), keys.verdict(tenant, claim_uuid or "-"),
                     keys.limits(tenant), keys.suspended(tenant)]
        if self.use_script:
            script_keys = [keys.claim(tenant, claim_uuid or "-"), *read_keys]
            args = [self.owner if claim_uuid else "", claim_ttl, dest, "1" if stop_if_taken else "0"]
            out = self.lane.script(self._sha, LOAD_SCRIPT, script_keys, args)
            if len(out) == 1:
                return Loaded(None, False)
            claimed = bool(out[0])
            raw_tenant, raw_ext, raw_pins, ext_auth = (_pairs(x) for x in out[1:5])
            cid_lists, raw_rules, raw_over, is_ext, lock_ttl = set(out[5]), out[6], _pairs(out[7]), out[8], out[9]
            recorded, raw_limits, suspended = _pairs(out[10]), out[11], out[12]
        else:
            pipe = self.r.pipeline(transaction=False)
            if claim_uuid:
                pipe.set(keys.claim(tenant, claim_uuid), self.owner, nx=True, ex=claim_ttl)
            pipe.hgetall(read_keys[0])
            pipe.hgetall(read_keys[1])
            pipe.hgetall(read_keys[2])
            pipe.hgetall(read_keys[3])
            pipe.smembers(read_keys[4])
            pipe.lrange(read_keys[5], 0, -1)
            pipe.hgetall(read_keys[6])
            pipe.sismember(read_keys[7], dest)
            pipe.ttl(read_keys[8])
            pipe.hgetall(read_keys[9])
            pipe.lrange(read_keys[10], 0, -1)
            pipe.hget(read_keys[11], "reason")
            out = pipe.execute()
            claimed = bool(out.pop(0)) if claim_uuid else True
            (raw_tenant, raw_ext, raw_pins, ext_auth, cid_lists, raw_rules, raw_over, is_ext, lock_ttl, recorded,
             raw_limits, suspended) = out

        settings = codec.tenant_settings(keys.tenant(tenant), raw_tenant) if raw_tenant else TenantSettings()
        identity = resolve(ext, cid, source, settings.trusted_source_set)
        extension_obj = None
        auth: dict[str, str] = {}
        if identity.kind is IdentityKind.EXTENSION:
            extension_obj = codec.extension(keys.ext(tenant, ext), ext, raw_ext, raw_pins) if raw_ext else None
            auth = ext_auth if extension_obj else {}
        elif identity.kind is IdentityKind.TRUSTED_CALLER_ID:
            # Members are list names, with their window when they have one (policies.validity).
            auth = {lst: encode_grant(cid, start, end) for lst, start, end in sorted(map(decode_grant, cid_lists))}
        snap = Snapshot(
            tenant=tenant,
            settings=settings,
            extension=extension_obj,
            dialed=dialed,
            caller_id=caller_id,
            rules=codec.rules(keys.rules(tenant), raw_rules),
            class_overrides=codec.overrides(keys.overrides(tenant), raw_over),
            destination_is_extension=bool(is_ext),
            caller_auth=CallerAuth(*split_grants(auth)),
            locked_seconds=max(int(lock_ttl or 0), 0) if lock_ttl != -1 else 1,
            tenant_exists=bool(raw_tenant),
            identity=identity,
            unattended=unattended,
            now=now,
            limits=codec.limits(keys.limits(tenant), raw_limits),
            suspended=suspended or "",
        )
        return Loaded(snap, claimed, recorded if claim_uuid else {})

    def read_counts(self, snap: Snapshot) -> dict[str, int]:
        """The counts under the snapshot's limits for its caller, in its tenant's
        day (policies.limits.count_key -> count): for a decision that needs them
        before the admission (a PIN to ask, a refusal to explain, `check`)."""
        tenant, now = snap.tenant, snap.now or time.time()
        day = tenant_day(now, snap.settings.timezone, snap.settings.country)
        wanted = []
        pipe = self.r.pipeline(transaction=False)
        for lim in snap.limits:
            subject = lim.subject(snap.identity)
            if lim.kind == "duration" or subject is None:
                continue
            wanted.append((count_key(lim, subject), lim.kind, lim.window))
            entry = (lim.kind, lim.name, subject, 0, lim.window)
            read_count(pipe, lim.kind, admission_key(tenant, entry, day))
        if not wanted:
            return {}
        return {name: count_of(kind, raw, now, window) for (name, kind, window), raw in zip(wanted, pipe.execute())}

    def calls_ended(self, ends: list[tuple[str, str, str, int]]) -> None:
        """(tenant, uuid, counted, billsec) of calls that ended: give their
        concurrency places back and add their billed seconds to the day's
        budgets (`counted` as carry_out wrote it on the channel). One write,
        over the lane on a real server (it runs for most calls under limits).

        A batch's ends mostly share their keys (a tenant's places, its budget
        of the day): one HDEL per places key and one INCRBY per budget key,
        instead of one or two commands per end, cost Redis and the controller
        (packing, reading the replies) a fraction for the same result."""
        places: dict[str, list[str]] = {}
        spent: dict[str, int] = {}
        for tenant, uuid, counted, billsec in ends:
            for kind, name, subject, day in parse_counted(counted):
                if kind == "c":
                    places.setdefault(keys.concurrency(tenant, name, subject), []).append(uuid)
                elif kind == "b" and billsec > 0:
                    key = keys.budget(tenant, name, subject, day)
                    spent[key] = spent.get(key, 0) + billsec
        commands = [("HDEL", key, *uuids) for key, uuids in places.items()]
        for key, seconds in spent.items():
            commands += [("INCRBY", key, seconds), ("EXPIRE", key, 3 * 86400)]
        if not commands:
            return
        if self.lane is not None:
            failed = [r for r in self.lane.roundtrip(commands) if isinstance(r, Exception)]
            if failed:
                raise failed[0]
            return
        pipe = self.r.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()

    def heartbeat(self, ttl: int) -> None:
        self.r.set(keys.controller(self.owner), f"{time.time():.0f}", ex=ttl)

    def release_claim(self, tenant: str, call_uuid: str) -> None:
        """Hand a call back: whichever controller finds it next may claim it."""
        self.r.delete(keys.claim(tenant, call_uuid))

    def alive(self, controller_id: str) -> bool:
        if earlier_life(controller_id, self.owner):
            return False  # this very controller before its restart: gone, whatever its heartbeat says
        return bool(self.r.exists(keys.controller(controller_id)))

    def take_over(self, tenant: str, call_uuid: str, ttl: int, allow_self: bool = False) -> bool:
        """Claim a call whose owner is no longer alive (its heartbeat expired).

        WATCH makes it safe when several survivors try at once: one wins.
        """
        key = keys.claim(tenant, call_uuid)
        owner = self.r.get(key)
        if owner == self.owner:
            return allow_self
        if owner and self.alive(owner):  # (an earlier life of ours is not)
            return False
        # WATCH the claim only: the heartbeat lives in another slot on Redis
        # Cluster. An owner that comes back to life after the check above finds
        # its claim taken when it next writes, as with any lapsed heartbeat.
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)
                if pipe.get(key) != owner:
                    pipe.reset()
                    return False
                pipe.multi()
                pipe.set(key, self.owner, ex=ttl)
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def record_pin_failure(self, tenant: str, ext: str, failures_allowed: int, lock_seconds: int) -> tuple[int, bool]:
        """Count one failed PIN entry; lock the extension at the threshold.

        Returns (consecutive failures, locked now). The counter lives as long
        as a lockout would, so failures spread over days do not add up.
        """
        pipe = self.r.pipeline(transaction=True)
        pipe.incr(keys.fails(tenant, ext))
        pipe.expire(keys.fails(tenant, ext), lock_seconds)
        count = int(pipe.execute()[0])
        locked = count >= failures_allowed
        if locked:
            tx = self.r.pipeline(transaction=True)
            tx.set(keys.locked(tenant, ext), f"{time.time():.0f}", ex=lock_seconds)
            tx.delete(keys.fails(tenant, ext))
            tx.execute()
        self._replicate(keys.fails(tenant, ext))
        return count, locked

    def _replicate(self, key: str) -> None:
        """With replicas, wait (bounded) until one has the failure count or the
        lockout: an asynchronous replica promoted by a failover would otherwise
        forget the failures a guesser just made. A replica that does not answer
        in time costs WAIT_MS and a warning, never the call."""
        if not self.wait_replicas:
            return
        try:
            if isinstance(self.r, redis.RedisCluster):
                acked = self.r.execute_command("WAIT", 1, WAIT_MS, target_nodes=self.r.get_node_from_key(key))
            else:
                acked = self.r.execute_command("WAIT", 1, WAIT_MS)
        except redis.RedisError as exc:
            log.warning("WAIT for a replica failed: %s", exc)
            return
        if not int(acked or 0):
            self.unreplicated += 1
            log.warning("no replica confirmed a PIN failure count within %d ms", WAIT_MS)

    def clear_failures(self, tenant: str, ext: str) -> None:
        self.r.delete(keys.fails(tenant, ext))

    def set_state(self, tenant: str, call_uuid: str, ttl: int, /, **fields: str) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(keys.call(tenant, call_uuid), mapping={k: str(v) for k, v in fields.items()})
        pipe.expire(keys.call(tenant, call_uuid), ttl)
        pipe.execute()

    def record_verdict(self, tenant: str, uuid: str, record: dict, intent: dict, *,
                       used_entry: tuple[str, str] | None = None, had_state: bool = False,
                       admit: tuple = (), now: float | None = None, span: int = PLACE_BOUND,
                       day: str = "") -> Admission:
        """Write the verdict BEFORE it is carried out, in one transaction: the
        audit entry, the intent a survivor would carry out instead of deciding
        again (`verdict:<uuid>`), the entry's last-used time, the end of the
        call's in-progress state. One round trip, shared with the other calls
        of this turn. On failure the audit entry is spooled and RedisError raised.

        admit: what the call takes under the tenant's limits (Decision.admit).
        Each is checked (and a velocity count or a concurrency place taken, the
        place held `span` seconds at most) in the same script as the write; if
        one is full by now (another call took the last place, or the load did not
        read the counts) nothing is written and Admission.full says which. `day`:
        the tenant's date, whose budgets the call is checked against."""
        extra = self._finishing(tenant, uuid, used_entry, had_state)
        # The audit adds the key's TTL with the guard it keeps in the same key.
        extra.append(("HSET", keys.verdict(tenant, uuid), *[x for kv in intent.items() for x in kv]))
        fields = encode("verdict", tenant, record)
        if not admit:
            self.audit.write_now(tenant, fields, extra)
            return Admission()
        now = time.time() if now is None else now
        day = day or tenant_day(now, "", "FR")
        places = admission_keys(tenant, admit, day)
        if self.lane is None:  # in process: nothing runs between the check and the write
            return admit_in_process(self.r, self.audit, tenant, uuid, fields, extra, admit, places, now, span)
        args = script_args(now, uuid, admit, span, entry_commands(tenant, fields, extra))
        try:
            out = self.lane.script(self._admit_sha, ADMIT_SCRIPT, [keys.audit(tenant), keys.verdict(tenant, uuid),
                                                                    *places], args)
        except redis.RedisError:
            self.audit.keep(tenant, fields)
            self.audit.failed_write()
            raise
        if int(out[0]):
            return Admission(full=(int(out[0]), int(out[1])))
        self.audit.written([(tenant, fields)])
        return Admission(counts=tuple(int(n) for n in out[2:]))

    def spool(self, tenant: str, record: dict) -> None:
        """A verdict decided without Redis: straight to the audit's spool (and
        its file), written when Redis answers again."""
        self.audit.keep(tenant, encode("verdict", tenant, record))

    def finish(self, tenant: str, uuid: str, verdict_fields: dict, *, kind: str = "verdict",
               used_entry: tuple[str, str] | None = None, had_state: bool = True) -> None:
        """Audit what no recorded verdict covers (a call that ended undecided) or
        correct a recorded verdict's outcome (kind "outcome"); batched with
        other calls' writes when the controller batches (see Audit)."""
        self.audit.submit(tenant, encode(kind, tenant, verdict_fields),
                          self._finishing(tenant, uuid, used_entry, had_state))

    @staticmethod
    def _finishing(tenant: str, uuid: str, used_entry, had_state: bool) -> list:
        extra = []
        if used_entry:
            lst, phone = used_entry
            extra.append(("HSET", keys.entry(tenant, lst, phone), "last_used", f"{time.time():.0f}"))
        if uuid and had_state:  # only PIN dialogs write a call-in-progress key
            extra.append(("DEL", keys.call(tenant, uuid)))
        return extra

    def calls(self) -> list[dict[str, str]]:
        found = []
        for key in self.r.scan_iter(match=keys.CALL_PATTERN, count=500):
            row = self.r.hgetall(key)
            if row:
                ttl = self.r.ttl(key)
                row.setdefault("tenant", keys.tenant_of(key))
                row.setdefault("uuid", keys.call_uuid_of(key))
                row["ttl"] = str(ttl)
                found.append(row)
        return sorted(found, key=lambda r: r.get("started", ""))
