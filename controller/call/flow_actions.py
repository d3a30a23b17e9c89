"""Carrying a verdict out (SPEC §1.5): bridge, transfer, or announce and hang up.

`plan()` says what will be done before anything is sent, so that the verdict
and its intended outcome are recorded first (CallFlow.record); `carry_out()`
then does it. Runs in the call's greenlet as part of `CallFlow` (through `FlowState`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from controller.freeswitch import commands
from controller.errors import ChannelGone
from controller.call.flow_state import Plan
from controller.call.session import StepTimeout
from controller.freeswitch.events import HANDED_OVER, MANAGED_VARIABLE, Bridge, ExecuteComplete
from policies.classes import CallClass
from policies.limits import PLACE_BOUND
from policies.model import ROUTE_FIELDS, Decision, Verdict
from policies.numbers import clean, national_form

if TYPE_CHECKING:
    from controller.call.flow_state import FlowState

REFUSED = "OUTGOING_CALL_BARRED"
# reason -> (announcement, Q.850 cause name)
DENY_ACTIONS = {
    "locked": ("locked", REFUSED),
    "service_unavailable": ("service_unavailable", "SERVICE_UNAVAILABLE"),
}
DEFAULT_DENY = ("not_authorized", REFUSED)


def plan(flow: "FlowState", d: Decision) -> Plan:
    if d.verdict is not Verdict.ALLOW:
        return Plan("refuse", "", "refused")
    route = _route(flow, d)
    if _is_transfer(route):
        return Plan("transfer", route, "transferred")
    # Inbound mode, and a static socket session with a call it does not count,
    # hand the call to FreeSWITCH with the bridge (its events stop); otherwise
    # socket mode follows the bridge and corrects the outcome when it knows.
    return Plan("bridge", route, "bridging" if _follows(flow, d) else "bridge_sent")


def _follows(flow: "FlowState", d: Decision) -> bool:
    """Whether the flow reads the bridge's events: a socket session's bridge,
    except a static session's of a call it does not count (it would hear of the
    bridge only when the bridge returns, at the end of the call)."""
    return flow.s.channel is None and not (flow.s.sync and not d.counted)


def carry_out(flow: "FlowState", d: Decision, p: Plan) -> None:
    cdr = {
        "tollgate_owner": flow.svc.cfg.controller_id,
        "tollgate_verdict": d.verdict.value,
        "tollgate_reason": d.reason,
        "tollgate_rule": d.rule or "",
        "tollgate_class": d.call_class.value,
        "tollgate_pin_holder": flow.pin_holder,
    }
    if p.action == "bridge":
        cdr["hangup_after_bridge"] = "true"  # a parked call stays up after its bridge otherwise
        # From here FreeSWITCH alone sees the call through (see _bridge): the
        # filter stops sending its events, a handful per call we would only drop.
        cdr[MANAGED_VARIABLE] = HANDED_OVER
    if d.max_seconds and p.action == "bridge":
        cdr.update([commands.time_limit_at_bridge(d.max_seconds)])
    if d.counted and p.action != "refuse":
        # Its end gives a place back or adds to a budget: marked ours, its
        # CHANNEL_HANGUP_COMPLETE (which says which) passes our ends filter, and
        # no other controller's.
        cdr["tollgate_counted"] = flow.counted_spec()
        cdr.update([commands.mark_end(flow.svc.cfg.controller_name or flow.svc.cfg.controller_id)])
    # One execution for all of them (empty ones would only unset), written
    # together with what follows it.
    first = commands.multiset({k: v for k, v in cdr.items() if v})
    {"bridge": _bridge, "transfer": _transfer, "refuse": _refuse}[p.action](flow, d, p.route, first)


def _transfer(flow: "FlowState", d: Decision, route: str, first: tuple[str, str]) -> None:
    # A duration limit goes in front of the transfer it bounds (a bridge's is
    # in its multiset: commands.time_limit_at_bridge).
    steps = [first, commands.time_limit(d.max_seconds)] if d.max_seconds else [first]
    event_uuid = flow.s.start_many([*steps, commands.transfer(route)], lead=_handover(flow))[-1]
    flow.final_sent = True
    flow.outcome = "transferred"
    flow.s.wait_done(event_uuid, flow.svc.cfg.step_timeout, what="transfer")


def _bridge(flow: "FlowState", d: Decision, route: str, first: tuple[str, str]) -> None:
    """The bridge and what ends the call whatever the bridge does, queued in one
    write: once FreeSWITCH accepts them the call no longer needs us."""
    # Refused (the caller left first): ChannelGone with no outcome, "abandoned".
    s = flow.s
    # A static socket session need not follow a call it does not count: without
    # events or linger, FreeSWITCH closes the session itself when the call ends.
    # Nobody reads the completions of a handover it does not follow, in either
    # mode: sent without Event-UUIDs (start_many), fewer header bytes for
    # FreeSWITCH to read one by one (commands.execute).
    follows = _follows(flow, d)
    event_uuid = s.start_many([first, commands.bridge(route), commands.hangup_if_bridge_fails()],
                              lead=_handover(flow), follow=follows)[-2]
    flow.final_sent = True
    flow.outcome = "bridging"
    if not follows:
        # Inbound mode: its events stop here (tollgate_managed=done). A static
        # socket session says nothing until the bridge returns, at the end of the
        # call. How the bridge went is FreeSWITCH's CDR's to say, next to our
        # variables.
        flow.outcome = "bridge_sent"
        return
    # Socket mode: the session gets the call's events anyway; follow the bridge.
    # A static session sends them when the bridge returns: the whole call.
    wait = flow.svc.cfg.bridge_timeout + ((d.max_seconds or PLACE_BOUND) if s.sync else 0)
    ev = s.wait_for(lambda e: isinstance(e, Bridge) or
                    (isinstance(e, ExecuteComplete) and e.app_uuid == event_uuid),
                    wait, what="bridge")
    if isinstance(ev, Bridge):
        flow.outcome = "bridged"
        if d.counted:
            # Socket mode sees the whole call anyway: follow it to its end, then
            # give the place back and count its minutes.
            since = time.monotonic()
            try:
                s.wait_for(lambda e: False, d.max_seconds or PLACE_BOUND, what="end of a counted call")
            except (ChannelGone, StepTimeout):
                pass
            # A static session's channel reports (CHANNEL_HANGUP_COMPLETE) only once
            # the session is over: its CHANNEL_HANGUP says what will be billed.
            end = s.gone if s.sync else s.wait_hangup_complete(5.0)
            flow.talked = end.billsec if end else int(time.monotonic() - since)
            flow.followed = True
        return
    # Not connected: FreeSWITCH hangs the call up, by itself when unanswered
    # (fixture 09), with the queued hangup when answered.
    flow.outcome = "bridge_failed"
    flow.log.warning("bridge failed (%s)", ev.originate_disposition[:40] or "no disposition")


def _handover(flow: "FlowState") -> tuple[str, ...]:
    """Socket mode: what goes first in the handover's write. Its dialplan bounds
    the call with a scheduled uuid_kill (a static session does not park, so
    park_timeout has nothing to bound); a bridged or transferred call must not be
    cut by it."""
    return (commands.cancel_bound(flow.park.uuid),) if flow.s.channel is None else ()


def _refuse(flow: "FlowState", d: Decision, route: str, first: tuple[str, str]) -> None:
    prompt, cause = DENY_ACTIONS.get(d.reason, DEFAULT_DENY)
    flow.outcome = "refused"
    s, step = flow.s, flow.svc.cfg.step_timeout
    try:
        steps = [first]
        if not flow.park.answered and flow.pin_tries == 0:
            steps.append(("pre_answer", None))  # early media: the refusal costs the caller nothing
        steps.append(commands.playback(flow.svc.catalog.path(prompt, flow.language)))
        s.wait_done(s.start_many(steps)[-1], step, what="announcement")
        event_uuid = s.start(*commands.hangup(cause))
        flow.final_sent = True
        s.wait_done(event_uuid, step, what="hangup")
    except ChannelGone:
        pass  # our own hangup, or the caller's during the announcement: either way it is over


def _route(flow: "FlowState", d: Decision) -> str:
    st = flow.settings
    if st is None:
        template = flow.svc.cfg.fallback_route
    elif d.call_class in (CallClass.INTERNAL, CallClass.SERVICE):
        template = st.internal_route
    else:
        template = st.route
    dialed = clean(flow.park.dialed) or ""
    values = {
        "e164": lambda: d.e164 or dialed,
        "dialed": lambda: dialed,
        "national": lambda: national_form(d.e164, dialed),  # a phonenumbers format: only if used
        "gateway": lambda: st.gateway if st else "default",
        "tenant": lambda: flow.park.tenant,
        "extension": lambda: flow.park.extension,
    }
    out = template
    for name in ROUTE_FIELDS:
        placeholder = "{" + name + "}"
        if placeholder in out:
            out = out.replace(placeholder, values[name]())
    return out


def _is_transfer(route: str) -> bool:
    parts = route.split()
    return len(parts) == 3 and parts[1] in ("XML", "xml")
