"""One managed call, top to bottom: claim and load, decide, challenge, record, act.

Runs in the call's own greenlet. Waiting happens only in `CallSession`, which
raises ChannelGone when the caller hangs up and EslLost when the Event Socket
drops, so this module reads as a straight line. A watchdog bounds the time
from park to the verdict being carried out.

The verdict is written to the audit BEFORE it is carried out (`flow_record`), with
the intent a survivor needs: a controller killed between acting and writing
can no longer leave an action without its record, and whoever finds the call
next (this controller after a reconnect, a survivor taking over, the next
start) carries out the recorded verdict instead of deciding it again. The
steps live beside this module: `flow_pin` (the PIN dialog), `flow_record`
(the record and the admission under limits), `flow_actions` (bridge,
transfer, refusal) and `flow_degraded` (no Redis).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import gevent
import redis

from controller.freeswitch import commands
from controller.errors import ChannelGone, CommandFailed, CorruptValue
from controller.freeswitch.events import PIN_VARIABLE, ChannelPark
from controller.call.flow_actions import Plan, carry_out, plan
from controller.call.flow_degraded import claim_on_freeswitch, degraded
from controller.call.flow_pin import challenge
from controller.call.session import CallSession, EslLost, StepTimeout
from controller.call.services import CallLog, Services, Watchdog, one_line, valid_tenant
from controller.call.flow_record import record
from controller.store.counting import counted_spec
from policies.classes import CallClass
from policies.decide import decide, needs_counts
from policies.model import Decision, TenantSettings, Verdict, check_name

log = logging.getLogger("tollgate.call")

MAX_RESUMES = 3


class CallFlow:
    def __init__(self, session: CallSession, park: ChannelPark, svc: Services, recovered: bool = False,
                 interrupt: bool = False):
        self.recovered = recovered  # started by a recovery scan, not by a CHANNEL_PARK
        self.interrupt = interrupt  # a dead controller's prompt still runs: stop it once ours
        self.final_sent = False  # FreeSWITCH accepted the bridge / transfer / hangup
        self.state_written = False  # a call-in-progress key exists in Redis
        self.s = session
        self.park = park
        self.svc = svc
        self.log = CallLog(log, {"call": park.uuid})
        self.t0 = time.monotonic()
        self.decision: Decision | None = None
        self.decided_at: float | None = None
        self.settings: TenantSettings | None = None
        self.language = ""
        self.outcome = ""
        self.pin_tries = 0
        self.pin_holder = ""
        self.claimed = False
        self.interrupted = False
        self.used_entry: tuple[str, str] | None = None
        self.snapshot = None
        self.degraded = False  # decided without Redis: nothing to record it in first
        self.plan: Plan | None = None
        self.recorded_outcome: str | None = None  # the outcome the recorded verdict says
        self.day = ""  # the tenant's date when the verdict was recorded: the day a budget counts it in
        self.talked = 0  # seconds a socket-mode call was followed bridged (its billed time)
        self.followed = False  # socket mode followed a counted call to its end

    # -- the flow --------------------------------------------------------------
    def run(self) -> None:
        try:
            try:
                self._run_resuming()
            except ChannelGone as gone:
                if self.outcome == "bridging":
                    # FreeSWITCH hangs an unanswered caller up with the far end's
                    # cause when the bridge fails (fixture 09); the caller's own
                    # hangup shows as a clearing or cancel.
                    caller_side = gone.cause in ("NORMAL_CLEARING", "ORIGINATOR_CANCEL")
                    self.outcome = "abandoned_ringing" if caller_side else "bridge_failed"
                elif not self.outcome:
                    self.outcome = "abandoned"
                    self.log.info("caller hung up before the verdict was carried out (%s)", gone.cause)
            except Watchdog:
                self.outcome = "watchdog"
                self.log.warning("call exceeded %.0fs without a verdict carried out: hanging up",
                                 self.svc.cfg.call_bound)
                self._kill("RECOVERY_ON_TIMER_EXPIRE")
            except EslLost as exc:
                if not self.final_sent:
                    # Nothing final happened and no connection came back in time:
                    # hand the call back; whichever controller reaches FreeSWITCH
                    # decides it once, or carries out the verdict we recorded.
                    self.interrupted = True
                    self.log.warning("Event Socket lost mid-call (%s): call handed back for recovery", exc)
                    self._release_claim()
                else:
                    self.outcome = f"{self.outcome}_unconfirmed"
                    self.log.warning("Event Socket lost after the verdict (%s): outcome %s", exc, self.outcome)
            except StepTimeout as exc:
                self.outcome = self.outcome or "error"
                self.log.error("FreeSWITCH did not answer in time (%s): hanging up", exc)
                self._kill("RECOVERY_ON_TIMER_EXPIRE")
            except gevent.GreenletExit:
                if not self.outcome:
                    # Shutdown past its grace period: hand the call back instead of dropping it.
                    self.interrupted = True
                    self.log.warning("controller stopping: call handed back undecided")
                    self._release_claim()
                raise
            except Exception:
                self.outcome = self.outcome or "error"
                self.log.exception("unexpected error in call flow: hanging up")
                self._kill("NORMAL_TEMPORARY_FAILURE")
        finally:
            if self.claimed and not self.interrupted:
                self._audit()

    def _run_resuming(self) -> None:
        """Inbound mode: a dropped Event Socket does not end the call. The session
        is rebound to the next connection and the flow goes on from where it
        can: undecided calls are decided again, decided ones carried out again,
        unless FreeSWITCH already accepted the final command (never sent twice)."""
        resumes = 0
        while True:
            try:
                self._once(resumed=resumes > 0)
                return
            except EslLost as exc:
                if self.final_sent or resumes >= MAX_RESUMES or not self.s.wait_rebind(self.svc.cfg.rebind_wait):
                    raise
                resumes += 1
                self.log.warning("Event Socket lost (%s): resuming on the new connection", exc)
                self._after_rebind()

    def _once(self, resumed: bool) -> None:
        if self.decision is None:
            left = self.svc.cfg.call_bound - (time.monotonic() - self.t0)
            if left <= 0:
                raise Watchdog()
            with gevent.Timeout(left, Watchdog):
                decision = self._decide(resumed)
                if decision is None:
                    return  # another controller's call
                if decision.verdict is Verdict.CHALLENGE:
                    decision = challenge(self, decision)
                self.settle(decision)
        if self.recorded_outcome is None:
            record(self)
        carry_out(self, self.decision, self.plan)

    def _after_rebind(self) -> None:
        if self.s.api(commands.api("uuid_exists", self.park.uuid)).strip() != "true":
            raise ChannelGone("GONE_WHILE_DISCONNECTED")
        # A prompt of ours may still run, and may have left keyed digits behind.
        self.s.api(commands.uuid_break(self.park.uuid))
        self.s.start(*commands.unset_var(PIN_VARIABLE))

    def _decide(self, resumed: bool = False) -> Decision | None:
        p = self.park
        tenant = p.tenant
        try:
            check_name("tenant", tenant)
        except ValueError:
            self.log.error("channel carries no valid tollgate_tenant (%r): refusing", tenant[:40])
            self.claimed = self.degraded = True
            return degraded(self, "unknown_tenant")
        cached = self.svc.settings_cache.get(tenant)
        hint = p.country or (cached.country if cached else self.svc.cfg.default_country)
        try:
            loaded = self.svc.store.calls.load(
                tenant, p.extension, p.caller_id, p.dialed, source=p.source, unattended=p.unattended,
                claim_uuid=p.uuid, claim_ttl=self.svc.cfg.claim_ttl, country_hint=hint,
                stop_if_taken=not (self.recovered or resumed))
        except (redis.RedisError, CorruptValue) as exc:
            self.svc.metrics.redis_errors.labels("load").inc()
            self.log.error("cannot read Tollgate state: %s", one_line(exc))
            if not claim_on_freeswitch(self):
                return None
            self.claimed = self.degraded = True
            return degraded(self, "service_unavailable")
        if not loaded.claimed and not ((self.recovered or resumed) and self._take_over(resumed)):
            self.log.debug("claimed by another controller")
            return None
        self.claimed = True
        if self.interrupt:
            self.interrupt = False
            self._after_rebind()
        snap = loaded.snapshot
        if snap.tenant_exists:
            self.svc.settings_cache[tenant] = snap.settings
        self.settings = snap.settings
        self.snapshot = snap
        self.language = (snap.extension.language if snap.extension else "") or p.language or snap.settings.language
        if loaded.recorded:
            recorded = self._recorded(loaded.recorded)
            if recorded is not None:
                return recorded
        d = decide(snap)
        if needs_counts(snap, d):  # not an ALLOW, whose admission checks them (policies.decide)
            try:
                self.snapshot = snap = replace(snap, counts=self.svc.store.calls.read_counts(snap))
            except redis.RedisError as exc:
                self.svc.metrics.redis_errors.labels("load").inc()
                self.log.error("cannot read the counts under limits: %s", one_line(exc))
                self.degraded = True
                return degraded(self, "service_unavailable")
            d = decide(snap)
        return d

    def _recorded(self, intent: dict) -> Decision | None:
        """The verdict a controller recorded before it could carry it out (it died,
        lost its Event Socket, or stopped): carried out as it is, not audited again."""
        if intent.get("verdict", "NONE") == "NONE":
            return None  # only the guard of an undecided call's record: nothing to carry out
        try:
            d = Decision(Verdict(intent["verdict"]), CallClass(intent["class"]), intent.get("e164") or None,
                         intent["reason"], intent.get("detail", ""), rule=intent.get("rule") or None,
                         authorized_list=intent.get("authorized_list") or None,
                         identity=intent.get("identity", "none"), region=intent.get("region") or None,
                         max_seconds=int(intent.get("max_seconds") or 0))
        except (KeyError, ValueError) as exc:
            self.log.error("unreadable recorded verdict (%s): deciding again", one_line(exc))
            return None
        if d.verdict is Verdict.CHALLENGE:
            return None
        self.pin_holder = intent.get("pin_holder", "")
        self.recorded_outcome = intent.get("outcome", "")
        self.log.warning("carrying out the verdict %s recorded by %s", d.verdict.value,
                         intent.get("controller", "?")[:40])
        return d

    def _take_over(self, resumed: bool) -> bool:
        """A call found parked by a recovery scan is ours if its owner is dead. Our
        own claim counts only when this very flow resumes: a scan that finds a
        call we already finished must not decide it again."""
        try:
            won = self.svc.store.calls.take_over(self.park.tenant, self.park.uuid, self.svc.cfg.claim_ttl,
                                                 allow_self=resumed)
        except redis.RedisError:
            return False
        if won and not resumed:
            self.log.warning("taking over a call whose controller is gone")
        return won

    def settle(self, decision: Decision) -> None:
        self.decision = decision
        self.decided_at = time.monotonic()
        self.plan = plan(self, decision)
        if decision.authorized_list and decision.authorized_phone:
            self.used_entry = (decision.authorized_list, decision.authorized_phone)

    # -- helpers ---------------------------------------------------------------
    def counted_spec(self) -> str:
        return counted_spec(self.decision.counted, self.day)

    def write_state(self, state: str) -> None:
        """The call-in-progress key (`tollgate calls`), for calls that take a while.
        Its tenant and uuid are in the key itself, not repeated as fields: with
        the node added, nine fields cost each PIN dialog 4 KiB more in socket
        mode (benchmark, whatever the values); seven do not."""
        self.state_written = True
        p = self.park
        self.store_quietly(self.svc.store.calls.set_state, p.tenant, p.uuid, self.svc.cfg.claim_ttl,
                            extension=p.extension, dialed=p.dialed,
                            state=state, owner=self.svc.cfg.controller_name or self.svc.cfg.controller_id,
                            node=self.s.node,
                            started=f"{time.time():.3f}")

    def store_quietly(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            self.svc.metrics.redis_errors.labels(fn.__name__).inc()
            self.log.error("Redis write failed (%s): %s", fn.__name__, one_line(exc))
            return None

    def _kill(self, cause: str) -> None:
        try:
            self.s.kill(cause)
        except CommandFailed as exc:
            self.log.error("could not hang up: %s", exc)

    def _release_claim(self) -> None:
        self.store_quietly(self.svc.store.calls.release_claim, self.park.tenant, self.park.uuid)

    def fields(self, outcome: str) -> dict[str, str]:
        d, p = self.decision, self.park
        decided = (self.decided_at - self.t0) * 1000 if self.decided_at else None
        return {
            "uuid": p.uuid,
            "extension": p.extension,
            "caller_id": p.caller_id,
            "source": p.source,
            "identity": d.identity if d else "",
            "dialed": p.dialed[:64],
            "class": d.call_class.value if d else "",
            "e164": d.e164 if d else "",
            "region": (d.region or "") if d else "",
            "unattended": (d.unattended if d else p.unattended) or "",
            "count": str(d.count) if d and d.count else "",
            "max_seconds": str(d.max_seconds) if d and d.max_seconds else "",
            "verdict": d.verdict.value if d else "NONE",
            "reason": d.reason if d else outcome,
            "rule": d.rule if d else "",
            "detail": d.detail if d else "",
            "authorized_list": d.authorized_list if d else "",
            "pin_holder": self.pin_holder,
            "pin_tries": str(self.pin_tries),
            "outcome": outcome,
            "decision_ms": f"{decided:.2f}" if decided is not None else "",
            "controller": self.svc.cfg.controller_name or self.svc.cfg.controller_id,
        }

    def audit_tenant(self) -> str:
        """Where a call without a usable tenant is audited (and counted)."""
        return self.park.tenant if valid_tenant(self.park.tenant) else "_invalid"

    def _write(self, record: dict[str, str], kind: str = "verdict") -> None:
        tenant = self.audit_tenant()
        first = kind == "verdict"  # a correction follows a record that did the rest
        try:
            self.svc.store.calls.finish(tenant, self.park.uuid, record, kind=kind,
                                        used_entry=self.used_entry if first else None,
                                        had_state=self.state_written and first)
        except redis.RedisError as exc:
            self.log.error("audit write failed, spooled: %s", one_line(exc))

    def _audit(self) -> None:
        """At the end of the call: metrics, observers, the log line, and the audit
        of whatever the recorded verdict did not already say."""
        p = self.park
        record = self.fields(self.outcome)
        tenant = self.audit_tenant()
        self.svc.metrics.observe_call(tenant, record,
                                      (self.decided_at - self.t0) if self.decided_at else None, self.pin_tries > 0)
        for observer in self.svc.observers:
            observer(record)
        self.log.info("%s %s -> %s class=%s rule=%s verdict=%s reason=%s outcome=%s %sms",
                      p.tenant, p.extension or "-", record["dialed"], record["class"], record["rule"] or "-",
                      record["verdict"], record["reason"], self.outcome, record["decision_ms"] or "-")
        d = self.decision
        if d is not None and d.counted and (self.followed or self.outcome not in ("bridge_sent", "transferred")):
            # Its place was taken, but the call never got through (or socket mode
            # followed it to its end): give it back now rather than when it lapses.
            self.store_quietly(self.svc.store.calls.calls_ended, [(p.tenant, p.uuid, self.counted_spec(),
                                                                   self.talked)])
        if self.recorded_outcome is None:
            self._write(record)  # ended undecided (abandoned, watchdog...): the only record
        elif self.outcome != self.recorded_outcome:
            # The recorded verdict said what was about to happen; this says what did.
            self._write({"uuid": p.uuid, "outcome": self.outcome, "recorded_outcome": self.recorded_outcome,
                         "verdict": record["verdict"], "controller": record["controller"]}, kind="outcome")
