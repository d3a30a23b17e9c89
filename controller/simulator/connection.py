"""One Event Socket client of the simulator: inbound (ours to authenticate) or
the session a `socket` application opened. Speaks the captured wire format."""

from __future__ import annotations

import itertools
import re
import logging
import time
import uuid as uuidlib
from typing import TYPE_CHECKING

import gevent
import gevent.socket
from gevent.queue import Queue

from controller.simulator import wire
from controller.simulator.channel import Channel

if TYPE_CHECKING:
    from controller.simulator.roles import Switch

log = logging.getLogger("tollgate.simulator")

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def _filter_value(header: str, name: str, channel: Channel, extra=()) -> str | None:
    if header == "Event-Name":
        return name
    if header == "Unique-ID":
        return channel.uuid
    if header.startswith("variable_"):
        # DTMF events carry no variables (so a variable filter drops them).
        return None if name == "DTMF" else channel.vars.get(header[9:])
    # The event's own headers (an execute's Application, Application-Data...).
    return next((v for k, v in extra if k == header), None)


def _filter_matches(found: str, wanted: str, regex: bool) -> bool:
    """mod_event_socket: a value in slashes is a regular expression, else a
    case-insensitive comparison."""
    if regex and wanted.endswith("/") and len(wanted) > 1:
        return re.search(wanted[1:-1], found) is not None
    return found.lower() == wanted.lower()


def _filters_pass(filters: list[tuple[str, str]], value_of) -> bool:
    """mod_event_socket's event_handler (1.10), filter by filter in the order
    they were added: a filter counts only for an event that has its header; a
    value led by `+` (or nothing) passes what it matches, one led by `-` drops
    what it matches and ends the look, whatever passed it before. A header the
    simulator does not model (value_of gives None) is one the event lacks."""
    send = False
    for header, value in filters:
        found = value_of(header)
        if found is None:
            continue
        positive, i = True, 0
        while i < len(value) and value[i] in "+- ":
            if value[i] != " ":
                positive = value[i] == "+"
            i += 1
        if send and positive:
            continue
        if _filter_matches(found, value[i:], regex=value.startswith("/")):
            if not positive:
                return False
            send = True
    return send


def connect_to(address, timeout: float):
    """create_connection() without its getaddrinfo() when the host is an address
    already: gevent resolves in a thread pool, a hop per call that serialized
    every socket-mode call behind it."""
    host, port = address
    try:
        family = gevent.socket.AF_INET6 if ":" in host else gevent.socket.AF_INET
        gevent.socket.inet_pton(family, host)
    except OSError:
        return gevent.socket.create_connection(address, timeout=timeout)
    sock = gevent.socket.socket(family, gevent.socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class Connection:
    """One client of the Event Socket: inbound (ours to authenticate) or a socket-app session."""

    ids = itertools.count(1)

    def __init__(self, sim: "Switch", sock, channel: Channel | None = None):
        self.sim = sim
        self.sock = sock
        # as mod_event_socket does: replies and events go out at once
        sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
        self.id = next(self.ids)
        self.channel = channel  # socket mode: the session's own channel
        self.authed = channel is not None
        self.events: set[str] = set()
        self.all_events = False
        self.filters: list[tuple[str, str]] = []
        self.myevents = False
        self.nixed: set[str] = set()  # event types taken out with nixevent
        self.linger: int | None = None  # seconds asked with `linger` (-1: forever), None: not asked
        self.out: Queue = Queue()
        self.closed = False
        # The listener's event queue (mod_event_socket's listener->event_queue):
        # events wait here until the listener's thread wakes (read_packet), at
        # the next tick of its `switch_poll(..., 20000)` or once a command from
        # the client has been handled; `hold` > 0 while that thread is busy
        # (the static socket application's listener running an application).
        self.held: list[bytes] = []
        self.held_hooks: list = []  # called once their event is written (the benchmark's stamps)
        self.hold = 0
        self.t0 = time.monotonic()  # the listener's free-running 20 ms tick
        self.read_until = 0.0  # when the listener is done reading what it was sent, modelled (take)
        self.read_done = 0.0  # ... and when it was, in fact
        self.tick_pending = False
        self.sent_hooks: list = []
        self.static = False  # a socket session without `async` (set by the socket application)
        self.full = False
        self.reader = None
        self.writer = gevent.spawn(self._write)

    def _write(self) -> None:
        out = self.out
        failed = False
        while True:
            data = out.get()
            if data is None:
                break
            if failed:
                continue
            if not out.empty():  # what queued up meanwhile goes in the same write
                parts = [data]
                while not out.empty() and out.peek() is not None:
                    parts.append(out.get())
                data = b"".join(parts)
            hooks, self.sent_hooks = self.sent_hooks, []  # those of what was just taken
            try:
                self.sock.sendall(data)
            except OSError:
                # The client closed (or reset) its end. mod_event_socket ignores a
                # reply it cannot send and reads on what it was sent until
                # read_packet meets the end (fixture 16): what was queued for the
                # client is dropped, the command loop goes on.
                failed = True
                continue
            self.sim.bytes_sent += len(data)
            for hook in hooks:
                hook()
        self._close_socket()

    def send(self, data: bytes) -> None:
        """A command reply (or a notice): written at once, as the listener writes
        the reply right after parsing the command."""
        if not self.closed:
            self.out.put(data)

    def send_event(self, data: bytes, on_sent=None) -> None:
        """An event for this client: into the listener's event queue, written at
        its next wake (Simulator.event_pace; at once when that is 0 and nothing
        holds the listener). on_sent is called once it is written."""
        if self.closed:
            return
        if self.sim.event_pace <= 0 and not self.hold:
            self.out.put(data)
            if on_sent is not None:
                self.sent_hooks.append(on_sent)
            return
        self.held.append(data)
        if on_sent is not None:
            self.held_hooks.append(on_sent)
        self._tick_later()

    def _tick_later(self) -> None:
        """The listener's poll times out every event_pace seconds, counted from
        its start: what is held then goes out (not while it is busy)."""
        pace = self.sim.event_pace
        if self.tick_pending or pace <= 0:
            return
        self.tick_pending = True
        now = time.monotonic()
        gevent.spawn_later(self.t0 + (int((now - self.t0) / pace) + 1) * pace - now, self._tick)

    def wake_later(self, inbox) -> None:
        """Wake a static session's listener at its next tick (at once without a pace)."""
        pace = self.sim.event_pace
        if pace <= 0:
            inbox.put("wake")
            return
        now = time.monotonic()
        gevent.spawn_later(self.t0 + (int((now - self.t0) / pace) + 1) * pace - now, inbox.put, "wake")

    def _tick(self) -> None:
        self.tick_pending = False
        if self.hold:
            return  # the command being handled flushes when it is done
        self.flush()

    def flush(self) -> None:
        """read_packet with no input pending: the whole event queue goes out."""
        if not self.held or self.closed:
            self.held.clear()
            self.held_hooks.clear()
            return
        self.out.put(b"".join(self.held))
        self.held.clear()
        if self.held_hooks:
            self.sent_hooks.extend(self.held_hooks)
            self.held_hooks.clear()

    def close(self, notice: bytes | None = None) -> None:
        if self.closed:
            return
        self.flush()  # read_packet sends the queued events before it sees the end
        if notice:
            self.out.put(notice)
        self.closed = True
        self.out.put(None)
        self.sim.connections.discard(self)
        self.sim.inbound.discard(self)

    def goodbye(self) -> bytes:
        return wire.disconnect_notice(GOODBYE, self.channel.uuid if self.channel is not None else None)

    def _close_socket(self) -> None:
        self.closed = True
        self.sim.connections.discard(self)
        self.sim.inbound.discard(self)
        try:
            # shutdown first: the reader's makefile() keeps the descriptor open,
            # and a close() alone would never send the FIN FreeSWITCH sends.
            self.sock.shutdown(2)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def wants(self, name: str, channel: Channel, extra=()) -> bool:
        """Decided from the channel itself, so no header list is built for nobody."""
        if self.myevents:
            return channel is self.channel and name not in self.nixed
        if not (self.all_events or name in self.events):
            return False
        if not self.filters:
            return True
        return _filters_pass(self.filters, lambda header: _filter_value(header, name, channel, extra))

    # -- the command loop ------------------------------------------------------------
    def serve(self) -> None:
        if not self.authed:
            self.send(wire.auth_request())
        self.command_loop(wire.CommandReader(self.sock.makefile("rb")))
        self.close()
        # What was queued (a refused auth's "-ERR invalid" and the notice) goes
        # out before the server closes the socket behind our back, as FreeSWITCH's does.
        self.writer.join(timeout=2)

    def command_loop(self, reader: wire.CommandReader) -> None:
        while not self.closed:
            try:
                cmd = reader.read()
            except OSError:
                cmd = None
            if cmd is None:
                break
            self.take(cmd)
            # The listener's next read_packet: nothing more to read yet (the next
            # command, if one is buffered, is read without a pause), so the event
            # queue goes out behind the reply.
            self.flush()

    def take(self, cmd: wire.Command) -> None:
        """One command read from the client: read as the listener reads it, counted, then handled."""
        self._read_header_block(cmd.header_bytes)
        if self.sim.record:
            self.sim.commands.append((self.id, cmd[0]))
        line, headers, body = cmd
        self.sim.bytes_received += len(line) + len(body) + sum(len(k) + len(v) + 3 for k, v in headers.items()) + 2
        self.handle(*cmd)

    def _read_header_block(self, size: int) -> None:
        """mod_event_socket's read_packet takes a command's header block one byte
        per recv(), each followed by a sched_yield(), and its body in one recv():
        the listener's thread (the channel's own, in a static session) is busy
        for Simulator.header_byte_cost per header byte before it handles the
        command. A sleep overshoots (the loop's timers have a millisecond's
        grain, a command's cost is a fraction of one): for a command that was
        already waiting when the last one's reading was done, the time overslept
        counts as reading done (`read_until` left behind, up to 2 ms), so a
        listener kept busy reads at the modelled pace, not at one command a
        millisecond; one that waited starts afresh."""
        cost = size * self.sim.header_byte_cost
        if cost <= 0:
            return
        self.sim.read_seconds += cost
        now = time.monotonic()
        if now - self.read_done > 0.0005:
            self.read_until = now  # idle meanwhile: nothing to carry
        self.read_until = max(self.read_until, now - 0.002) + cost
        if self.read_until > now:
            gevent.sleep(self.read_until - now)
        self.read_done = time.monotonic()

    def handle(self, line: str, headers: dict, body: str) -> None:
        verb, _, rest = line.partition(" ")
        if not self.authed:
            if verb == "auth" and rest == self.sim.password:
                self.authed = True
                self.send(wire.command_reply("+OK accepted"))
            elif verb == "auth":
                self.send(wire.command_reply("-ERR invalid"))
                self.close(self.goodbye())
            else:
                self.send(wire.command_reply("-ERR command not found"))
            return
        if verb == "event":
            fmt, _, names = rest.partition(" ")
            for n in names.split():
                if n == "ALL":
                    self.all_events = True
                else:
                    self.events.add(n)
            self.send(wire.command_reply(f"+OK event listener enabled {fmt}"))
        elif verb == "filter":
            header, _, value = rest.partition(" ")
            self.filters.append((header, value))
            self.send(wire.command_reply(f"+OK filter added. [{header}]=[{value}]"))
        elif verb == "api":
            self.send(wire.api_response(self.sim.api(rest)))
        elif verb == "bgapi":
            job = str(uuidlib.uuid4())
            self.send(wire.command_reply(f"+OK Job-UUID: {job}"))
            result = self.sim.api(rest)
            if self.all_events or "BACKGROUND_JOB" in self.events:
                self.send_event(wire.event_plain(self.sim.base_headers(
                    "BACKGROUND_JOB", "mod_event_socket.c", "api_exec", "1572") +
                    [("Job-UUID", job), ("Job-Command", rest.partition(" ")[0]), ("Job-Result", result)]))
        elif verb == "sendmsg":
            self.send(wire.command_reply(self.sim.sendmsg(self, rest.strip(), headers, body)))
        elif verb == "myevents":
            self.myevents = True
            self.send(wire.command_reply("+OK Events Enabled"))
        elif verb == "nixevent":
            # mod_event_socket: takes the named types out of the subscription
            # (myevents' list too), "-ERR no keywords supplied" without one.
            names = rest.split()
            if not names:
                self.send(wire.command_reply("-ERR no keywords supplied"))
                return
            self.nixed.update(names)
            self.events.difference_update(names)
            self.send(wire.command_reply("+OK events nixed"))
        elif verb == "linger":
            # mod_event_socket: a number of seconds, or -1 (forever) without one.
            seconds = rest.strip()
            self.linger = int(seconds) if seconds.lstrip("-").isdigit() else -1
            self.send(wire.command_reply(f"+OK will linger {self.linger} seconds" if self.linger != -1
                                         else "+OK will linger"))
        elif verb == "nolinger":
            self.linger = None
            self.send(wire.command_reply("+OK will not linger"))
        elif verb in ("exit", "quit"):
            self.send(wire.command_reply("+OK bye"))
            self.close(self.goodbye())
        elif verb == "noevents":
            self.events.clear()
            self.all_events = False
            self.myevents = False  # mod_event_socket clears LFLAG_EVENTS: nothing more is sent
            self.send(wire.command_reply("+OK no longer listening for events"))
        else:
            self.send(wire.command_reply("-ERR command not found"))


