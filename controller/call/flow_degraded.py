"""Deciding without Redis (SPEC §6): FreeSWITCH arbitrates the claim, emergency
and toll-free numbers pass, the rest fails closed (or open, by the tenant's
choice cached while Redis was readable). Part of `CallFlow` (through `FlowState`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gevent

from controller.freeswitch import commands
from controller.errors import CommandFailed
from policies.classes import CallClass
from policies.model import Decision, Verdict
from policies.numbers import classify, clean, is_emergency

if TYPE_CHECKING:
    from controller.call.flow_state import FlowState

DEGRADED_GRACE = 0.25  # seconds a controller without Redis waits before acting


def claim_on_freeswitch(flow: "FlowState") -> bool:
    """Without Redis, FreeSWITCH itself arbitrates (mod_hash), so that two
    controllers never both act on one call."""
    s, me = flow.s, flow.svc.cfg.controller_id
    try:
        reply = s.api(commands.fs_claim(flow.park.uuid, me))
    except CommandFailed as exc:
        flow.log.error("cannot claim on FreeSWITCH either (%s): acting alone", exc)
        return True
    if reply.startswith("+OK"):
        s.start(*commands.multiset(dict([commands.fs_unclaim_at_hangup(flow.park.uuid)])))
        # A controller that still reached Redis claimed there, not here: it
        # marks the channel within milliseconds. Give it that time, then look.
        gevent.sleep(DEGRADED_GRACE)
        owner = s.api(commands.uuid_getvar(flow.park.uuid, "tollgate_owner")).strip()
        if owner.startswith("-ERR") or (owner not in ("", "_undef_") and owner != me):
            flow.log.debug("call already taken (%s) or over", owner[:40])
            return False
        return True
    if "exists" in reply:
        flow.log.debug("claimed by another controller on FreeSWITCH")
        return False
    flow.log.warning("FreeSWITCH cannot keep claims (%s): acting alone", reply.strip()[:60])
    return True


def degraded(flow: "FlowState", reason: str) -> Decision:
    """Redis unreachable or unusable: emergency and toll-free pass, the rest fails closed
    (or open, if the tenant chose so while Redis was still readable)."""
    p = flow.park
    cached = flow.svc.settings_cache.get(p.tenant)
    flow.settings = cached
    flow.language = p.language or (cached.language if cached else "en")
    country = p.country or (cached.country if cached else flow.svc.cfg.default_country)
    c = classify(p.dialed, country, outside_line_prefix=cached.outside_line_prefix if cached else "")

    def decision(verdict: Verdict, call_class: CallClass, why: str, detail: str) -> Decision:
        return Decision(verdict, call_class, c.e164, why, detail, region=c.region)

    if c.call_class is CallClass.EMERGENCY or (cached is None and is_emergency(clean(p.dialed) or "", country)):
        return decision(Verdict.ALLOW, CallClass.EMERGENCY, "emergency", "emergency number: always allowed")
    if c.call_class is CallClass.TOLLFREE and reason == "service_unavailable":
        return decision(Verdict.ALLOW, c.call_class, "degraded_tollfree",
                        "state unavailable; toll-free numbers still pass")
    risky = cached.high_risk_list.match(c.e164, c.region) if cached is not None else None
    if cached is not None and cached.fail_mode == "open" and reason == "service_unavailable" and risky is None:
        return decision(Verdict.ALLOW, c.call_class, "fail_open",
                        "state unavailable; tenant is configured to fail open")
    if reason != "service_unavailable":
        return decision(Verdict.DENY, c.call_class, reason, "channel is not marked with a valid tenant")
    # Failing open never opens the tenant's high-risk destinations: no PIN can be asked without Redis.
    return decision(Verdict.DENY, c.call_class, reason, "state unavailable: refusing (fail closed)"
                    + (f"; {risky} is on the tenant's high-risk list" if risky else ""))
