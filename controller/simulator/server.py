"""The simulator: its channels, the Event Socket server, and the `socket` application.

A client connection is `connection.Connection`; the `api` commands are in `api`."""

from __future__ import annotations

import itertools
import logging
import time
import uuid as uuidlib

import gevent
import gevent.socket
from gevent.queue import Queue
from gevent.server import StreamServer

from controller.simulator import api, wire
from controller.simulator.callers import Caller
from controller.simulator.channel import Channel
from controller.simulator.connection import Connection, connect_to
from controller.simulator.node import NodeConfig

log = logging.getLogger("tollgate.simulator")

CORE_UUID = "2b88d2b3-7ad5-4cd0-bab1-d702c158cd3c"


def switch_true(value: str) -> bool:
    """FreeSWITCH's switch_true(): what a header such as event-lock counts as on."""
    return value.strip().lower() in ("yes", "on", "true", "t", "enabled", "active", "allow") or \
        (value.strip().isdigit() and int(value) != 0)


def execute_request(ch: Channel, headers: dict, body: str) -> tuple[str, str, str, bool]:
    """A sendmsg execute as switch_ivr_parse_event reads it: (application,
    argument, Event-UUID, event-lock). The argument is the execute-app-arg
    header, else the message's body when its content-type is text/plain (a body
    of another type is no argument). The first bridge asked for is stamped
    (ch.t_bridge)."""
    app = headers.get("execute-app-name", "")
    if app == "bridge" and ch.t_bridge is None:
        ch.t_bridge = time.perf_counter()
    arg = headers.get("execute-app-arg", "")
    if not arg and headers.get("content-type", "").lower() == "text/plain":
        arg = body
    return app, arg, headers.get("event-uuid", str(uuidlib.uuid4())), switch_true(headers.get("event-lock", ""))


class Simulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon",
                 scale: float = 0.01, record: bool = True, node: NodeConfig | None = None,
                 park_pace: float = 0.020, event_pace: float = 0.020, header_byte_cost: float = 1.35e-6):
        self.host, self.port, self.password = host, port, password
        self.node = node or NodeConfig()  # what `tollgate doctor` asks about
        self.scale = scale  # simulated seconds -> real seconds (prompts, timeouts, ringing)
        # The real switch's own clocks, in real seconds (never scaled; 0: off):
        # park_pace, the park loop's switch_yield(20000) on a channel without
        # media (a queued message waits for its next tick); event_pace,
        # mod_event_socket's read_packet poll (20 ms): a client's events go out
        # on that tick, or once a command of its has been handled.
        self.park_pace = park_pace
        self.event_pace = event_pace
        # header_byte_cost, real seconds mod_event_socket's listener spends per
        # byte of a command's header block (read one recv() and one sched_yield()
        # at a time; a body in one recv()): 1.35 µs measured on an idle 1.10.12
        # (docs/performance.md). read_seconds adds it up.
        self.header_byte_cost = header_byte_cost
        self.read_seconds = 0.0
        self.connect_wait = 25.0  # real seconds a socket session waits for `connect` (mod_event_socket)
        self.record = record
        self.channels: dict[str, Channel] = {}
        # Socket-mode channels that hung up while their session lingers: FreeSWITCH
        # keeps them (CS_DESTROY, counted by `show channels count`) until the
        # client closes the connection or the linger time passes.
        self.lingering: dict[str, Channel] = {}
        self.finished: list[Channel] = []
        self.connections: set[Connection] = set()
        self.inbound: set[Connection] = set()  # event-socket clients (not socket-app sessions)
        self.commands: list[tuple[int, str]] = []
        self.played: list[tuple[str, str]] = []
        self.bridges: list[tuple[str, str]] = []
        self.transfers: list[tuple[str, str]] = []
        self.scheduled_hangups: list[tuple[str, float, str]] = []  # (uuid, seconds, cause)
        self.sequence = itertools.count(1000)
        self.hash_db: dict[tuple[str, str], str] = {}
        self.sched_groups: dict[str, list] = {}  # sched_api's tasks by group (sched_del deletes a group)
        self.task_ids = itertools.count(1)
        self.bytes_sent = 0  # Event Socket bytes to clients (events, replies): the benchmark's cost per call
        self.bytes_received = 0  # ... and commands from them (their text, headers and body)
        self._dates: tuple[int, str, str] = (-1, "", "")
        self.server: StreamServer | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> "Simulator":
        self.server = StreamServer((self.host, self.port), self._accept)
        self.server.start()
        self.port = self.server.server_port
        return self

    def stop(self) -> None:
        for conn in list(self.connections):
            conn.close(wire.disconnect_notice("The system is being shut down.\n"))
        if self.server:
            self.server.stop(timeout=1)

    def _accept(self, sock, _addr) -> None:
        conn = Connection(self, sock)
        self.connections.add(conn)
        self.inbound.add(conn)
        try:
            conn.serve()
        finally:
            self.inbound.discard(conn)

    def drop_connections(self, notice: bool = False) -> int:
        """Cut every inbound client (as a network failure would, or with a shutdown notice)."""
        dropped = 0
        for conn in list(self.connections):
            if conn.channel is None:
                dropped += 1
                if notice:
                    conn.close(wire.disconnect_notice("The system is being shut down.\n"))
                else:
                    conn.closed = True
                    self.connections.discard(conn)
                    self.inbound.discard(conn)
                    try:
                        conn.sock.shutdown(2)
                    except OSError:
                        pass
                    conn.sock.close()
        return dropped

    def inject(self, raw: bytes) -> int:
        """Send raw bytes to every inbound client (malformed-input tests)."""
        sent = 0
        for conn in list(self.connections):
            if conn.channel is None and conn.authed:
                conn.send(raw)
                sent += 1
        return sent

    def inbound_clients(self) -> int:
        """Inbound clients that are authenticated and take parks (a controller's
        connection for the ends of its calls does not count)."""
        return sum(1 for c in self.connections
                   if c.channel is None and c.authed and (c.all_events or "CHANNEL_PARK" in c.events))

    def ends_clients(self) -> int:
        """Inbound clients subscribed to CHANNEL_HANGUP_COMPLETE only (controller.call.ends)."""
        return sum(1 for c in self.connections
                   if c.channel is None and c.authed and c.events == {"CHANNEL_HANGUP_COMPLETE"})

    # -- calls -----------------------------------------------------------------------
    def place_call(self, dialed: str, *, caller_id: str = "1001", caller_name: str = "Alice",
                   tenant: str = "acme", extension: str | None = None, user: str | None = None,
                   source: str = "", unattended: str = "", caller: Caller | None = None,
                   managed: bool = True, mode: str = "inbound", socket_address=None,
                   socket_args: str = "full", before_socket: list[tuple[str, str]] | None = None,
                   variables: dict[str, str] | None = None) -> Channel:
        """A call leaving the PBX, as freeswitch-conf's dialplan hands it over.

        user: the directory user sofia authenticated (digest or ACL): None, a
        registered phone presenting its own number (the caller ID); "" for a
        channel nobody authenticated (a public profile, a trunk). caller_id is
        what the caller presents, whatever it is. extension: what the dialplan
        puts in tollgate_extension, if not `${user_name}`. source: the trusted
        gateway name the dialplan sets for calls from a trunk. socket_args:
        the `socket` application's arguments after the address, in socket mode:
        "full" (static, freeswitch-conf's: the listener runs in the channel's
        thread and runs each command there and then) or "async full" (the
        session's commands are queued, the call parks). before_socket: the
        applications the dialplan runs right before `socket` (its bound).
        """
        user = caller_id if user is None else user
        channel_vars = {"domain_name": tenant, "sip_from_user": caller_id, "sip_from_host": tenant}
        if user:
            # What sofia_reg_parse_auth puts on an authenticated INVITE's channel.
            channel_vars.update(sip_authorized="true", user_name=user, sip_auth_username=user,
                                sip_auth_realm=tenant, number_alias=user)
        dialplan = {}
        if managed:
            dialplan = {"tollgate_tenant": tenant, "tollgate_dialed": dialed}
            if extension is not None or user:
                # tollgate_extension=${user_name}, set only for an authenticated call.
                dialplan["tollgate_extension"] = extension if extension is not None else user
            if source:
                dialplan["tollgate_source"] = source
        if unattended and managed:
            dialplan["tollgate_unattended"] = unattended
            if unattended == "forward":
                channel_vars["sip_h_Diversion"] = f"<sip:{extension}@{tenant}>;reason=unconditional"
        dialplan.update(variables or {})
        if managed:
            # Last, as freeswitch-conf's dialplan does: the controller's filter
            # lets no event of this channel through before it.
            dialplan["tollgate_managed"] = dialplan.pop("tollgate_managed", "true")
        ch = Channel(self, dialed=dialed, caller_id=caller_id, caller_name=caller_name, context="tollgate",
                     variables=dialplan, caller=caller or Caller(), mode=mode, socket_address=socket_address,
                     socket_args=socket_args, before_socket=before_socket)
        if unattended == "transfer":
            # switch_ivr_session_transfer: "<epoch>:<uuid>:bl_xfer:<dest>/<context>/<dialplan>"
            channel_vars["transfer_source"] = f"{int(time.time())}:{ch.uuid}:bl_xfer:{dialed}/default/XML"
        ch.vars.update(channel_vars)  # the caller's directory domain is the tenant
        self.channels[ch.uuid] = ch
        ch.greenlet = gevent.spawn(ch.run)
        return ch

    def ended(self, ch: Channel) -> None:
        self.channels.pop(ch.uuid, None)
        if self.record:
            self.finished.append(ch)
        if ch.socket_conn is not None:
            self.socket_session_ended(ch)

    def scheduled_hangup(self, uuid: str, cause: str) -> None:
        """A sched_hangup's time has come: the channel, if it is still up, hangs up."""
        ch = self.channels.get(uuid)
        if ch is not None:
            ch.hangup(cause)

    def live(self) -> list[Channel]:
        """Every channel FreeSWITCH still holds, lingering ones included."""
        return [*self.channels.values(), *self.lingering.values()]

    def parked(self) -> list[Channel]:
        """Channels sitting in park with nothing running: what must never stay."""
        return [c for c in self.channels.values() if c.parked and c.application == "park" and c.queue.empty()]

    # -- events ------------------------------------------------------------------------
    def base_headers(self, name: str, f: str, fn: str, line: str) -> list[tuple[str, str]]:
        now = time.time()
        second = int(now)
        if self._dates[0] != second:  # the formatted dates change once a second
            self._dates = (second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
                           time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)))
        return [("Event-Name", name), ("Core-UUID", CORE_UUID), ("FreeSWITCH-Hostname", "sim"),
                ("FreeSWITCH-Switchname", "sim"), ("FreeSWITCH-IPv4", "127.0.0.1"), ("FreeSWITCH-IPv6", "::1"),
                ("Event-Date-Local", self._dates[1]), ("Event-Date-GMT", self._dates[2]),
                ("Event-Date-Timestamp", str(int(now * 1_000_000))), ("Event-Calling-File", f),
                ("Event-Calling-Function", fn), ("Event-Calling-Line-Number", line),
                ("Event-Sequence", str(next(self.sequence)))]

    def publish(self, channel: Channel, name: str, extra=(), with_vars: bool = True) -> None:
        frame = None
        # The benchmark's latency starts when CHANNEL_PARK is written to the
        # socket, not when it is queued for the listener: the pace is the
        # switch's, not the controller's.
        hook = channel.park_written if name == "CHANNEL_PARK" else None
        # Inbound clients, and this channel's own socket session: a socket session
        # (myevents) never wants another channel's events. (Nothing here yields,
        # so the set cannot change while it is walked.)
        for conn in self.inbound:
            if conn.authed and not conn.closed and conn.wants(name, channel, extra):
                if frame is None:
                    frame = wire.event_plain(channel.headers(name, extra, with_vars))
                conn.send_event(frame, hook)
                channel.delivered.append(name)
        conn = channel.socket_conn
        if conn is not None and conn.authed and not conn.closed and conn.wants(name, channel, extra):
            conn.send_event(frame or wire.event_plain(channel.headers(name, extra, with_vars)), hook)
            channel.delivered.append(name)

    # -- commands ----------------------------------------------------------------------
    def sendmsg(self, conn: Connection, target: str, headers: dict, body: str) -> str:
        ch = conn.channel if not target and conn.channel else self.channels.get(target)
        command = headers.get("call-command", "")
        if ch is not None and ch is conn.channel and conn.static and not switch_true(headers.get("async", "")):
            return self._sendmsg_static(ch, conn, command, headers, body)
        if ch is None or ch.state == "hangup":
            return f"-ERR invalid session id [{target}]"
        if command == "execute":
            app, arg, event_uuid, lock = execute_request(ch, headers, body)
            if not ch.enqueue(app, arg, event_uuid, conn.id, lock=lock):
                return f"-ERR invalid session id [{target}]"
            return "+OK"
        if command == "hangup":
            # Queued too (mod_event_socket queues every sendmsg): behind an
            # event-locked application it waits for that application to end.
            ch.enqueue_hangup(headers.get("hangup-cause", "NORMAL_CLEARING"))
            return "+OK"
        return "-ERR unknown call-command"

    def _sendmsg_static(self, ch: Channel, conn: Connection, command: str, headers: dict, body: str) -> str:
        """A static socket session's own sendmsg (mod_event_socket's parse_command
        without LFLAG_ASYNC nor an `async: true` header): switch_ivr_parse_event
        there and then, in the channel's thread; the +OK goes out when the
        application returns. No queue, no park: park_timeout plays no part."""
        if command == "execute":
            app, arg, event_uuid, lock = execute_request(ch, headers, body)
            ch.execute_now(app, arg, event_uuid, conn.id, lock=lock)
            return "+OK"
        if command == "hangup":
            ch.hangup(headers.get("hangup-cause", "NORMAL_CLEARING"))
            return "+OK"
        return "-ERR unknown call-command"

    def api(self, line: str) -> str:
        return api.run(self, line)

    # -- the socket application ------------------------------------------------------------
    def connect_socket(self, ch: Channel) -> bool | None:
        """What `socket HOST:PORT [async] [full]` does: connect, then take commands
        for this channel. None: nobody listens. False: connected, but no `connect`
        came within mod_event_socket's wait (read_packet's 25 s): "Socket Error!",
        and the caller parks the channel anyway (async, as socket_function does)
        or goes on with the dialplan (static). Async, the session is served by a
        listener of its own (here, a greenlet); static, the caller serves it
        itself (serve_static), in the channel's own thread."""
        try:
            sock = connect_to(ch.socket_address, timeout=2)
        except OSError as exc:
            log.warning("socket application could not connect to %s: %s", ch.socket_address, exc)
            return None
        sock.settimeout(self.connect_wait)
        conn = Connection(self, sock, channel=ch)
        args = ch.socket_args.lower().split()
        conn.static = "async" not in args
        conn.full = "full" in args
        self.connections.add(conn)
        ch.socket_conn = conn
        reader = wire.CommandReader(sock.makefile("rb"))
        try:
            first = reader.read()
        except OSError:
            first = None  # the controller went away mid-handshake, or never spoke
        sock.settimeout(None)
        if not first or first[0] != "connect":
            log.warning("socket application: Socket Error! (no connect from %s)", ch.socket_address)
            ch.socket_conn = None
            conn.close()
            return False
        # The connect reply is the whole channel as headers (fixture 07), no body.
        data = [(k, wire.fs_encode(v)) for k, v in ch.headers("CHANNEL_DATA")]
        ch.t_park = time.perf_counter()  # socket mode's "park": the call is handed over
        conn.send(self._connect_reply(data, conn))
        if conn.static:
            ch.t_park_start = ch.t_park  # no park: the call is the controller's from here
            conn.reader = reader
        else:
            gevent.spawn(self._serve_socket, conn, reader, ch)
        return True

    @staticmethod
    def _connect_reply(data, conn: Connection) -> bytes:
        lines = [f"{k}: {v}" for k, v in data]
        lines += ["Content-Type: command/reply", "Reply-Text: %2BOK%0A",
                  f"Socket-Mode: {'static' if conn.static else 'async'}",
                  f"Control: {'full' if conn.full else 'single-channel'}"]
        return ("\n".join(lines) + "\n\n").encode("utf-8")

    def serve_static(self, ch: Channel) -> None:
        """listener_run in the channel's own thread (the socket application
        without `async`): read a command, handle it (an execute runs there and
        then, its +OK after it returns), then, with no input pending, send the
        event queue; while a command is handled nothing is read (later commands,
        api included, wait behind it) and no event goes out. The channel's
        hangup is seen at the listener's next wake: the linger notice and, with
        `linger`, the session stays until the client closes or the linger time
        passes; without it, goodbye. Returns when the session ends: the socket
        application returns and the dialplan goes on."""
        conn = ch.socket_conn
        reader = conn.reader
        inbox: Queue = Queue()  # what the listener's read_packet would find: commands, wakes, the end
        ch.listener_inbox = inbox

        def read() -> None:
            while True:
                try:
                    cmd = reader.read()
                except OSError:
                    cmd = None
                inbox.put(cmd)
                if cmd is None:
                    return

        reading = gevent.spawn(read)
        disco = False
        try:
            while not conn.closed:
                item = inbox.get()
                if item is None:
                    break  # the client closed the socket
                if item == "linger over":
                    break
                if item != "wake":
                    conn.hold += 1
                    try:
                        conn.take(item)
                    finally:
                        conn.hold -= 1
                    if conn.closed:
                        break  # exit
                if inbox.empty():
                    conn.flush()
                if ch.state == "hangup" and not disco:
                    disco = True
                    if conn.linger is None:
                        break
                    conn.flush()
                    conn.send(wire.linger_notice(ch.uuid, ch.name, conn.linger))
                    if conn.linger > 0:
                        gevent.spawn_later(conn.linger, inbox.put, "linger over")
        finally:
            ch.listener_inbox = None
            reading.kill(block=False)
            conn.close(conn.goodbye())  # listener_run's end: send_disconnect
            self.connections.discard(conn)

    def _serve_socket(self, conn: Connection, reader, ch: Channel) -> None:
        conn.command_loop(reader)
        conn.closed = True
        self.connections.discard(conn)
        self.lingering.pop(ch.uuid, None)  # the client closed: FreeSWITCH lets the session go
        ch.queue.put(None)  # the socket application returns; the dialplan goes on to `hangup`

    def socket_session_ended(self, ch: Channel) -> None:
        """The session's channel hung up (mod_event_socket's read_packet sees it down).
        Without `linger` FreeSWITCH says goodbye and closes at once. With it, it
        sends the linger notice and keeps the session, with the channel, until the
        client closes, or until the linger time passes (never for plain `linger`)."""
        conn = ch.socket_conn
        if not conn or conn.closed:
            return
        if conn.linger is None:
            conn.close(conn.goodbye())
            return
        # At the listener's next wake, behind the events it has queued (read_packet
        # sends its event queue, then sees the channel down).
        conn.send_event(wire.linger_notice(ch.uuid, ch.name, conn.linger))
        self.lingering[ch.uuid] = ch
        if conn.linger > 0:
            gevent.spawn_later(conn.linger, self._linger_over, conn, ch)

    def _linger_over(self, conn: Connection, ch: Channel) -> None:
        self.lingering.pop(ch.uuid, None)
        conn.close(conn.goodbye())
