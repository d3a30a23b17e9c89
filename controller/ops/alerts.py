"""Alerts, as the controller raises them (issue 12): the Redis state
(controller/store/alerts.py), a Prometheus counter, and a JSON webhook signed
with HMAC-SHA256 and retried with backoff in a greenlet of its own, so that no
call ever waits for a web server. A webhook never carries a PIN: its fields
are the tenant, the alert's name, the count, the explanation and whether the
tenant was suspended.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request

import gevent
import gevent.queue
import redis

from controller.ops.metrics import Metrics
from controller.store import Store

log = logging.getLogger("tollgate.alerts")

RETRIES = 6  # attempts per webhook
BACKOFF = 0.5  # seconds before the 2nd attempt, doubled each time (0.5, 1, 2, 4, 8)
TIMEOUT = 5.0  # seconds per attempt
SIGNATURE_HEADER = "X-Tollgate-Signature"  # "sha256=" + hex HMAC of "<timestamp>.<body>"
TIMESTAMP_HEADER = "X-Tollgate-Timestamp"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes: HMAC-SHA256 over the timestamp, a dot and the body
    (the timestamp inside the MAC stops a captured webhook from being replayed later)."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class AlertService:
    def __init__(self, store: Store, metrics: Metrics, url: str = "", secret: bytes = b""):
        self.store, self.metrics = store, metrics
        self.url, self.secret = url, secret
        self.queue: gevent.queue.Queue = gevent.queue.Queue(maxsize=10_000)
        self.sent = 0
        self.failed = 0
        self._sender = gevent.spawn(self._send_loop) if url else None

    def threshold(self, tenant: str, name: str, window: int, detail: str, count: int, suspend: bool) -> None:
        """A call brought an alert limit to its threshold (or lockouts piled up).
        Runs in a greenlet of its own: the call goes on meanwhile."""
        gevent.spawn(self._raise, tenant, name, window, detail, count, suspend)

    def _raise(self, tenant, name, window, detail, count, suspend) -> None:
        try:
            alert = self.store.alerts.raise_once(tenant, name, window, detail, count, suspend)
        except redis.RedisError as exc:
            self.metrics.redis_errors.labels("alert").inc()
            log.error("alert %s of %s not recorded: %s", name, tenant, exc)
            return
        if alert is None:
            return  # raised already in this window
        self.metrics.alerts.labels(tenant, name, alert["suspended"]).inc()
        log.warning("ALERT %s %s: %s (count %s)%s", tenant, name, detail, count,
                    "; chargeable calls suspended" if suspend else "")
        if self.url:
            try:
                self.queue.put_nowait(alert)
            except gevent.queue.Full:
                self.failed += 1
                log.error("webhook queue full: alert %s of %s not sent", name, tenant)

    def _send_loop(self) -> None:
        while True:
            alert = self.queue.get()
            body = json.dumps({"type": "tollgate.alert", **alert}, sort_keys=True).encode()
            delay = BACKOFF
            for attempt in range(1, RETRIES + 1):
                if self._post(body):
                    self.sent += 1
                    break
                if attempt == RETRIES:
                    self.failed += 1
                    log.error("webhook for alert %s of %s failed %d times: given up", alert["alert"],
                              alert["tenant"], RETRIES)
                    break
                gevent.sleep(delay)
                delay *= 2

    def _post(self, body: bytes) -> bool:
        stamp = f"{time.time():.0f}"
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self.secret, stamp, body)})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
                return 200 <= reply.status < 300
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("webhook to %s: %s", self.url.split("?")[0][:100], exc)
            return False
