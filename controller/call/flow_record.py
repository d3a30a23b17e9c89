"""The verdict's record, written before it is carried out (a step of `CallFlow`, through `FlowState`).

One round trip: the audit entry, the intent a survivor would carry out, and
the call's admission under the tenant's limits, checked and taken in the same
script (`CallStore.record_verdict`). A limit found full there refuses the call
after all (another call took the last place, or nobody read the counts
before: an allowed call leaves them to this check); the counts it found raise
an alert when this call brings one to its threshold. Without Redis the record
waits in the spool (and the controller's spool file) and the call is carried
out all the same.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import redis

from controller.call.services import one_line
from controller.store.counting import tenant_day
from policies.decide import alert_at_admission, full_at_admission
from policies.limits import PLACE_BOUND, window_text
from policies.model import Verdict

if TYPE_CHECKING:
    from controller.call.flow_state import FlowState
    from controller.store.admission import Admission

# What a recorded verdict keeps for whoever has to carry it out instead of us.
INTENT_FIELDS = ("verdict", "class", "e164", "reason", "rule", "detail", "authorized_list",
                 "pin_holder", "identity", "region", "outcome", "controller", "max_seconds")


def record(flow: "FlowState") -> None:
    if flow.degraded:
        # Decided without Redis: the record goes straight to the spool, on disk
        # before the call is carried out, so a controller killed now keeps it.
        flow.recorded_outcome = flow.plan.outcome
        flow.svc.store.calls.spool(flow.audit_tenant(), flow.fields(flow.plan.outcome))
        return
    try:
        admission = _write_record(flow)
        if admission.full:
            flow.settle(full_at_admission(flow.decision, *admission.full))
            _write_record(flow)
        elif flow.decision.verdict is Verdict.ALLOW:
            # An alert limit that applies is among the admissions: its count is here.
            found = alert_at_admission(flow.decision, admission.counts)
            if found:
                _alert(flow, *found)
    except redis.RedisError as exc:
        flow.svc.metrics.redis_errors.labels("record_verdict").inc()
        flow.log.error("verdict write failed, spooled: %s", one_line(exc))


def _write_record(flow: "FlowState") -> "Admission":
    flow.recorded_outcome = flow.plan.outcome
    now, st = time.time(), flow.settings
    flow.day = tenant_day(now, st.timezone if st else "", st.country if st else flow.svc.cfg.default_country)
    fields = flow.fields(flow.plan.outcome)
    intent = {k: fields[k] for k in INTENT_FIELDS if fields.get(k)}
    p, d = flow.park, flow.decision
    return flow.svc.store.calls.record_verdict(
        p.tenant, p.uuid, fields, intent, used_entry=flow.used_entry, had_state=flow.state_written,
        admit=d.admit if d.verdict is Verdict.ALLOW else (), now=now,
        span=(d.max_seconds or PLACE_BOUND) + 300, day=flow.day)


def _alert(flow: "FlowState", name: str, count: int) -> None:
    """This call brought an alert limit to its threshold."""
    lim = next((x for x in flow.snapshot.limits if x.name == name), None)
    if lim is None:
        return
    d = flow.decision
    detail = (f"{count} {d.call_class.value} calls in {window_text(lim.window)} "
              f"({'tenant' if lim.scope == 'tenant' else flow.park.extension}), threshold {lim.max}")
    flow.svc.alert(flow.park.tenant, name, lim.window, detail, count, flow.settings.auto_suspend)
