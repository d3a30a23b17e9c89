"""The ends of counted calls, read in batches on an Event Socket connection of
their own (one per FreeSWITCH node, inbound mode).

A call that holds a concurrency place or spends a budget is handed to
FreeSWITCH marked `tollgate_managed=ended-<owner>` (commands.mark_end; a
hangup hook cannot set it: FreeSWITCH's uuid_setvar does not find a channel
that is down). This connection takes CHANNEL_HANGUP_COMPLETE alone, so of
all that call's events only its end, which carries `variable_billsec`, passes
its filter, and only its owner's: each controller on a node gets the ends of
its own calls, once.

Why a connection of its own: the main one must hand a park to its call at
once, so every event on it wakes the controller as it comes (a wake-up of the
gevent hub, a read, a parse: 110-120 us of CPU per end on the benchmark's
2-core VM). The ends can wait: once something comes on this connection, it
is read WINDOW seconds later, and the ends that came meanwhile are parsed
together and written in one Redis write (35-40 us per end). The kernel's
socket buffer holds them meanwhile. An idle connection costs nothing.

If the connection is down, the ends of that time are lost, as they would be
on the main connection: the places lapse by themselves (each is scored with
the latest time it may be held), those calls' minutes are not counted, and
`tollgate_esl_ends_connected` says so. No greenswitch here: a read loop.
"""

from __future__ import annotations

import logging
import socket
from typing import Callable

import gevent
import gevent.event
import gevent.socket

from controller.freeswitch import commands
from controller.freeswitch.events import CallEnded, hangup_complete_counted
from controller.freeswitch.framing import FrameReader, FramingError, decode_frame, set_nodelay
from controller.freeswitch.supervisor import keep_connected

log = logging.getLogger("tollgate.esl")

WINDOW = 0.1  # seconds from the first byte to the read: the ends of that time share a parse and a write
READ_SIZE = 256 * 1024
YIELD_EVERY = 4  # ends parsed between two turns of the event loop (~0.1 ms: a park waits no longer)


class FeedError(Exception):
    """The connection cannot be used (refused, closed, not authenticated)."""


class EndsFeed:
    def __init__(self, host: str, port: int, password: str, owner: str,
                 on_ends: Callable[[list[CallEnded]], None], timeout: float = 5.0,
                 window: float = WINDOW, base: float = 0.1, cap: float = 5.0,
                 on_state: Callable[[], None] | None = None):
        self.host, self.port, self.password, self.owner = host, port, password, owner
        self.on_ends, self.on_state = on_ends, on_state
        self.timeout, self.window = timeout, window
        self.base, self.cap = base, cap
        self.up = gevent.event.Event()
        self.ends_read = 0
        self.reconnects = 0
        self._stop = gevent.event.Event()
        self._sock = None
        self._frames = FrameReader()

    @property
    def node(self) -> str:
        return f"{self.host}:{self.port}"

    def run(self) -> None:
        """Forever: connect, read in batches; reconnect with capped backoff and jitter."""
        keep_connected(self._stop, self._session, self.base, self.cap)

    def _session(self, _attempt: int) -> bool:
        connected = False
        try:
            self._connect()
            connected = True
            log.info("ends connection up to %s", self.node)
            self._set_up(True)
            self._read_loop()
        except (OSError, FeedError, FramingError) as exc:
            if not self._stop.is_set():
                log.warning("ends connection to %s: %s", self.node, exc)
        finally:
            self._set_up(False)
            self._close()
        if not self._stop.is_set():
            self.reconnects += 1
        return connected

    def stop(self) -> None:
        self._stop.set()
        self._close()

    def _set_up(self, up: bool) -> None:
        if up == self.up.is_set():
            return
        self.up.set() if up else self.up.clear()
        if self.on_state:
            self.on_state()

    # -- the connection ------------------------------------------------------------
    def _connect(self) -> None:
        sock = self._sock = gevent.socket.create_connection((self.host, self.port), timeout=self.timeout)
        set_nodelay(sock)
        frames = self._frames = FrameReader()
        self._await(sock, frames, "auth")
        for command in (commands.auth(self.password), commands.subscribe_ends(), commands.filter_ends(self.owner)):
            sock.sendall(f"{command}\n\n".encode())
            _, text = self._await(sock, frames, "reply")
            if not text.startswith("+OK"):
                what = "the password" if command.startswith("auth") else command.split()[0]
                raise FeedError(f"FreeSWITCH refused {what}: {text.strip()[:80]}")

    def _await(self, sock, frames: FrameReader, kind: str) -> tuple[dict, str]:
        with gevent.Timeout(self.timeout, FeedError(f"no {kind} from FreeSWITCH in time")):
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    raise FeedError("closed by FreeSWITCH")
                for headers, body in frames.feed(data):
                    got, parsed, text = decode_frame(headers, body)
                    if got == "rejected":
                        raise FeedError("rejected by FreeSWITCH (ACL)")
                    if got == kind:
                        return parsed, text

    def _read_loop(self) -> None:
        sock = self._sock
        while True:
            # Asleep until FreeSWITCH sends something. Read every window instead,
            # an idle feed woke the controller ten times a second (3.3 ms of CPU
            # a second on the benchmark's VM, a third of a millisecond per call at
            # 10 calls/s). stop() closes the socket, which ends this wait (OSError).
            sock.settimeout(None)
            first = sock.recv(READ_SIZE)
            if not first:
                raise FeedError("closed by FreeSWITCH")
            # Then the window: the ends that come meanwhile share this parse and write.
            stopping = self._stop.wait(self.window)
            sock.settimeout(0.0)
            try:
                rest, closed = self._drain(sock)
            except OSError:  # stop() closed it meanwhile: what came first still counts
                rest, closed = b"", True
            if self._handle(first + rest):
                raise FeedError("FreeSWITCH sent a disconnect notice")
            if closed:
                raise FeedError("closed by FreeSWITCH")
            if stopping:
                return

    def _handle(self, data: bytes) -> bool:
        """Parses a read and hands on its ends; True after a disconnect notice
        (what came before it still counts; FreeSWITCH closes the connection next)."""
        ends, notice = [], False
        if data:
            for n, (headers, body) in enumerate(self._frames.feed(data), 1):
                if n % YIELD_EVERY == 0:
                    gevent.sleep(0)  # a park that came meanwhile does not wait for the whole batch
                kind, parsed, _ = decode_frame(headers, body)
                if kind == "event":
                    end = hangup_complete_counted(parsed, parsed.get("Unique-ID", ""))
                    if end is not None:
                        ends.append(end)
                elif kind == "disconnect":
                    notice = True
                    break
        if ends:
            self.ends_read += len(ends)
            try:
                self.on_ends(ends)
            except Exception as exc:  # noqa: BLE001 - the feed must outlive a bad batch
                log.error("the end of %d counted calls not handled: %s", len(ends), type(exc).__name__)
        return notice

    def _drain(self, sock) -> tuple[bytes, bool]:
        """Everything that came since the last read, without waiting; and whether
        FreeSWITCH closed the connection (the ends before that still count)."""
        chunks = []
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except (BlockingIOError, socket.timeout):
                return b"".join(chunks), False
            if not data:
                return b"".join(chunks), True
            chunks.append(data)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
