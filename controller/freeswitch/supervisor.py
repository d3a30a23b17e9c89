"""Keeps one inbound Event Socket connection up, forever (one per FreeSWITCH node)."""

from __future__ import annotations

import logging
import random
from typing import Callable

import gevent.event

from controller.errors import CommandFailed, ConfigError
from controller.freeswitch.esl import InboundConnection

log = logging.getLogger("tollgate.esl")


def keep_connected(stop: gevent.event.Event, session: Callable[[int], bool], base: float, cap: float) -> None:
    """Runs `session(attempt)` until `stop` is set. A session connects, serves
    until its connection ends, and says whether it got connected (that resets
    the backoff). Between two sessions: exponential backoff, capped, with
    jitter (controllers restarted together must not come back in step)."""
    attempt = 0
    while not stop.is_set():
        if session(attempt):
            attempt = 0
        if stop.is_set():
            break
        stop.wait(min(cap, base * (2 ** attempt)) * random.uniform(0.5, 1.0))
        attempt = min(attempt + 1, 30)


class Supervisor:
    """Keeps one inbound connection up, forever, with capped exponential backoff."""

    def __init__(self, make: Callable[[], InboundConnection], on_up: Callable[[InboundConnection], None],
                 on_down: Callable[[InboundConnection], None], base: float = 0.1, cap: float = 5.0):
        self.make, self.on_up, self.on_down = make, on_up, on_down
        self.base, self.cap = base, cap
        self.current: InboundConnection | None = None
        self.reconnects = 0
        self._stop = gevent.event.Event()
        self.up = gevent.event.Event()

    def run(self) -> None:
        keep_connected(self._stop, self._session, self.base, self.cap)

    def _session(self, attempt: int) -> bool:
        conn = self.make()
        try:
            conn.open()
        except (CommandFailed, ConfigError) as exc:
            log.warning("Event Socket connect failed (attempt %d): %s", attempt + 1, exc)
            return False
        self.current = conn
        self.up.set()
        log.info("Event Socket connected to %s:%d", conn.host, conn.port)
        try:
            self.on_up(conn)
            while not self._stop.is_set() and not conn.wait_closed(0.5):
                pass
        finally:
            self.up.clear()
            self.current = None
            if self._stop.is_set():
                conn.close()
            self.on_down(conn)
        if not self._stop.is_set():
            self.reconnects += 1
        return True

    def stop(self) -> None:
        self._stop.set()
