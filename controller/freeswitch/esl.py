"""The Event Socket transport. The ONLY module that imports greenswitch.

greenswitch 0.0.19 has pitfalls this module designs around (see STYLE.md):
- its reader parses line by line, strips values, mangles bodies, and spins
  forever (100% CPU) when the connection ends inside a body: our subclasses
  keep its connection, authentication, handler registry and reply queue, but
  read with `controller.freeswitch.framing` (tested on the captured streams, fuzzed);
- `send()` has no timeout and does not serialize writers: we send under our
  own lock and wait for the reply with a timeout; a command that gets no reply
  in time means the connection cannot be trusted (replies are matched by
  order), so it is closed and a new one is made.
- a dropped `InboundESL` never releases its waiters and cannot be restarted:
  when its reader greenlet ends we fail every waiter and the supervisor makes
  a new `InboundESL`, with capped exponential backoff and jitter, forever.
- one greenlet runs every handler in turn: our handler only hands the raw
  headers to a callback that must not block (the dispatcher's route).

Socket mode (one connection per call) does not use greenswitch: see
controller.freeswitch.esl_socket. The supervisor that keeps a connection up is in
controller.freeswitch.supervisor; the wire format in controller.freeswitch.framing.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
import gevent.event
import gevent.lock
import greenswitch
from greenswitch.esl import ESLEvent, NotConnectedError

from controller.freeswitch import commands
from controller.errors import CommandFailed, ConfigError, NotConnected
from controller.freeswitch.events import SUBSCRIBED
from controller.freeswitch.framing import FrameReader, FramingError, decode_frame, set_nodelay
from controller.turns import others_due

log = logging.getLogger("tollgate.esl")

RawHandler = Callable[[dict], None]


def _event(headers: dict, data: str = "") -> ESLEvent:
    ev = ESLEvent("")
    ev.headers = headers
    ev.data = data
    return ev


class _Reader:
    """Replaces greenswitch's `receive_events` (mixed into its protocol classes)."""

    def receive_events(self) -> None:
        reader = FrameReader()
        try:
            while self._run:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                frames, data = reader.feed(data), None
                for headers, body in frames:
                    self._frame(headers, body)
                # Nothing of this read stays referenced while we wait for the next
                # one: with a reader per socket session that is memory per call.
                frames = headers = body = None
        except FramingError as exc:
            log.error("dropping the Event Socket connection: %s", exc)
        except Exception as exc:  # noqa: BLE001 - a reader that dies silently would hang every call
            log.error("Event Socket reader failed: %s", type(exc).__name__)
        finally:
            self.connected = False
            self._run = False
            self._auth_request_event.set()  # a connect() still waiting must not wait forever

    def start_event_handlers(self) -> None:
        # Only the reader: it hands every event to the handlers itself, in order
        # (greenswitch's second greenlet and queue would only add a switch per
        # event, drop what is queued at EOF, and cost memory per socket session).
        self._receive_events_greenlet = gevent.spawn(self.receive_events)
        self._process_events_greenlet = None

    def _handle_now(self, event: ESLEvent, name: str | None = None) -> None:
        handlers = self.event_handlers.get(name or event.headers.get("Event-Name")) or self.event_handlers.get("*")
        for handler in handlers or ():
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - never let a handler kill the reader
                log.error("event handler failed: %s", type(exc).__name__)

    def _frame(self, headers: dict, body: bytes) -> None:
        kind, headers, text = decode_frame(headers, body)
        if kind == "event":
            # Straight to the handlers, in the reader's greenlet: ours only route
            # (O(1), never block), so the queue and the extra switch buy nothing.
            self._handle_now(_event(headers))
        elif kind == "reply":
            self._reply(_event(headers, text))
        elif kind == "auth":
            self._auth_request_event.set()
        elif kind == "disconnect":
            if headers.get("Content-Disposition") == "linger":
                self._lingering = True
            else:
                self.connected = False
            self._handle_now(_event(headers, text), "DISCONNECT")
        elif kind == "rejected":
            self.connected = False
            self._auth_request_event.set()

    def _reply(self, event: ESLEvent) -> None:
        if not self._commands_sent:
            log.warning("reply with no command waiting for it: ignored")
            return
        self._commands_sent.pop(0).set(event)


class _InboundESL(_Reader, greenswitch.InboundESL):
    pass


class _Wire:
    """Send a command and wait for its reply, safely, on a greenswitch protocol object."""

    def __init__(self, proto, timeout: float):
        self.proto = proto
        self.timeout = timeout
        self._lock = gevent.lock.Semaphore()
        self._outbox: list[tuple[bytes, list]] = []  # this turn's writes, sent by its first writer
        self.closed = gevent.event.Event()

    def send(self, data: str, timeout: float | None = None) -> str:
        return self.send_many([data], timeout)[0]

    def send_many(self, commands_: list[str], timeout: float | None = None) -> list[str]:
        """Several commands in one write (one syscall, one wait); reply texts in order."""
        return [r.data if isinstance(r.data, str) else "" for r in self.exchange(commands_, timeout)]

    def exchange(self, commands_: list[str], timeout: float | None = None) -> list[ESLEvent]:
        """The replies themselves (a socket session's `connect` reply is all headers)."""
        proto = self.proto
        if self.closed.is_set() or not proto.connected:
            raise NotConnected("Event Socket not connected")
        results = [gevent.event.AsyncResult() for _ in commands_]
        self._outbox.append((commands.wire(commands_), results))
        if len(self._outbox) == 1:
            # The first writer of this turn of the event loop writes for every call
            # that sends in it too: under load, calls come in together, and one
            # write (one syscall) carries all their commands.
            try:
                if others_due():
                    gevent.sleep(0)
            finally:
                self._flush()  # even when interrupted: the others' commands must go
        try:
            # Replies come in order: once the last is in, so are the others (one
            # timer per exchange, not one per command).
            results[-1].get(timeout=timeout or self.timeout)
            return [result.get(block=False) for result in results]
        except gevent.Timeout:
            self.lost("command reply timed out")
            first = next((c for c, r in zip(commands_, results) if not r.ready()), commands_[-1])
            first = first.split("\n", 1)[0][:40]
            raise NotConnected(f"no reply to {first!r} in time: connection dropped") from None
        except (NotConnectedError, NotConnected):
            raise NotConnected("Event Socket dropped while waiting for a reply") from None

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        proto = self.proto
        with self._lock:
            if self.closed.is_set():
                for _, results in batch:
                    for result in results:
                        result.set_exception(NotConnected("Event Socket dropped"))
                return
            for _, results in batch:
                proto._commands_sent.extend(results)  # replies come in this order
            try:
                proto.sock.sendall(b"".join(data for data, _ in batch))
            except OSError as exc:
                self.lost(f"write failed: {exc}")  # fails every waiter, these included

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
                 timeout: float = 5.0, subscribe_filter: bool = True, events: tuple[str, ...] = SUBSCRIBED):
        self.host, self.port, self.password = host, port, password
        self.on_event = on_event
        self.timeout = timeout
        self.subscribe_filter = subscribe_filter
        self.events = events  # what it subscribes to (a test bed's watcher asks for more)
        self.wire: _Wire | None = None

    def open(self) -> None:
        esl = _InboundESL(self.host, self.port, self.password, timeout=self.timeout)
        _register(esl, _guarded(self.on_event), self.events)
        try:
            with gevent.Timeout(self.timeout, CommandFailed("no auth/request from FreeSWITCH in time")):
                esl.connect()
        except ValueError:
            _shutdown(esl)
            raise ConfigError("FreeSWITCH refused the Event Socket password") from None
        except (OSError, NotConnectedError, CommandFailed) as exc:
            _shutdown(esl)
            raise CommandFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        set_nodelay(esl.sock)
        self.wire = _Wire(esl, self.timeout)
        esl._receive_events_greenlet.link(lambda _g: self.wire.lost("socket closed"))
        self.send(commands.subscribe(self.events))
        if self.subscribe_filter:
            self.send(commands.filter_managed())
            self.send(commands.filter_mark_executed())

    @property
    def connected(self) -> bool:
        return self.wire is not None and not self.wire.closed.is_set()

    @property
    def node(self) -> str:
        """The FreeSWITCH node this connection leads to, as configured (host:port)."""
        return f"{self.host}:{self.port}"

    def send(self, data: str, timeout: float | None = None) -> str:
        if self.wire is None:
            raise NotConnected("Event Socket not connected")
        return self.wire.send(data, timeout)

    def send_many(self, commands_: list[str], timeout: float | None = None) -> list[str]:
        if self.wire is None:
            raise NotConnected("Event Socket not connected")
        return self.wire.send_many(commands_, timeout)

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


def _guarded(on_event: RawHandler):
    """A handler that never raises: greenswitch would log the raw headers (and a PIN)."""

    def handle(event) -> None:
        try:
            on_event(event.headers)
        except Exception as exc:  # noqa: BLE001 - see above
            log.error("event handler failed: %s", type(exc).__name__)

    return handle


def _register(proto, handler, events: tuple[str, ...] = SUBSCRIBED) -> None:
    # By name, not '*': greenswitch runs '*' only for events that have no
    # handler of their own, and its OutboundSession has its own CHANNEL_HANGUP one.
    for name in (*events, "DISCONNECT"):
        proto.register_handle(name, handler)


def _shutdown(esl) -> None:
    esl._run = False
    try:
        esl.sock.close()
    except (OSError, AttributeError):
        pass
