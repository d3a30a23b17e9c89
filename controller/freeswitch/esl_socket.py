"""Socket mode: the dialplan's `socket` application connects to us, one
connection per call. No greenswitch here: its OutboundSession would bring a
reader greenlet per call, which is the memory we save by letting the call's
own greenlet read its socket."""

from __future__ import annotations

import fcntl
import logging
import struct
import termios
import time
from collections.abc import Mapping
from typing import Callable

import gevent

from controller.freeswitch import commands
from controller.errors import CommandFailed, NotConnected
from controller.freeswitch.framing import FrameReader, FramingError, decode_frame

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
        # Lists, not deques: they hold the few replies of the commands in flight,
        # and an empty deque is a 64-slot block (about 600 bytes) that thousands
        # of held PIN dialogs would each keep twice.
        self._replies: list = []
        # One flag per reply owed, in the order the commands went: True if a
        # command waits for it, False if nobody does (a static session's executes,
        # whose replies come when their application returns).
        self._owed: list = []
        self.sync = False  # the socket application without `async` ("Socket-Mode: static")
        self.following = False  # subscribed to the channel's events, lingering for the last ones
        self._last_event = "CHANNEL_HANGUP_COMPLETE"  # the last one a session gets (see start)
        self._on_event: RawHandler | None = None
        self._on_lost: Callable[[str], None] | None = None
        self.down_at: float | None = None  # when FreeSWITCH said the channel hung up (linger notice)
        self.complete = False  # CHANNEL_HANGUP_COMPLETE read: the channel's last event
        self.last_read = time.monotonic()

    def start(self, on_event: RawHandler, on_lost: Callable[[str], None]) -> Mapping[str, str]:
        """`connect`, answered by the whole channel as headers (the caller keeps
        only what it needs of them). Events are asked for only by a call that
        will read them (follow_commands): an allowed call is handed over without
        a single event, and FreeSWITCH reads every byte we send with a recv() of
        its own (mod_event_socket's read_packet)."""
        self._on_event, self._on_lost = on_event, on_lost
        headers = self._exchange(["connect"])[0][0]
        if headers.get("Socket-Mode") == "static":
            # The last event a static session gets is CHANNEL_HANGUP: the channel
            # reports (CHANNEL_HANGUP_COMPLETE, its hangup time stamped, what it
            # bills computed) only once the socket application has returned, which
            # waits for us to close while it lingers. Without linger, the events
            # still on their way when the channel goes down are dropped with the
            # session (fixture 14): a followed call lingers, and is closed as soon
            # as its CHANNEL_HANGUP is read.
            self._last_event = "CHANNEL_HANGUP"
        # static: listener_run runs in the channel's own thread and runs each
        # sendmsg at once (switch_ivr_parse_event), answering when it returns;
        # async: a thread of its own, every sendmsg queued for the park loop.
        self.sync = headers.get("Socket-Mode") == "static"
        return headers

    def follow_commands(self) -> list[str]:
        """What to write before the first command of a call that reads its events:
        `myevents`, narrowed to what the flow reads (commands.session_events), and
        a bounded `linger` (commands.linger: plain `linger` would keep the channel
        in FreeSWITCH until we close). Nothing once done."""
        if self.following:
            return []
        self.following = True
        seconds = commands.STATIC_LINGER_SECONDS if self.sync else commands.LINGER_SECONDS
        return [*commands.session_events(), commands.linger(seconds)]

    def unfollow_commands(self) -> list[str]:
        """What to write before handing a followed call over for good (stop_events)."""
        if not self.following:
            return []
        self.following = False
        return commands.stop_events()

    def send(self, data: str, timeout: float | None = None) -> str:
        return self.send_many([data], timeout)[0]

    def send_many(self, commands_: list[str], timeout: float | None = None) -> list[str]:
        if self.sync and any(c.startswith("sendmsg") for c in commands_):
            # A static session answers an execute when its application returns: a
            # bridge's "+OK" comes at the end of the call, and what follows it in
            # the same write waits as long. Nobody waits for these replies (they
            # are read and dropped as they come); what the flow waits for is the
            # application's CHANNEL_EXECUTE_COMPLETE, as in async mode.
            self._write(commands_, wanted=False)
            return ["+OK"] * len(commands_)
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

    def drain(self, uuid: str, bound: float, check_every: float = 60.0, after_down: float = 2.0) -> str:
        """After the call's verdict: read (and drop) its events up to the last one,
        CHANNEL_HANGUP_COMPLETE, then the caller closes the session.

        Why we close and do not wait for FreeSWITCH: with `linger` mod_event_socket
        sends its notice when the channel goes down, goes on sending the channel's
        last events, and then waits for the client to close (read_packet), the
        linger time at most; the session, its thread and the channel (CS_DESTROY,
        still in `show channels count`) live until then. A followed bridge runs
        inside the `socket` application, so we read until its hangup rather than
        leave (a bridge nobody follows is let go: release).

        Bounded whatever the node does: a channel silent for `check_every` seconds
        is asked about (`uuid_exists`), and is let go once FreeSWITCH no longer has
        it or does not answer; `after_down` seconds after the linger notice without
        the last event; `bound` in all. Returns why it stopped."""
        self._on_event = None
        deadline = time.monotonic() + bound
        while not self.closed and not self.complete:
            now = time.monotonic()
            if now >= deadline:
                return "bound"
            if self.down_at is not None:
                if now - self.down_at >= after_down:
                    return "no final event"
                wait = self.down_at + after_down - now
            elif self.sync:
                # A static session sends nothing while an application runs (a
                # bridge: the whole call) and cannot be asked anything either: the
                # question would wait behind the application. FreeSWITCH ends the
                # session itself when the channel goes (the socket application
                # returns), so only `bound` applies.
                wait = deadline - now
            else:
                wait = self.last_read + check_every - now
                if wait <= 0:
                    if not self._still_there(uuid):
                        return "channel gone"
                    self.last_read = time.monotonic()
                    continue
            self.pump(max(0.0, min(wait, deadline - now)))
        return "complete" if self.complete else "closed"

    def release(self, bound: float) -> bool:
        """A static session whose call was handed over for good, with no events
        asked for (a bridge nobody follows): closed as soon as FreeSWITCH holds
        every byte we sent, instead of read until the call ends (drain).

        Why that is safe: the listener reads each command from its socket when
        the one before it returns (listener_run, in the channel's own thread),
        and what is in its receive queue stays there to be read whatever we do
        next. Our close answers the replies still to come with a reset; the
        listener ignores a reply it cannot send, reads on what it was sent, and
        ends at the end of it (read_packet), as at the end of a drained session.
        Fixture 16, captured on the real switch: a hangup read after our close
        hangs the call up with the cause it gives. What it saves: the wake-up at
        the end of every call, and a socket and a greenlet held for the call's
        length. Sent-but-unacknowledged bytes (TIOCOUTQ) would be lost with the
        reset: until there are none, the replies are read; False when that is
        not known within `bound` (or on a system without TIOCOUTQ), and the
        caller drains the session as before."""
        self._on_event = None
        deadline = time.monotonic() + bound
        while not self.closed:
            unsent = unacknowledged(self.sock)
            if unsent is None:
                return False
            if unsent == 0:
                self._lost("handed over")
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.1))
        return True

    def _still_there(self, uuid: str) -> bool:
        try:
            return self.send(commands.api("uuid_exists", uuid), timeout=self.timeout).strip() == "true"
        except (CommandFailed, commands.UnsafeCommand):
            return False

    def close(self) -> None:
        if not self.closed:
            try:
                self.send("exit", timeout=1.0)
            except CommandFailed:
                pass
            self._lost("session done")

    # -- internals ----------------------------------------------------------------
    def _write(self, commands_: list[str], wanted: bool) -> None:
        if self.closed:
            raise NotConnected("socket session closed")
        self._owed.extend([wanted] * len(commands_))
        try:
            self.sock.sendall(commands.wire(commands_))
        except OSError as exc:
            self._lost(f"write failed: {exc}")
            raise NotConnected(f"socket session write failed: {exc}") from None

    def _exchange(self, commands_: list[str], timeout: float | None = None) -> list[tuple[Mapping, str]]:
        self._write(commands_, wanted=True)
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self._replies) < len(commands_):
            left = deadline - time.monotonic()
            if left <= 0:
                self._lost("command reply timed out")
                first = commands_[len(self._replies)].split("\n", 1)[0][:40]
                raise NotConnected(f"no reply to {first!r} in time: connection dropped")
            if not self.pump(left) and len(self._replies) < len(commands_):
                raise NotConnected("socket session dropped while waiting for a reply")
        replies, self._replies = self._replies[:len(commands_)], self._replies[len(commands_):]
        return replies

    def _frame(self, headers: dict, body: bytes) -> None:
        kind, headers, text = decode_frame(headers, body)
        self.last_read = time.monotonic()
        if kind == "reply":
            if not self._owed:
                log.warning("reply with no command waiting for it: ignored")
                return
            if self._owed.pop(0):
                self._replies.append((headers, text))
            elif text.startswith("-ERR"):
                log.warning("an application was refused: %s", text[:80])
            return
        if kind == "disconnect" and headers.get("Content-Disposition") == "linger":
            # No loss: FreeSWITCH sends it at the hangup, before the channel's last
            # events (CHANNEL_HANGUP_COMPLETE, with billsec), and keeps the session
            # for them (fixture 12). Passed on as a disconnect, it cut a counted
            # call's wait for its billed seconds short.
            self.down_at = self.last_read
            return
        if kind == "event" and headers.get("Event-Name") == self._last_event:
            self.complete = True
        if kind in ("event", "disconnect") and self._on_event is not None:
            try:
                self._on_event(headers)
            except Exception as exc:  # noqa: BLE001 - the handler must not end the session
                log.error("event handler failed: %s", type(exc).__name__)
        if kind == "disconnect":
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
        # Forgotten as the session ends: the handlers hold the call's session,
        # whose mailbox reads through this one, and that cycle kept every ended
        # call's objects (a socket, its session, mailbox, events) for the
        # garbage collector instead of freeing them at once.
        on_lost, self._on_lost, self._on_event = self._on_lost, None, None
        if on_lost is not None:
            on_lost(reason)


def unacknowledged(sock) -> int | None:
    """Bytes written to `sock` that the other end has not acknowledged yet
    (Linux's TIOCOUTQ: unsent and unacknowledged), None where it cannot be known."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, AttributeError, ValueError):
        return None
