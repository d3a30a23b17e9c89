"""Keeps one inbound Event Socket connection up, forever (one per FreeSWITCH node)."""

from __future__ import annotations

import logging
import random
from typing import Callable

import gevent.event

from controller.errors import CommandFailed, ConfigError
from controller.esl import InboundConnection

log = logging.getLogger("tollgate.esl")


def pause(stop: gevent.event.Event, attempt: int, base: float, cap: float) -> int:
    """Waits before connection attempt `attempt` + 1 (unless stopped meanwhile):
    exponential, capped, with jitter (controllers restarted together must not
    come back in step). Returns the next attempt's number."""
    stop.wait(min(cap, base * (2 ** attempt)) * random.uniform(0.5, 1.0))
    return min(attempt + 1, 30)


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
        attempt = 0
        while not self._stop.is_set():
            conn = self.make()
            try:
                conn.open()
            except (CommandFailed, ConfigError) as exc:
                log.warning("Event Socket connect failed (attempt %d): %s", attempt + 1, exc)
            else:
                attempt = 0
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
                if self._stop.is_set():
                    break
                self.reconnects += 1
            attempt = pause(self._stop, attempt, self.base, self.cap)

    def stop(self) -> None:
        self._stop.set()
