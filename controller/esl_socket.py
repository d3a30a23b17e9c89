"""Socket mode: the dialplan's `socket` application connects to us, one
connection per call. No greenswitch here: its OutboundSession would bring a
reader greenlet per call, which is the memory we save by letting the call's
own greenlet read its socket."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Mapping
from typing import Callable

import gevent
from gevent.server import StreamServer

from controller.errors import CommandFailed, NotConnected
from controller.framing import FrameReader, FramingError, decode_frame, set_nodelay

log = logging.getLogger("tollgate.esl")

RawHandler = Callable[[dict], None]


class SocketSession:
    """One call's connection from the dialplan's `socket` application (socket mode).

    No reader greenlet: a call has one greenlet, and it reads its own socket
    whenever it waits, for a command's reply or (through the mailbox's pump)
    for an event. A reader per call was a second greenlet, stack and protocol
    object per call: socket mode held 29 KiB per PIN dialog, inbound mode 16.
    greenswitch's OutboundSession is not used: its reader is the one we avoid,
    and nothing else of it was left in use.
    """

    def __init__(self, sock, timeout: float = 5.0):
        self.sock = sock
        try:  # the FreeSWITCH node that connected (its port is an ephemeral one)
            self.node = sock.getpeername()[0]
        except (OSError, IndexError, TypeError):
            self.node = ""
        self.timeout = timeout
        self.closed = False
        self._frames = FrameReader()
        self._replies: collections.deque = collections.deque()
        self._awaiting = 0  # replies owed to commands sent
        self._on_event: RawHandler | None = None
        self._on_lost: Callable[[str], None] | None = None

    def start(self, on_event: RawHandler, on_lost: Callable[[str], None]) -> dict:
        """`connect` (answered by the whole channel as headers, which the caller
        keeps only what it needs of), then `myevents` and `linger`."""
        self._on_event, self._on_lost = on_event, on_lost
        headers = self._exchange(["connect"])[0][0]
        self.send_many(["myevents", "linger"])
        return dict(headers)

    def send(self, data: str, timeout: float | None = None) -> str:
        return self.send_many([data], timeout)[0]

    def send_many(self, commands_: list[str], timeout: float | None = None) -> list[str]:
        return [text for _headers, text in self._exchange(commands_, timeout)]

    def pump(self, timeout: float) -> bool:
        """Read what arrives within `timeout` and dispatch it (replies kept for the
        command waiting, events to the handler). False once the connection is gone."""
        if self.closed:
            gevent.sleep(timeout)  # nothing will come: wait as if nothing came
            return False
        data = None
        try:
            with gevent.Timeout(timeout, False):
                data = self.sock.recv(65536)
            if data is None:
                return True  # nothing came in time
            if not data:
                self._lost("socket closed")
                return False
            for headers, body in self._frames.feed(data):
                self._frame(headers, body)
        except FramingError as exc:
            log.error("dropping the socket session: %s", exc)
            self._lost("bad frame")
        except OSError as exc:
            self._lost(f"read failed: {exc}")
        return not self.closed

    def drain(self, bound: float) -> None:
        """After the call's verdict: read (and drop) until FreeSWITCH closes, which it
        does at hangup (linger); a bridged call runs inside the `socket` application,
        so closing our end first could end it."""
        self._on_event = None
        deadline = time.monotonic() + bound
        while self.pump(max(0.0, min(60.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break

    def close(self) -> None:
        if not self.closed:
            try:
                self.send("exit", timeout=1.0)
            except CommandFailed:
                pass
            self._lost("session done")

    # -- internals ----------------------------------------------------------------
    def _exchange(self, commands_: list[str], timeout: float | None = None) -> list[tuple[Mapping, str]]:
        if self.closed:
            raise NotConnected("socket session closed")
        self._awaiting += len(commands_)
        try:
            self.sock.sendall("".join(c + "\n\n" for c in commands_).encode("utf-8"))
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            raise NotConnected(f"socket session write failed: {exc}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self._replies) < len(commands_):
            left = deadline - time.monotonic()
            if left <= 0:
                self._lost("command reply timed out")
                first = commands_[len(self._replies)].split("\n", 1)[0][:40]
                raise NotConnected(f"no reply to {first!r} in time: connection dropped")
            if not self.pump(left) and len(self._replies) < len(commands_):
                raise NotConnected("socket session dropped while waiting for a reply")
        return [self._replies.popleft() for _ in commands_]

    def _frame(self, headers: dict, body: bytes) -> None:
        kind, headers, text = decode_frame(headers, body)
        if kind == "reply":
            if self._awaiting <= 0:
                log.warning("reply with no command waiting for it: ignored")
                return
            self._awaiting -= 1
            self._replies.append((headers, text))
        elif kind in ("event", "disconnect") and self._on_event is not None:
            try:
                self._on_event(headers)
            except Exception as exc:  # noqa: BLE001 - the handler must not end the session
                log.error("event handler failed: %s", type(exc).__name__)
            if kind == "disconnect" and headers.get("Content-Disposition") != "linger":
                self._lost("disconnect notice")

    def _lost(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        log.debug("socket session ended: %s", reason)
        try:
            self.sock.close()
        except OSError:
            pass
        if self._on_lost is not None:
            self._on_lost(reason)


class SocketServer:
    """Serves the `socket` application: each connection is one call.

    A gevent StreamServer instead of greenswitch's OutboundESLServer, whose
    accept loop polls every 100 ms, exits the process when it cannot bind,
    and builds its own session class (with greenswitch's reader).
    """

    def __init__(self, host: str, port: int, on_session: Callable[[SocketSession], None],
                 max_connections: int = 20000, timeout: float = 5.0):
        self.on_session = on_session
        self.timeout = timeout
        self.server = StreamServer((host, port), self._accept, spawn=max_connections)

    def _accept(self, sock, _address) -> None:
        set_nodelay(sock)
        try:
            self.on_session(SocketSession(sock, self.timeout))
        finally:
            try:
                sock.close()
            except OSError:
                pass

    @property
    def bound_port(self) -> int | None:
        return self.server.server_port if self.server.started else None

    def serve(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(timeout=2)
