"""Alerts (issue 12): a tenant crossing a threshold is recorded, audited and,
if it chose so, suspended. The webhook and the metrics are the controller's
(controller/ops/alerts.py); this is the state, shared by every controller.
"""

from __future__ import annotations

import time

from controller.errors import NotFound
from controller.store import keys
from controller.store.admin import Admin

ALERTS_MAXLEN = 10_000


class Alerts:
    def __init__(self, admin: Admin):
        self.admin = admin
        self.r = admin.r

    def raise_once(self, tenant: str, name: str, window: int, detail: str, count: int,
                   suspend: bool) -> dict | None:
        """The alert, once per window and tenant (None: another call or another
        controller raised it already): written to the alerts stream and the
        audit, and the suspension set if `suspend`."""
        if not self.r.set(keys.alert_raised(tenant, name), f"{time.time():.0f}", nx=True, ex=max(window, 60)):
            return None
        alert = {"tenant": tenant, "alert": name, "count": str(count), "detail": detail,
                 "suspended": "yes" if suspend else "no", "ts": f"{time.time():.3f}"}
        tx = self.r.pipeline()
        tx.xadd(keys.alerts(tenant), alert, maxlen=ALERTS_MAXLEN, approximate=True)
        if suspend:
            tx.hset(keys.suspended(tenant), mapping={"reason": f"alert {name}: {detail}", "since": alert["ts"],
                                                     "alert": name})
        result = tx.execute()
        alert["id"] = result[0]
        self.admin.audit.append("alert", tenant, actor="tollgate", action="alert.raise", object=name,
                                after={k: v for k, v in alert.items() if k != "tenant"})
        return alert

    def record_lockout(self, tenant: str, window: int) -> int:
        """One more lockout; how many the tenant had in the window."""
        now = time.time()
        pipe = self.r.pipeline()
        pipe.zadd(keys.lockouts(tenant), {f"{now:.6f}": now})
        pipe.zremrangebyscore(keys.lockouts(tenant), "-inf", f"({now - window}")
        pipe.zcard(keys.lockouts(tenant))
        pipe.expire(keys.lockouts(tenant), window + 60)
        return int(pipe.execute()[2])

    def list(self, tenant: str, count: int = 50) -> list[dict]:
        self.admin.require_tenant(tenant)
        return [{"id": i, **f} for i, f in reversed(self.r.xrevrange(keys.alerts(tenant), count=count))]

    def suspension(self, tenant: str) -> dict:
        self.admin.require_tenant(tenant)
        return self.r.hgetall(keys.suspended(tenant))

    def lift(self, tenant: str) -> None:
        """An operator lifts the suspension (audited with the operator's name)."""
        before = self.suspension(tenant)
        if not before:
            raise NotFound(f"tenant {tenant!r} is not suspended")
        self.r.delete(keys.suspended(tenant))
        self.admin._log(tenant, "alert.lift", "suspension", before=before)
