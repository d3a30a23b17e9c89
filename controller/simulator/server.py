"""The simulator's Event Socket server, its API commands and the `socket` application."""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid as uuidlib

import gevent
import gevent.socket
from gevent.queue import Queue
from gevent.server import StreamServer

from controller.simulator import wire
from controller.simulator.callers import Caller
from controller.simulator.channel import Channel

log = logging.getLogger("tollgate.simulator")

CORE_UUID = "2b88d2b3-7ad5-4cd0-bab1-d702c158cd3c"
GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"


def _filter_value(header: str, name: str, channel: Channel) -> str | None:
    if header == "Event-Name":
        return name
    if header == "Unique-ID":
        return channel.uuid
    if header.startswith("variable_"):
        # DTMF events carry no variables (so a variable filter drops them).
        return None if name == "DTMF" else channel.vars.get(header[9:])
    return None


def _connect(address, timeout: float):
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

    def __init__(self, sim: "Simulator", sock, channel: Channel | None = None):
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
        self.out: Queue = Queue()
        self.closed = False
        self.writer = gevent.spawn(self._write)

    def _write(self) -> None:
        out = self.out
        while True:
            data = out.get()
            if data is None:
                break
            if not out.empty():  # what queued up meanwhile goes in the same write
                parts = [data]
                while not out.empty() and out.peek() is not None:
                    parts.append(out.get())
                data = b"".join(parts)
            try:
                self.sock.sendall(data)
            except OSError:
                break
        self._close_socket()

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.out.put(data)

    def close(self, notice: bytes | None = None) -> None:
        if self.closed:
            return
        if notice:
            self.out.put(notice)
        self.closed = True
        self.out.put(None)
        self.sim.connections.discard(self)
        self.sim.inbound.discard(self)

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

    def wants(self, name: str, channel: Channel) -> bool:
        """Decided from the channel itself, so no header list is built for nobody."""
        if self.myevents:
            return channel is self.channel
        if not (self.all_events or name in self.events):
            return False
        if not self.filters:
            return True
        return any(_filter_value(h, name, channel) == v for h, v in self.filters)

    # -- the command loop ------------------------------------------------------------
    def serve(self) -> None:
        if not self.authed:
            self.send(wire.auth_request())
        self.command_loop(wire.CommandReader(self.sock.makefile("rb")))
        self.close()

    def command_loop(self, reader: wire.CommandReader) -> None:
        while not self.closed:
            try:
                cmd = reader.read()
            except OSError:
                cmd = None
            if cmd is None:
                break
            if self.sim.record:
                self.sim.commands.append((self.id, cmd[0]))
            self.handle(*cmd)

    def handle(self, line: str, headers: dict, body: str) -> None:
        verb, _, rest = line.partition(" ")
        if not self.authed:
            if verb == "auth" and rest == self.sim.password:
                self.authed = True
                self.send(wire.command_reply("+OK accepted"))
            elif verb == "auth":
                self.send(wire.command_reply("-ERR invalid"))
                self.close(wire.disconnect_notice(GOODBYE))
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
                self.send(wire.event_plain(self.sim.base_headers(
                    "BACKGROUND_JOB", "mod_event_socket.c", "api_exec", "1572") +
                    [("Job-UUID", job), ("Job-Command", rest.partition(" ")[0]), ("Job-Result", result)]))
        elif verb == "sendmsg":
            self.send(wire.command_reply(self.sim.sendmsg(self, rest.strip(), headers, body)))
        elif verb == "myevents":
            self.myevents = True
            self.send(wire.command_reply("+OK Events Enabled"))
        elif verb == "linger":
            self.send(wire.command_reply("+OK will linger"))
        elif verb in ("exit", "quit"):
            self.send(wire.command_reply("+OK bye"))
            self.close(wire.disconnect_notice(GOODBYE))
        elif verb == "noevents":
            self.events.clear()
            self.all_events = False
            self.send(wire.command_reply("+OK no longer listening for events"))
        else:
            self.send(wire.command_reply("-ERR command not found"))


class Simulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, password: str = "ClueCon",
                 scale: float = 0.01, record: bool = True):
        self.host, self.port, self.password = host, port, password
        self.scale = scale  # simulated seconds -> real seconds (prompts, timeouts, ringing)
        self.record = record
        self.channels: dict[str, Channel] = {}
        self.finished: list[Channel] = []
        self.connections: set[Connection] = set()
        self.inbound: set[Connection] = set()  # event-socket clients (not socket-app sessions)
        self.commands: list[tuple[int, str]] = []
        self.played: list[tuple[str, str]] = []
        self.bridges: list[tuple[str, str]] = []
        self.transfers: list[tuple[str, str]] = []
        self.sequence = itertools.count(1000)
        self.hash_db: dict[tuple[str, str], str] = {}
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
        """Inbound clients that are authenticated and subscribed to events."""
        return sum(1 for c in self.connections if c.channel is None and c.authed and (c.events or c.all_events))

    # -- calls -----------------------------------------------------------------------
    def place_call(self, dialed: str, *, caller_id: str = "1001", caller_name: str = "Alice",
                   tenant: str = "acme", extension: str | None = None, user: str | None = None,
                   source: str = "", caller: Caller | None = None,
                   managed: bool = True, mode: str = "inbound", socket_address=None,
                   variables: dict[str, str] | None = None) -> Channel:
        """A call leaving the PBX, as freeswitch-conf's dialplan hands it over.

        user: the directory user sofia authenticated (digest or ACL): None, a
        registered phone presenting its own number (the caller ID); "" for a
        channel nobody authenticated (a public profile, a trunk). caller_id is
        what the caller presents, whatever it is. extension: what the dialplan
        puts in tollgate_extension, if not `${user_name}`. source: the trusted
        gateway name the dialplan sets for calls from a trunk.
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
        dialplan.update(variables or {})
        if managed:
            # Last, as freeswitch-conf's dialplan does: the controller's filter
            # lets no event of this channel through before it.
            dialplan["tollgate_managed"] = dialplan.pop("tollgate_managed", "true")
        ch = Channel(self, dialed=dialed, caller_id=caller_id, caller_name=caller_name, context="tollgate",
                     variables=dialplan, caller=caller or Caller(), mode=mode, socket_address=socket_address)
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

    def live(self) -> list[Channel]:
        return list(self.channels.values())

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
        # Inbound clients, and this channel's own socket session: a socket session
        # (myevents) never wants another channel's events. (Nothing here yields,
        # so the set cannot change while it is walked.)
        for conn in self.inbound:
            if conn.authed and not conn.closed and conn.wants(name, channel):
                if frame is None:
                    frame = wire.event_plain(channel.headers(name, extra, with_vars))
                conn.send(frame)
                channel.delivered.append(name)
        conn = channel.socket_conn
        if conn is not None and conn.authed and not conn.closed and conn.wants(name, channel):
            conn.send(frame or wire.event_plain(channel.headers(name, extra, with_vars)))
            channel.delivered.append(name)

    # -- commands ----------------------------------------------------------------------
    def sendmsg(self, conn: Connection, target: str, headers: dict, body: str) -> str:
        ch = conn.channel if not target and conn.channel else self.channels.get(target)
        if ch is None or ch.state == "hangup":
            return f"-ERR invalid session id [{target}]"
        command = headers.get("call-command", "")
        if command == "execute":
            app = headers.get("execute-app-name", "")
            if app == "bridge" and ch.t_bridge is None:
                ch.t_bridge = time.perf_counter()
            arg = headers.get("execute-app-arg", "") or body.strip()
            if not ch.enqueue(app, arg, headers.get("event-uuid", str(uuidlib.uuid4())), conn.id):
                return f"-ERR invalid session id [{target}]"
            return "+OK"
        if command == "hangup":
            gevent.spawn(ch.hangup, headers.get("hangup-cause", "NORMAL_CLEARING"))
            return "+OK"
        return "-ERR unknown call-command"

    def api(self, line: str) -> str:
        parts = line.split()
        if not parts:
            return "-ERR no command\n"
        cmd, args = parts[0], parts[1:]
        ch = self.channels.get(args[0]) if args else None
        if cmd == "uuid_exists":
            return "true" if ch else "false"
        if cmd == "uuid_getvar":
            if not ch:
                return "-ERR No such channel!\n"
            return ch.vars.get(args[1], "_undef_") if len(args) > 1 else "-ERR Usage\n"
        if cmd == "uuid_setvar":
            if not ch or len(args) < 2:
                return "-ERR No such channel!\n"
            if len(args) > 2:
                ch.vars[args[1]] = " ".join(args[2:])
            else:
                ch.vars.pop(args[1], None)  # no value: unset
            return "+OK"
        if cmd == "uuid_kill":
            if not ch:
                return "-ERR No such channel!\n"
            gevent.spawn(ch.hangup, args[1] if len(args) > 1 else "NORMAL_CLEARING")
            return "+OK\n"
        if cmd == "uuid_break":
            if not ch:
                return "-ERR No such channel!\n"
            ch.break_app()
            return "+OK"
        if cmd == "show" and args[:1] == ["channels"]:
            return self._show_channels(args[1:])
        if cmd == "hash" and args:
            return self._hash(args[0])
        if cmd == "status":
            return f"UP 0 years\n{len(self.channels)} session(s)\n"
        return f"-ERR {cmd} Command not found!\n"

    def _hash(self, spec: str) -> str:
        """mod_hash's api: insert / insert_ifempty / select / delete on realm/key[/value]."""
        op, _, rest = spec.partition("/")
        realm, _, rest = rest.partition("/")
        key, _, value = rest.partition("/")
        k = (realm, key)
        if op == "insert":
            self.hash_db[k] = value
            return "+OK\n"
        if op == "insert_ifempty":
            if k in self.hash_db:
                return "-ERR key already exists\n"
            self.hash_db[k] = value
            return "+OK\n"
        if op == "select":
            return self.hash_db.get(k, "")
        if op == "delete":
            return "+OK\n" if self.hash_db.pop(k, None) is not None else "-ERR Not found\n"
        return "-ERR Usage: hash [insert|insert_ifempty|select|delete]/realm/key[/value]\n"

    def _show_channels(self, args: list[str]) -> str:
        rows = [{
            "uuid": c.uuid, "direction": "inbound", "created": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                              time.localtime(c.created)),
            "created_epoch": str(int(c.created)), "name": c.name, "state": "CS_EXECUTE",
            "cid_name": c.caller_name, "cid_num": c.caller_id, "dest": c.dialed,
            "application": c.application, "application_data": c.application_data, "context": c.context,
            "callstate": {"ringing": "RINGING", "early": "EARLY", "answered": "ACTIVE"}.get(c.state, "HANGUP"),
            "call_uuid": c.uuid,
        } for c in self.channels.values() if c.state != "hangup"]
        if len(args) >= 2 and args[0] == "like":
            rows = [r for r in rows if args[1] in r["name"] or args[1] in r["uuid"]]
        if not rows:
            return '{"row_count":0}'
        return json.dumps({"row_count": len(rows), "rows": rows})

    # -- the socket application ------------------------------------------------------------
    def connect_socket(self, ch: Channel) -> bool:
        """What `socket HOST:PORT async full` does: connect, then take commands for this channel."""
        try:
            sock = _connect(ch.socket_address, timeout=2)
        except OSError as exc:
            log.warning("socket application could not connect to %s: %s", ch.socket_address, exc)
            return False
        sock.settimeout(None)
        conn = Connection(self, sock, channel=ch)
        self.connections.add(conn)
        ch.socket_conn = conn
        reader = wire.CommandReader(sock.makefile("rb"))
        try:
            first = reader.read()
        except OSError:
            first = None  # the controller went away mid-handshake: the socket app fails
        if not first or first[0] != "connect":
            conn.close()
            return False
        # The connect reply is the whole channel as headers (fixture 07), no body.
        data = [(k, wire.fs_encode(v)) for k, v in ch.headers("CHANNEL_DATA")]
        ch.t_park = time.perf_counter()  # socket mode's "park": the call is handed over
        conn.send(self._connect_reply(data))
        gevent.spawn(self._serve_socket, conn, reader, ch)
        return True

    @staticmethod
    def _connect_reply(data) -> bytes:
        lines = [f"{k}: {v}" for k, v in data]
        lines += ["Content-Type: command/reply", "Reply-Text: %2BOK%0A", "Socket-Mode: async", "Control: full"]
        return ("\n".join(lines) + "\n\n").encode("utf-8")

    def _serve_socket(self, conn: Connection, reader, ch: Channel) -> None:
        conn.command_loop(reader)
        conn.closed = True
        self.connections.discard(conn)
        ch.queue.put(None)  # the socket application returns; the dialplan goes on to `hangup`

    def socket_session_ended(self, ch: Channel) -> None:
        conn = ch.socket_conn
        if conn and not conn.closed:
            conn.close(wire.linger_notice(ch.uuid, ch.name))
