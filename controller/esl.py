"""The Event Socket transport. The ONLY module that imports greenswitch.

greenswitch 0.0.19 has pitfalls this module designs around (see STYLE.md):
- `send()` has no timeout and does not serialize writers: we send under our
  own lock and wait for the reply with a timeout; a command that gets no reply
  in time means the connection cannot be trusted (replies are matched by
  order), so it is closed and a new one is made.
- a dropped `InboundESL` never releases its waiters and cannot be restarted:
  when its reader greenlet ends we fail every waiter and the supervisor makes
  a new `InboundESL`, with capped exponential backoff and jitter, forever.
- one greenlet runs every handler in turn: our handler only hands the raw
  headers to a callback that must not block (the dispatcher's route).
"""

from __future__ import annotations

import logging
import random
from typing import Callable

import gevent
import gevent.event
import gevent.lock
import greenswitch
from greenswitch.esl import NotConnectedError, OutboundESLServer, OutboundSessionHasGoneAway

from controller import commands
from controller.errors import CommandFailed, ConfigError
from controller.events import SUBSCRIBED

log = logging.getLogger("tollgate.esl")

RawHandler = Callable[[dict], None]


class NotConnected(CommandFailed):
    """The Event Socket is not connected (or dropped while we waited)."""


class _Wire:
    """Send a command and wait for its reply, safely, on a greenswitch protocol object."""

    def __init__(self, proto, timeout: float):
        self.proto = proto
        self.timeout = timeout
        self._lock = gevent.lock.Semaphore()
        self.closed = gevent.event.Event()

    def send(self, data: str, timeout: float | None = None) -> str:
        proto = self.proto
        if self.closed.is_set() or not proto.connected:
            raise NotConnected("Event Socket not connected")
        result = gevent.event.AsyncResult()
        with self._lock:
            proto._commands_sent.append(result)
            try:
                proto.sock.sendall((data + "\n\n").encode("utf-8"))
            except OSError as exc:
                self.lost(f"write failed: {exc}")
                raise NotConnected(f"Event Socket write failed: {exc}") from None
        try:
            reply = result.get(timeout=timeout or self.timeout)
        except gevent.Timeout:
            self.lost("command reply timed out")
            raise CommandFailed(f"no reply to {data.split(chr(10), 1)[0][:40]!r} in time") from None
        except (NotConnectedError, OutboundSessionHasGoneAway, NotConnected):
            raise NotConnected("Event Socket dropped while waiting for a reply") from None
        return reply.data if isinstance(reply.data, str) else ""

    def lost(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        log.warning("Event Socket connection lost: %s", reason)
        proto = self.proto
        proto.connected = False
        proto._run = False
        waiting, proto._commands_sent[:] = list(proto._commands_sent), []
        for waiter in waiting:
            if not waiter.ready():
                waiter.set_exception(NotConnected("Event Socket dropped"))
        try:
            proto.sock.close()
        except OSError:
            pass


class InboundConnection:
    """One authenticated inbound connection to FreeSWITCH (port 8021)."""

    def __init__(self, host: str, port: int, password: str, on_event: RawHandler,
                 timeout: float = 5.0, subscribe_filter: bool = True):
        self.host, self.port, self.password = host, port, password
        self.on_event = on_event
        self.timeout = timeout
        self.subscribe_filter = subscribe_filter
        self.wire: _Wire | None = None

    def open(self) -> None:
        esl = greenswitch.InboundESL(self.host, self.port, self.password, timeout=self.timeout)
        _register(esl, self._handle)
        try:
            with gevent.Timeout(self.timeout, CommandFailed("no auth/request from FreeSWITCH in time")):
                esl.connect()
        except ValueError:
            _shutdown(esl)
            raise ConfigError("FreeSWITCH refused the Event Socket password") from None
        except (OSError, NotConnectedError, CommandFailed) as exc:
            _shutdown(esl)
            raise CommandFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        self.wire = _Wire(esl, self.timeout)
        esl._receive_events_greenlet.link(lambda _g: self.wire.lost("socket closed"))
        self.send(commands.subscribe())
        if self.subscribe_filter:
            self.send(commands.filter_managed())

    def _handle(self, event) -> None:
        try:
            self.on_event(event.headers)
        except Exception as exc:  # noqa: BLE001 - greenswitch would log the raw headers (and a PIN)
            log.error("event handler failed: %s", type(exc).__name__)

    @property
    def connected(self) -> bool:
        return self.wire is not None and not self.wire.closed.is_set()

    def send(self, data: str, timeout: float | None = None) -> str:
        if self.wire is None:
            raise NotConnected("Event Socket not connected")
        return self.wire.send(data, timeout)

    def api(self, command: str, timeout: float | None = None) -> str:
        return self.send(command, timeout)

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self.wire.closed.wait(timeout) if self.wire else True

    def close(self) -> None:
        if self.wire and not self.wire.closed.is_set():
            try:
                self.wire.send("exit", timeout=1.0)
            except CommandFailed:
                pass
            self.wire.lost("closed by us")


def _register(proto, handler) -> None:
    # By name, not '*': greenswitch runs '*' only for events that have no
    # handler of their own, and its OutboundSession has its own CHANNEL_HANGUP one.
    for name in (*SUBSCRIBED, "DISCONNECT"):
        proto.register_handle(name, handler)


def _shutdown(esl) -> None:
    esl._run = False
    try:
        esl.sock.close()
    except (OSError, AttributeError):
        pass


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
            delay = min(self.cap, self.base * (2 ** attempt)) * random.uniform(0.5, 1.0)
            attempt = min(attempt + 1, 30)
            self._stop.wait(delay)

    def stop(self) -> None:
        self._stop.set()


class SocketSession:
    """One call's connection from the dialplan's `socket` application (socket mode)."""

    def __init__(self, session, timeout: float = 5.0):
        self.session = session
        self.wire = _Wire(session, timeout)
        self.channel_data: dict = {}

    def start(self, on_event: RawHandler) -> dict:
        s = self.session
        def handle(ev) -> None:
            try:
                on_event(ev.headers)
            except Exception as exc:  # noqa: BLE001 - never let greenswitch log raw headers
                log.error("event handler failed: %s", type(exc).__name__)

        _register(s, handle)
        s._receive_events_greenlet.link(lambda _g: self.wire.lost("socket closed"))
        # `connect` is answered by the whole channel as headers (CHANNEL_DATA).
        reply_headers = self._send_for_headers("connect")
        self.channel_data = reply_headers
        self.wire.send("myevents")
        self.wire.send("linger")
        return reply_headers

    def _send_for_headers(self, data: str) -> dict:
        result = gevent.event.AsyncResult()
        with self.wire._lock:
            self.session._commands_sent.append(result)
            self.session.sock.sendall((data + "\n\n").encode("utf-8"))
        try:
            return dict(result.get(timeout=self.wire.timeout).headers)
        except gevent.Timeout:
            self.wire.lost("connect reply timed out")
            raise CommandFailed("no reply to connect in time") from None
        except (OutboundSessionHasGoneAway, NotConnectedError):
            raise NotConnected("socket session closed before connect") from None

    def send(self, data: str, timeout: float | None = None) -> str:
        return self.wire.send(data, timeout)

    def close(self) -> None:
        if not self.wire.closed.is_set():
            try:
                self.wire.send("exit", timeout=1.0)
            except CommandFailed:
                pass
            self.wire.lost("session done")


class SocketServer:
    """Serves the `socket` application: each connection is one call."""

    def __init__(self, host: str, port: int, on_session: Callable[[SocketSession], None],
                 max_connections: int = 20000, timeout: float = 5.0):
        outer = self

        class _App:
            def __init__(self, session):
                self.session = session

            def run(self):
                outer.on_session(SocketSession(self.session, timeout))

        self.on_session = on_session
        # greenswitch's server calls session.connect() itself before our app
        # runs; we replace that step so the connect reply goes through our
        # timeout-guarded path.
        self.server = OutboundESLServer(bind_address=host, bind_port=port, application=_App,
                                        max_connections=max_connections)
        self.server._handle_call = self._handle_call

    def _handle_call(self, session) -> None:
        app = self.server.application(session)
        g = gevent.spawn(app.run)
        self.server._greenlets.add(g)
        g.session = session
        self.server.connection_count += 1

        def finished(greenlet):
            self.server._greenlets.discard(greenlet)
            self.server.connection_count -= 1
            session._run = False

        g.link(finished)

    @property
    def bound_port(self) -> int | None:
        return self.server.bound_port

    def serve(self) -> None:
        self.server.listen()

    def stop(self) -> None:
        self.server.stop()
