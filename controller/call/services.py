"""What every call flow shares: its configuration, the controller's services
(the store, the pepper, the prompts, the metrics, alerts), the write of the
ends of counted calls, and the call's logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis

from controller.freeswitch.events import CallEnded
from controller.ops.metrics import Metrics
from controller.ops.prompt_catalog import Catalog
from controller.store import Store
from policies.model import TenantSettings, check_name

log = logging.getLogger("tollgate.call")


@dataclass
class FlowConfig:
    # This process (name~incarnation): claims, the channel's tollgate_owner, the
    # heartbeat. A restart under the same name is a new life (controller.app).
    controller_id: str = "tollgate"
    # What operators call it (--controller-id): the audit, and the mark of the
    # ends it counts, which its next life must still get.
    controller_name: str = ""
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
    alerts: object = None  # controller.ops.alerts.AlertService

    def alert(self, tenant: str, name: str, window: int, detail: str, count: int, suspend: bool) -> None:
        if self.alerts is not None:
            self.alerts.threshold(tenant, name, window, detail, count, suspend)

    def calls_ended(self, ends: list[CallEnded]) -> None:
        """Counted calls are over (a batch read by controller.call.ends): give their
        places back, add their minutes, in one Redis write."""
        try:
            self.store.calls.calls_ended([(e.tenant, e.uuid, e.counted, e.billsec) for e in ends
                                          if valid_tenant(e.tenant)])
        except redis.RedisError as exc:
            # The places lapse by themselves (each is scored with the latest it may be held).
            self.metrics.redis_errors.labels("call_ended").inc()
            log.error("the end of %d counted calls not recorded: %s", len(ends), one_line(exc))


class CallLog(logging.LoggerAdapter):
    """Every line of a call carries its id (in the text, and as a field for JSON logs)."""

    def process(self, msg, kwargs):
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return f"[{self.extra['call']}] {msg}", kwargs


class Watchdog(Exception):
    """The call outlived its bound before its verdict was carried out."""


def valid_tenant(name: str) -> bool:
    try:
        check_name("tenant", name)
        return True
    except ValueError:
        return False


def one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__
