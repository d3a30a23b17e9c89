"""One managed call, top to bottom: claim and load, decide, challenge, act, audit.

Runs in the call's own greenlet. Waiting happens only in `CallSession`, which
raises ChannelGone when the caller hangs up and EslLost when the Event Socket
drops, so this module reads as a straight line. A watchdog bounds the time
from park to the verdict being carried out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import gevent
import redis

from controller import commands
from controller.errors import ChannelGone, CommandFailed, CorruptValue
from controller.metrics import Metrics
from controller.events import HANDED_OVER, MANAGED_VARIABLE, PIN_VARIABLE, Bridge, ChannelPark, ExecuteComplete
from controller.prompt_catalog import Catalog
from controller.session import CallSession, EslLost, StepTimeout
from controller.store import Store
from policies.classes import CallClass
from policies.decide import decide
from policies.model import Decision, TenantSettings, Verdict, ROUTE_FIELDS, check_name
from policies.numbers import clean, is_emergency, classify, national_form
from policies.pin import match_holder

log = logging.getLogger("tollgate.call")

REFUSED = "OUTGOING_CALL_BARRED"
# reason -> (announcement, Q.850 cause name)
DENY_ACTIONS = {
    "locked": ("locked", REFUSED),
    "service_unavailable": ("service_unavailable", "SERVICE_UNAVAILABLE"),
}
DEFAULT_DENY = ("not_authorized", REFUSED)
MAX_RESUMES = 3
DEGRADED_GRACE = 0.25  # seconds a controller without Redis waits before acting


@dataclass
class FlowConfig:
    controller_id: str = "tollgate"
    call_bound: float = 120.0  # watchdog: park -> verdict carried out
    claim_ttl: int = 300
    step_timeout: float = 30.0
    bridge_timeout: float = 120.0
    default_country: str = "FR"
    # Where an emergency call goes when no tenant settings could be read at all.
    fallback_route: str = "sofia/gateway/default/{dialed}"
    rebind_wait: float = 15.0  # how long a call waits for the Event Socket to come back


@dataclass
class Services:
    store: Store
    pepper: bytes
    catalog: Catalog
    cfg: FlowConfig
    settings_cache: dict[str, TenantSettings] = field(default_factory=dict)
    observers: list = field(default_factory=list)  # callables(record: dict)
    metrics: Metrics = field(default_factory=Metrics)


class CallLog(logging.LoggerAdapter):
    """Every line of a call carries its id (in the text, and as a field for JSON logs)."""

    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return f"[{self.extra['call']}] {msg}", kwargs


class Watchdog(Exception):
    """The call outlived its bound before its verdict was carried out."""


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
                    # hand the call back (no verdict written); whichever controller
                    # reaches FreeSWITCH decides it, once.
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
                    decision = self._challenge(decision)
                self._settle(decision)
        self._carry_out(self.decision)

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
            self.claimed = True
            return self._degraded("unknown_tenant")
        cached = self.svc.settings_cache.get(tenant)
        hint = p.country or (cached.country if cached else self.svc.cfg.default_country)
        try:
            loaded = self.svc.store.calls.load(
                tenant, p.extension, p.caller_id, p.dialed, claim_uuid=p.uuid,
                claim_ttl=self.svc.cfg.claim_ttl, country_hint=hint)
        except (redis.RedisError, CorruptValue) as exc:
            self.svc.metrics.redis_errors.labels("load").inc()
            self.log.error("cannot read Tollgate state: %s", _one_line(exc))
            if not self._claim_on_freeswitch():
                return None
            self.claimed = True
            return self._degraded("service_unavailable")
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
        return decide(snap)

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

    def _claim_on_freeswitch(self) -> bool:
        """Without Redis, FreeSWITCH itself arbitrates (mod_hash), so that two
        controllers never both act on one call."""
        try:
            reply = self.s.api(commands.fs_claim(self.park.uuid, self.svc.cfg.controller_id))
        except CommandFailed as exc:
            self.log.error("cannot claim on FreeSWITCH either (%s): acting alone", exc)
            return True
        if reply.startswith("+OK"):
            self.s.start(*commands.multiset(dict([commands.fs_unclaim_at_hangup(self.park.uuid)])))
            # A controller that still reached Redis claimed there, not here: it
            # marks the channel within milliseconds. Give it that time, then look.
            gevent.sleep(DEGRADED_GRACE)
            owner = self.s.api(commands.uuid_getvar(self.park.uuid, "tollgate_owner")).strip()
            if owner.startswith("-ERR") or (owner not in ("", "_undef_") and owner != self.svc.cfg.controller_id):
                self.log.debug("call already taken (%s) or over", owner[:40])
                return False
            return True
        if "exists" in reply:
            self.log.debug("claimed by another controller on FreeSWITCH")
            return False
        self.log.warning("FreeSWITCH cannot keep claims (%s): acting alone", reply.strip()[:60])
        return True

    def _degraded(self, reason: str) -> Decision:
        """Redis unreachable or unusable: emergency and toll-free pass, the rest fails closed
        (or open, if the tenant chose so while Redis was still readable)."""
        p = self.park
        cached = self.svc.settings_cache.get(p.tenant)
        self.settings = cached
        self.language = p.language or (cached.language if cached else "en")
        country = p.country or (cached.country if cached else self.svc.cfg.default_country)
        c = classify(p.dialed, country, outside_line_prefix=cached.outside_line_prefix if cached else "")
        if c.call_class is CallClass.EMERGENCY or (cached is None and is_emergency(clean(p.dialed) or "", country)):
            return Decision(Verdict.ALLOW, CallClass.EMERGENCY, c.e164, "emergency", "emergency number: always allowed")
        if c.call_class is CallClass.TOLLFREE and reason == "service_unavailable":
            return Decision(Verdict.ALLOW, c.call_class, c.e164, "degraded_tollfree",
                            "state unavailable; toll-free numbers still pass")
        if cached is not None and cached.fail_mode == "open" and reason == "service_unavailable":
            return Decision(Verdict.ALLOW, c.call_class, c.e164, "fail_open",
                            "state unavailable; tenant is configured to fail open")
        return Decision(Verdict.DENY, c.call_class, c.e164, reason,
                        "state unavailable: refusing (fail closed)" if reason == "service_unavailable"
                        else "channel is not marked with a valid tenant")

    def _challenge(self, decision: Decision) -> Decision:
        st, ext, snap = self.settings, self.snapshot.extension, self.snapshot
        cat = self.svc.catalog
        self._state("pin_prompt")
        self.s.start(*commands.multiset({
            "tollgate_owner": self.svc.cfg.controller_id,
            # Every DTMF digit would otherwise land in the CDR's digits_dialed (fixture 10).
            "digits_dialed_filter": "(.+)",
            **dict([commands.scrub_pin_at_hangup(self.park.uuid)]),
        }))
        self.s.run("answer" if st.answer_mode == "answer" else "pre_answer", timeout=self.svc.cfg.step_timeout)
        pagd = commands.play_and_get_digits(
            min_digits=st.pin_min_length, max_digits=st.pin_max_length, tries=1,
            timeout_ms=st.pin_timeout_ms, terminators="#",
            prompt=cat.path("enter_pin", self.language), invalid_prompt=cat.path("invalid_pin", self.language),
            digit_timeout_ms=st.pin_interdigit_ms)
        # Prompt, wait for the first digit, then each further digit: the bound of one try.
        one_try = 15 + (st.pin_timeout_ms + st.pin_max_length * st.pin_interdigit_ms) / 1000
        for attempt in range(1, st.pin_tries + 1):
            self.pin_tries = attempt
            done = self.s.run(*pagd, timeout=one_try)
            self.s.start(*commands.unset_var(PIN_VARIABLE))  # before anything else can read it
            digits = done.digits.reveal() if done.read_result == "success" else ""
            holder = None
            if digits:
                holder, problems = gevent.get_hub().threadpool.apply(match_holder, (digits, ext.pins, self.svc.pepper))
                for problem in problems:
                    self.log.error("unusable stored PIN for %s/%s: %s", snap.tenant, ext.number, problem)
            del digits
            if done.read_result == "success":
                self.svc.metrics.pin_attempts.labels(snap.tenant).inc()
            if holder:
                self.pin_holder = holder
                self._store_quietly(self.svc.store.calls.clear_failures, snap.tenant, ext.number)
                self.s.run(*commands.playback(cat.path("pin_accepted", self.language)),
                           timeout=self.svc.cfg.step_timeout)
                return replace(decision, verdict=Verdict.ALLOW, reason="pin_ok",
                               detail=f"{decision.detail}; PIN of {holder!r} accepted")
            if done.read_result == "success":
                self.svc.metrics.pin_failures.labels(snap.tenant).inc()
                count, locked = self._store_quietly(
                    self.svc.store.calls.record_pin_failure, snap.tenant, ext.number,
                    st.lockout_failures, st.lockout_seconds) or (0, False)
                if locked:
                    self.svc.metrics.lockouts.labels(snap.tenant).inc()
                    return replace(decision, verdict=Verdict.DENY, reason="locked",
                                   detail=f"{st.lockout_failures} failed PINs: extension locked for "
                                          f"{st.lockout_seconds}s")
                if attempt < st.pin_tries:
                    self.s.run(*commands.playback(cat.path("invalid_pin", self.language)),
                               timeout=self.svc.cfg.step_timeout)
        return replace(decision, verdict=Verdict.DENY, reason="bad_pin",
                       detail=f"no valid PIN after {st.pin_tries} tries")

    def _settle(self, decision: Decision) -> None:
        self.decision = decision
        self.decided_at = time.monotonic()
        if decision.authorized_list and decision.authorized_phone:
            self.used_entry = (decision.authorized_list, decision.authorized_phone)

    def _carry_out(self, d: Decision) -> None:
        cdr = {
            "tollgate_owner": self.svc.cfg.controller_id,
            "tollgate_verdict": d.verdict.value,
            "tollgate_reason": d.reason,
            "tollgate_rule": d.rule or "",
            "tollgate_class": d.call_class.value,
            "tollgate_pin_holder": self.pin_holder,
        }
        route = self._route(d) if d.verdict is Verdict.ALLOW else ""
        bridge = d.verdict is Verdict.ALLOW and not _is_transfer(route)
        if bridge:
            cdr["hangup_after_bridge"] = "true"  # a parked call stays up after its bridge otherwise
            # From here FreeSWITCH alone sees the call through (see _bridge): the
            # filter stops sending its events, a handful per call we would only drop.
            cdr[MANAGED_VARIABLE] = HANDED_OVER
        # One execution for all of them (empty ones would only unset), written
        # together with what follows it.
        first = commands.multiset({k: v for k, v in cdr.items() if v})
        if bridge:
            self._bridge(route, first)
        elif d.verdict is Verdict.ALLOW:
            self._transfer(route, first)
        else:
            self._refuse(d, first)

    def _transfer(self, route: str, first: tuple[str, str]) -> None:
        event_uuid = self.s.start_many([first, commands.transfer(route)])[-1]
        self.final_sent = True
        self.outcome = "transferred"
        self.s.wait_done(event_uuid, self.svc.cfg.step_timeout, what="transfer")

    def _bridge(self, route: str, first: tuple[str, str]) -> None:
        """The bridge and what ends the call whatever the bridge does, queued in one
        write: once FreeSWITCH accepts them the call no longer needs us."""
        # Refused (the caller left first): ChannelGone with no outcome, "abandoned".
        event_uuid = self.s.start_many([first, commands.bridge(route), commands.hangup_if_bridge_fails()])[1]
        self.final_sent = True
        self.outcome = "bridging"
        if self.s.channel is not None:
            # Inbound mode: its events stop here (tollgate_managed=done). How the
            # bridge went is FreeSWITCH's CDR's to say, next to our variables.
            self.outcome = "bridge_sent"
            return
        # Socket mode: the session gets the call's events anyway; follow the bridge.
        ev = self.s.wait_for(lambda e: isinstance(e, Bridge) or
                             (isinstance(e, ExecuteComplete) and e.app_uuid == event_uuid),
                             self.svc.cfg.bridge_timeout, what="bridge")
        if isinstance(ev, Bridge):
            self.outcome = "bridged"
            return
        # Not connected: FreeSWITCH hangs the call up, by itself when unanswered
        # (fixture 09), with the queued hangup when answered.
        self.outcome = "bridge_failed"
        self.log.warning("bridge failed (%s)", ev.originate_disposition[:40] or "no disposition")

    def _refuse(self, d: Decision, first: tuple[str, str]) -> None:
        prompt, cause = DENY_ACTIONS.get(d.reason, DEFAULT_DENY)
        self.outcome = "refused"
        step = self.svc.cfg.step_timeout
        try:
            steps = [first]
            if not self.park.answered and self.pin_tries == 0:
                steps.append(("pre_answer", None))  # early media: the refusal costs the caller nothing
            steps.append(commands.playback(self.svc.catalog.path(prompt, self.language)))
            self.s.wait_done(self.s.start_many(steps)[-1], step, what="announcement")
            event_uuid = self.s.start(*commands.hangup(cause))
            self.final_sent = True
            self.s.wait_done(event_uuid, step, what="hangup")
        except ChannelGone:
            pass  # our own hangup, or the caller's during the announcement: either way it is over

    def _route(self, d: Decision) -> str:
        st = self.settings
        if st is None:
            template = self.svc.cfg.fallback_route
        elif d.call_class in (CallClass.INTERNAL, CallClass.SERVICE):
            template = st.internal_route
        else:
            template = st.route
        dialed = clean(self.park.dialed) or ""
        values = {
            "e164": lambda: d.e164 or dialed,
            "dialed": lambda: dialed,
            "national": lambda: national_form(d.e164, dialed),  # a phonenumbers format: only if used
            "gateway": lambda: st.gateway if st else "default",
            "tenant": lambda: self.park.tenant,
            "extension": lambda: self.park.extension,
        }
        out = template
        for name in ROUTE_FIELDS:
            placeholder = "{" + name + "}"
            if placeholder in out:
                out = out.replace(placeholder, values[name]())
        return out

    # -- helpers ---------------------------------------------------------------
    def _state(self, state: str) -> None:
        self.state_written = True
        p = self.park
        self._store_quietly(self.svc.store.calls.set_state, p.tenant, p.uuid, self.svc.cfg.claim_ttl,
                            uuid=p.uuid, tenant=p.tenant, extension=p.extension, dialed=p.dialed,
                            state=state, owner=self.svc.cfg.controller_id, started=f"{time.time():.3f}")

    def _store_quietly(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            self.svc.metrics.redis_errors.labels(fn.__name__).inc()
            self.log.error("Redis write failed (%s): %s", fn.__name__, _one_line(exc))
            return None

    def _kill(self, cause: str) -> None:
        try:
            self.s.kill(cause)
        except CommandFailed as exc:
            self.log.error("could not hang up: %s", exc)

    def _release_claim(self) -> None:
        self._store_quietly(self.svc.store.calls.release_claim, self.park.tenant, self.park.uuid)

    def _audit(self) -> None:
        d, p = self.decision, self.park
        decided = (self.decided_at - self.t0) * 1000 if self.decided_at else None
        record = {
            "uuid": p.uuid,
            "extension": p.extension,
            "caller_id": p.caller_id,
            "dialed": p.dialed[:64],
            "class": d.call_class.value if d else "",
            "e164": d.e164 if d else "",
            "verdict": d.verdict.value if d else "NONE",
            "reason": d.reason if d else self.outcome,
            "rule": d.rule if d else "",
            "detail": d.detail if d else "",
            "authorized_list": d.authorized_list if d else "",
            "pin_holder": self.pin_holder,
            "pin_tries": str(self.pin_tries),
            "outcome": self.outcome,
            "decision_ms": f"{decided:.2f}" if decided is not None else "",
            "controller": self.svc.cfg.controller_id,
        }
        tenant = p.tenant if _valid_tenant(p.tenant) else "_invalid"
        self.svc.metrics.observe_call(tenant, record,
                                      (self.decided_at - self.t0) if self.decided_at else None, self.pin_tries > 0)
        for observer in self.svc.observers:
            observer(record)
        self.log.info("%s %s -> %s class=%s rule=%s verdict=%s reason=%s outcome=%s %sms",
                      p.tenant, p.extension, record["dialed"], record["class"], record["rule"] or "-",
                      record["verdict"], record["reason"], self.outcome, record["decision_ms"] or "-")
        try:
            self.svc.store.calls.finish(tenant, p.uuid, record,
                                        used_entry=self.used_entry, had_state=self.state_written)
        except redis.RedisError as exc:
            self.log.error("audit write failed, spooled: %s", _one_line(exc))


def _is_transfer(route: str) -> bool:
    parts = route.split()
    return len(parts) == 3 and parts[1] in ("XML", "xml")


def _valid_tenant(name: str) -> bool:
    try:
        check_name("tenant", name)
        return True
    except ValueError:
        return False


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
