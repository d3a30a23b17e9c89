"""The calls' greenlets, counted: inbound mode's dispatcher and socket mode's
listener each keep one set of them.

Plain greenlets (`gevent.spawn_raw`), not gevent Greenlets in a Pool, whose
group, semaphore and links (run a loop turn after the call ended, to take it
out of the pool) made a call's greenlet cost 20-21 us of CPU from its spawn
to its end instead of 9.5 (in a loop, warm).
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.event
from greenlet import getcurrent


class CallGreenlets:
    """`on_end` runs in each greenlet as it ends, once it is no longer counted."""

    def __init__(self, log: logging.Logger, on_end: Callable[[], None] | None = None):
        self._log = log
        self._on_end = on_end
        self._running: set = set()
        self._idle = gevent.event.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._running)

    def spawn(self, name: str, fn: Callable, *args):
        """`name` says which call in the log line of one that raised."""
        greenlet = gevent.spawn_raw(self._run, name, fn, args)
        self._running.add(greenlet)
        self._idle.clear()
        return greenlet

    def _run(self, name: str, fn: Callable, args: tuple) -> None:
        try:
            fn(*args)
        except gevent.GreenletExit:
            pass  # killed at shutdown, after its grace
        except Exception:  # noqa: BLE001 - a bug in one call must not reach the event loop
            self._log.exception("%s failed", name)
        finally:
            self._running.discard(getcurrent())
            if not self._running:
                self._idle.set()
            if self._on_end is not None:
                self._on_end()

    def join(self, timeout: float) -> bool:
        """True once none runs, False if some still do after `timeout` seconds."""
        return self._idle.wait(timeout)

    def kill(self, timeout: float) -> None:
        """Ends every one (GreenletExit unwinds it), waiting `timeout` seconds at most."""
        for greenlet in list(self._running):
            gevent.kill(greenlet)
        self._idle.wait(timeout)
        self._running.clear()  # any killed before it ran: nothing of it to wait for
        self._idle.set()
