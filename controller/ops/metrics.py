"""Prometheus metrics and the health endpoints, on one small HTTP server.

Each controller has its own registry (tests run several in one process).
Labels are tenant, verdict, class and reason: never a number, an extension or
anything a caller keyed.
"""

from __future__ import annotations

import json
import logging
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger("tollgate.metrics")

DECISION_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
DIALOG_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self._children: dict = {}
        self.verdicts = Counter("tollgate_verdicts", "Call verdicts carried out",
                                ["tenant", "verdict", "class", "reason"], registry=r)
        self.outcomes = Counter("tollgate_call_outcomes", "How managed calls ended for Tollgate",
                                ["outcome"], registry=r)
        self.pin_attempts = Counter("tollgate_pin_attempts", "PIN entries checked", ["tenant"], registry=r)
        self.pin_failures = Counter("tollgate_pin_failures", "Wrong PIN entries", ["tenant"], registry=r)
        self.lockouts = Counter("tollgate_lockouts", "Extensions locked after failed PINs", ["tenant"], registry=r)
        self.decision_seconds = Histogram("tollgate_decision_seconds",
                                          "CHANNEL_PARK to verdict, calls without a PIN dialog",
                                          buckets=DECISION_BUCKETS, registry=r)
        self.pin_dialog_seconds = Histogram("tollgate_pin_dialog_seconds", "CHANNEL_PARK to verdict, PIN calls",
                                            buckets=DIALOG_BUCKETS, registry=r)
        self.in_progress = Gauge("tollgate_calls_in_progress", "Calls this controller is handling", registry=r)
        self.esl_connected = Gauge("tollgate_esl_connected", "1 when the Event Socket is up", registry=r)
        self.esl_ends_connected = Gauge("tollgate_esl_ends_connected",
                                        "Event Socket connections up for the ends of counted calls", registry=r)
        self.esl_reconnects = Counter("tollgate_esl_reconnects", "Event Socket reconnections", registry=r)
        self.redis_errors = Counter("tollgate_redis_errors", "Failed Redis operations", ["operation"], registry=r)
        self.spool = Gauge("tollgate_audit_spool_size", "Audit entries waiting for Redis", registry=r)
        self.malformed = Counter("tollgate_malformed_events", "Events dropped as unusable", registry=r)
        self.alerts = Counter("tollgate_alerts", "Alerts raised (threshold crossed, lockouts piling up)",
                              ["tenant", "alert", "suspended"], registry=r)

    def observe_call(self, tenant: str, record: dict, seconds: float | None, pin_dialog: bool) -> None:
        if record.get("verdict") and record["verdict"] != "NONE":
            self._child(self.verdicts, (tenant, record["verdict"], record.get("class") or "none",
                                        record.get("reason") or "none")).inc()
            if seconds is not None:
                (self.pin_dialog_seconds if pin_dialog else self.decision_seconds).observe(seconds)
        self._child(self.outcomes, (record.get("outcome") or "none",)).inc()

    def _child(self, metric, labels: tuple[str, ...]):
        """metric.labels(*labels), kept: prometheus_client checks and converts the
        values and takes a lock for each lookup, twice per call. As many entries
        as the metric has children (its labels are never a number or a name a
        caller chose)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """/metrics, /healthz (the process answers) and /readyz (Event Socket and Redis up)."""

    def __init__(self, address: tuple[str, int], metrics: Metrics, ready: Callable[[], dict]):
        from gevent.pywsgi import WSGIServer

        self.metrics = metrics
        self.ready = ready
        self.server = WSGIServer(address, self._app, log=None, error_log=log)

    def start(self) -> None:
        self.server.start()

    @property
    def port(self) -> int:
        return self.server.server_port

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [self.metrics.render()]
        if path == "/healthz":
            return _json(start_response, 200, {"status": "alive"})
        if path == "/readyz":
            checks = self.ready()
            ok = all(v for v in checks.values() if isinstance(v, bool))  # `nodes` details event_socket
            return _json(start_response, 200 if ok else 503, {"ready": ok, **checks})
        return _json(start_response, 404, {"error": "not found", "paths": ["/metrics", "/healthz", "/readyz"]})


def _json(start_response, status: int, body: dict):
    text = {200: "200 OK", 404: "404 Not Found", 503: "503 Service Unavailable"}[status]
    start_response(text, [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
