"""The PIN dialog of a CHALLENGE (SPEC §1.4, §4): prompt, collect, check, lock.

Runs in the call's greenlet as part of `CallFlow` (through `FlowState`). The keyed digits live only
in a `Secret` until they are checked: the channel variable is unset before
anything else can read it, the CDR's `digits_dialed` is masked by
`digits_dialed_filter`, and no log line, audit entry or error names them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import gevent

from controller.freeswitch import commands
from controller.freeswitch.events import PIN_VARIABLE
from policies.limits import window_text
from policies.model import Decision, Verdict
from policies.pin import match_holder

if TYPE_CHECKING:
    from controller.call.flow_state import FlowState


def challenge(flow: "FlowState", decision: Decision) -> Decision:
    """ALLOW with the holder whose PIN was keyed, or DENY (bad_pin, locked)."""
    st, ext, snap = flow.settings, flow.snapshot.extension, flow.snapshot
    svc, s = flow.svc, flow.s
    cat = svc.catalog
    flow.write_state("pin_prompt")
    s.start(*commands.multiset({
        "tollgate_owner": svc.cfg.controller_id,
        # Every DTMF digit would otherwise land in the CDR's digits_dialed (fixture 10).
        "digits_dialed_filter": "(.+)",
    }))
    s.run("answer" if st.answer_mode == "answer" else "pre_answer", timeout=svc.cfg.step_timeout)
    pagd = commands.play_and_get_digits(
        min_digits=st.pin_min_length, max_digits=st.pin_max_length, tries=1,
        timeout_ms=st.pin_timeout_ms, terminators="#",
        prompt=cat.path("enter_pin", flow.language), invalid_prompt=cat.path("invalid_pin", flow.language),
        digit_timeout_ms=st.pin_interdigit_ms)
    # Prompt, wait for the first digit, then each further digit: the bound of one try.
    one_try = 15 + (st.pin_timeout_ms + st.pin_max_length * st.pin_interdigit_ms) / 1000
    for attempt in range(1, st.pin_tries + 1):
        flow.pin_tries = attempt
        # The keyed digits live in a channel variable from the prompt's end until
        # an `unset`. Queued with the prompt (event-locked behind it), the unset
        # runs in the channel's own thread right after it, before anything else,
        # even if the caller hung up meanwhile (unset runs on a hung-up channel:
        # SAF_ZOMBIE_EXEC): the CDR never holds them. Sent after the prompt's
        # completion instead, a caller who hung up in that round trip left them in
        # the CDR (the real tier's soak: 12 in 10,000 calls). The completion event
        # still carries them: it is built before the unset runs.
        prompt_uuid, _ = s.start_many([pagd, commands.unset_var(PIN_VARIABLE)])
        done = s.wait_done(prompt_uuid, one_try, what="play_and_get_digits")
        digits = done.digits.reveal() if done.read_result == "success" else ""
        holder = None
        if digits:
            holder, problems = gevent.get_hub().threadpool.apply(match_holder, (digits, ext.pins, svc.pepper))
            for problem in problems:
                flow.log.error("unusable stored PIN for %s/%s: %s", snap.tenant, ext.number, problem)
        del digits
        if done.read_result == "success":
            svc.metrics.pin_attempts.labels(snap.tenant).inc()
        if holder:
            flow.pin_holder = holder
            flow.store_quietly(svc.store.calls.clear_failures, snap.tenant, ext.number)
            s.run(*commands.playback(cat.path("pin_accepted", flow.language)), timeout=svc.cfg.step_timeout)
            return replace(decision, verdict=Verdict.ALLOW, reason="pin_ok",
                           detail=f"{decision.detail}; PIN of {holder!r} accepted")
        if done.read_result == "success":
            svc.metrics.pin_failures.labels(snap.tenant).inc()
            count, locked = flow.store_quietly(
                svc.store.calls.record_pin_failure, snap.tenant, ext.number,
                st.lockout_failures, st.lockout_seconds) or (0, False)
            if locked:
                svc.metrics.lockouts.labels(snap.tenant).inc()
                if st.lockout_alert:
                    n = flow.store_quietly(svc.store.alerts.record_lockout, snap.tenant, st.lockout_alert_window)
                    if n and n >= st.lockout_alert:
                        svc.alert(snap.tenant, "lockouts", st.lockout_alert_window,
                                  f"{n} extensions locked after failed PINs in {window_text(st.lockout_alert_window)}"
                                  f", threshold {st.lockout_alert}", n, st.auto_suspend)
                return replace(decision, verdict=Verdict.DENY, reason="locked",
                               detail=f"{st.lockout_failures} failed PINs: extension locked for "
                                      f"{st.lockout_seconds}s")
            if attempt < st.pin_tries:
                s.run(*commands.playback(cat.path("invalid_pin", flow.language)), timeout=svc.cfg.step_timeout)
    return replace(decision, verdict=Verdict.DENY, reason="bad_pin",
                   detail=f"no valid PIN after {st.pin_tries} tries")
