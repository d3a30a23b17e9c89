"""The Redis store. `keys` owns the schema; `admin` is what operators change,
`calls` what a call reads and writes, `audit` the audit stream."""

from __future__ import annotations

from dataclasses import dataclass, replace

import redis

from controller.store.accounts import Accounts
from controller.store.admin import Admin
from controller.store.alerts import Alerts
from controller.store.audit import Audit
from controller.store.calls import CallStore
from controller.store.connection import POOL_SIZE, check_schema, connect, kind
from controller.store.lane import Lane
from controller.store.lane_cluster import ClusterLane
from controller.store.limits import Limits


@dataclass
class Store:
    r: redis.Redis
    audit: Audit
    admin: Admin
    calls: CallStore
    limits: Limits
    alerts: Alerts
    accounts: Accounts

    @classmethod
    def open(cls, url: str | None, *, actor: str = "cli", owner: str = "tollgate",
             warn: bool = True, timeout: float = 0.5, check: bool = True) -> "Store":
        r = connect(url, timeout=timeout, warn=warn)
        if check:
            check_schema(r)
        # The hot path's direct connections: real Redis only (the embedded store
        # is an in-process object, with nothing to save on a socket).
        lane = None
        if isinstance(r, redis.RedisCluster):
            lane = ClusterLane(r, POOL_SIZE, timeout)
        elif url:
            lane = Lane(r, POOL_SIZE, timeout)
        audit = Audit(r, lane)
        admin = Admin(r, audit, actor)
        calls = CallStore(r, audit, owner, lane)
        # Replicated stores: what a failover can lose is rechecked (audit) or waited for (PIN failures).
        audit.replicated = calls.wait_replicas = kind(url) in ("sentinel", "cluster")
        return cls(r=r, audit=audit, admin=admin, calls=calls, limits=Limits(admin),
                   alerts=Alerts(admin), accounts=Accounts(r, audit))

    def acting(self, actor: str) -> "Store":
        """The same store whose changes the audit attributes to `actor` (a person of the web portal)."""
        admin = Admin(self.r, self.audit, actor)
        return replace(self, admin=admin, limits=Limits(admin), alerts=Alerts(admin))
