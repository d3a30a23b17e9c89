"""Composition root: wires store, policy services, dispatcher and transport.

`Controller` is what `tollgate run`, the demo, the tests and the benchmark
start; `serve_forever` adds signals and logging for the command line.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import secrets
import socket as pysocket
import time
from dataclasses import dataclass

import gevent
import gevent.event

from controller.freeswitch import commands

from controller.ops import logs
from controller.call.callflow import CallFlow
from controller.call.services import FlowConfig, Services
from controller.call.dispatcher import Dispatcher
from controller.errors import CommandFailed
from controller.call.ends import EndsFeed
from controller.freeswitch.esl import InboundConnection
from controller.freeswitch.esl_socket import SocketSession
from controller.freeswitch.socket_server import SocketServer
from controller.freeswitch.supervisor import Supervisor
from controller.freeswitch.events import Disconnected, MalformedEvent, channel_data, parse
from controller.ops.metrics import HealthServer, Metrics
from controller.ops.prompt_catalog import Catalog
from controller.call.session import CallSession
from controller.ops.alerts import AlertService
from controller.store import Store
from controller.store.calls import earlier_life
from controller.store.spool_file import SpoolFile

log = logging.getLogger("tollgate.app")

RECOVERY_INTERVAL = 30.0
RECOVERY_MIN_AGE = 2.0  # seconds: younger calls are still with whoever got their CHANNEL_PARK
SOCKET_LINGER_BOUND = 24 * 3600.0  # the longest call we keep a socket session for
RELEASE_BOUND = 2.0  # seconds a handed-over static session waits for FreeSWITCH to acknowledge it all


@dataclass
class Config:
    mode: str = "inbound"
    esl_host: str = "127.0.0.1"
    esl_port: int = 8021
    esl_password: str = "ClueCon"
    # Every FreeSWITCH node this controller serves, each on its own connection
    # (reconnecting on its own); empty: the one of esl_host and esl_port.
    esl_nodes: tuple[tuple[str, int], ...] = ()
    listen: tuple[str, int] = ("127.0.0.1", 8084)
    redis_url: str | None = None
    pepper: bytes = b""
    controller_id: str | None = None
    sound_root: str | None = None
    max_calls: int = 20000
    log_level: str = "info"
    log_format: str = "text"
    call_bound: float = 120.0
    shutdown_grace: float = 30.0
    esl_timeout: float = 5.0
    redis_timeout: float = 0.5
    recovery_interval: float = RECOVERY_INTERVAL
    metrics_address: tuple[str, int] | None = None  # off unless set
    heartbeat_interval: float = 2.0  # a controller silent for 3 of these is dead: its calls are taken over
    webhook_url: str = ""  # alerts are POSTed here as signed JSON (off unless set)
    webhook_secret: bytes = b""  # the HMAC-SHA256 key of the X-Tollgate-Signature header
    # Where the audit spool is kept on disk (controller.store.spool_file); None:
    # in memory only (the embedded store, tests and the benchmark's in-process controllers).
    state_dir: str | None = None

    @property
    def nodes(self) -> tuple[tuple[str, int], ...]:
        return tuple(self.esl_nodes) or ((self.esl_host, self.esl_port),)


class Controller:
    def __init__(self, cfg: Config, store: Store | None = None):
        self.cfg = cfg
        # The name operators give (or host:pid), and this process's life under it:
        # a controller restarted under the same name must not take its previous
        # life's calls for its own calls in progress (they would be stranded until
        # park_timeout); with the incarnation in its claims and owner marks it
        # recovers them at once (store.calls.earlier_life).
        self.name = cfg.controller_id or f"{pysocket.gethostname()}:{os.getpid()}"
        self.id = f"{self.name}~{secrets.token_hex(4)}"
        self.store = store or Store.open(cfg.redis_url, actor=f"controller:{self.name}", owner=self.id,
                                         timeout=cfg.redis_timeout)
        self.store.calls.owner = self.id  # a store handed in (the demo's) claims for this life too
        self.metrics = Metrics()
        self.svc = Services(store=self.store, pepper=cfg.pepper, catalog=Catalog(cfg.sound_root),
                            cfg=FlowConfig(controller_id=self.id, controller_name=self.name,
                                           call_bound=cfg.call_bound),
                            metrics=self.metrics)
        self.svc.alerts = AlertService(self.store, self.metrics, cfg.webhook_url, cfg.webhook_secret)
        self.metrics.in_progress.set_function(lambda: len(self.dispatcher.calls))
        self.metrics.spool.set_function(lambda: len(self.store.audit.spool))
        self.health: HealthServer | None = None
        self.dispatcher = Dispatcher(self.svc, cfg.max_calls)
        self.supervisors: list[Supervisor] = []  # one per FreeSWITCH node
        self.feeds: list[EndsFeed] = []
        self.server: SocketServer | None = None
        self._greenlets: list[gevent.Greenlet] = []
        self.stopped = gevent.event.Event()

    # -- start -------------------------------------------------------------------
    def start(self) -> None:
        if self.cfg.state_dir and self.cfg.redis_url:
            # Before any call: what a previous process left waiting goes out first.
            found = self.store.audit.attach(SpoolFile(self.cfg.state_dir, self.cfg.controller_id or "default"))
            log.info("audit spool kept in %s%s", self.store.audit.journal.path,
                     f" ({found} entries waiting from before: written when Redis answers)" if found else "")
        self.store.audit.start_batching()
        if self.store.calls.enable_script():
            log.info("Redis runs the one-command call load (Lua)")
        missing = self.svc.catalog.missing()
        if missing:
            log.warning("%d prompt files missing under %s (e.g. %s)", len(missing), self.svc.catalog.root, missing[0])
        if self.cfg.mode == "socket":
            host, port = self.cfg.listen
            self.server = SocketServer(host, port, self._socket_call, self.cfg.max_calls, self.cfg.esl_timeout)
            self._greenlets.append(gevent.spawn(self.server.serve))
        else:
            for host, port in self.cfg.nodes:
                sup = Supervisor(lambda h=host, p=port: self._make_connection(h, p), self._connected,
                                 self._disconnected)
                self.supervisors.append(sup)
                self._greenlets.append(gevent.spawn(sup.run))
                # The ends of its counted calls come on a second connection, read in batches.
                feed = EndsFeed(host, port, self.cfg.esl_password, self.name, self.svc.calls_ended,
                                timeout=self.cfg.esl_timeout, on_state=self._ends_state)
                self.feeds.append(feed)
                self._greenlets.append(gevent.spawn(feed.run))
            self._greenlets.append(gevent.spawn(self._recovery_loop))
        self._greenlets.append(gevent.spawn(self._flush_loop))
        self._greenlets.append(gevent.spawn(self._heartbeat_loop))
        if self.cfg.metrics_address:
            self.health = HealthServer(self.cfg.metrics_address, self.metrics, self.readiness)
            self.health.start()
            log.info("metrics and health on http://%s:%d/", self.cfg.metrics_address[0], self.health.port)
        log.info("controller %s started in %s mode (incarnation %s)", self.name, self.cfg.mode,
                 self.id.rpartition("~")[2])

    @property
    def supervisor(self) -> Supervisor | None:
        """The first node's (the only one, unless several are configured)."""
        return self.supervisors[0] if self.supervisors else None

    def _ends_state(self) -> None:
        self.metrics.esl_ends_connected.set(sum(1 for f in self.feeds if f.up.is_set()))

    def _make_connection(self, host: str, port: int) -> InboundConnection:
        return InboundConnection(host, port, self.cfg.esl_password, self.dispatcher.router(f"{host}:{port}"),
                                 timeout=self.cfg.esl_timeout)

    def _connected(self, conn: InboundConnection) -> None:
        self.dispatcher.transports[conn.node] = conn
        moved = self.dispatcher.rebind_all(conn)
        if moved:
            log.info("%d call(s) resume on the new Event Socket connection to %s", moved, conn.node)
        self.metrics.esl_connected.set(sum(1 for s in self.supervisors if s.up.is_set()))
        if any(s.current is conn and s.reconnects for s in self.supervisors):
            self.metrics.esl_reconnects.inc()
        gevent.spawn(self.recover, conn)
        # Calls parked just before we subscribed are too young for the first
        # scan (they might be another controller's): look again once they are not.
        gevent.spawn_later(RECOVERY_MIN_AGE + 0.5, lambda: conn.connected and self.recover(conn))

    def _disconnected(self, conn: InboundConnection) -> None:
        self.metrics.esl_connected.set(sum(1 for s in self.supervisors if s.up.is_set()))
        if self.dispatcher.transports.get(conn.node) is conn:
            del self.dispatcher.transports[conn.node]
        self.dispatcher.connection_lost(conn, "Event Socket connection lost")

    # -- recovery: managed channels still parked with nobody handling them --------
    def recover(self, conn: InboundConnection) -> int:
        """Start a flow for every managed call that sits in park (or in one of our
        prompts) with nobody alive handling it. The flow itself claims the call
        (or takes over a dead controller's claim) before touching it."""
        try:
            body = conn.api(commands.show_channels())
            rows = (json.loads(body).get("rows") or []) if body.lstrip().startswith("{") else []
        except (CommandFailed, ValueError, AttributeError) as exc:
            log.warning("recovery scan failed: %s", exc)
            return 0
        taken = 0
        now = time.time()
        for row in rows:
            uuid = str(row.get("uuid", ""))
            if not uuid or uuid in self.dispatcher.calls:
                continue
            app = row.get("application")
            if app not in ("park", "play_and_get_digits", "playback"):
                continue
            if now - float(row.get("created_epoch") or now) < RECOVERY_MIN_AGE:
                continue  # its CHANNEL_PARK is still being handled
            try:
                park = self._recoverable(conn, uuid, row)
            except (CommandFailed, MalformedEvent) as exc:
                log.warning("[%s] recovery skipped: %s", uuid, exc)
                continue
            if park is not None and uuid not in self.dispatcher.calls:
                log.info("[%s] recovering a managed call left in %s", uuid, app)
                self.dispatcher.start(park, conn, uuid, recovered=True, interrupt=app != "park")
                taken += 1
        return taken

    def _recoverable(self, conn: InboundConnection, uuid: str, row: dict):
        def var(name: str) -> str:
            value = conn.api(commands.uuid_getvar(uuid, name)).strip()
            return "" if value == "_undef_" or value.startswith("-ERR") else value

        if var("tollgate_managed") != "true":
            return None
        # Someone alive already has it: through Redis (tollgate_owner, set with
        # the verdict) or through FreeSWITCH (the claim of a controller without Redis).
        for where, owner in (("redis", var("tollgate_owner")),
                             ("freeswitch", conn.api(commands.fs_claim_owner(uuid)).strip())):
            if not owner or owner.startswith("-ERR"):
                continue
            if owner == self.id or owner == commands.fs_owner_id(self.id):
                return None  # ours: in progress, or finished and leaving
            if earlier_life(owner, commands.fs_owner_id(self.id)) and where == "freeswitch":
                # Decided by our previous life without Redis: its verdict waits in
                # the spool file, not in Redis, so a new decision would be a second
                # one. Left to finish as it is (park_timeout bounds it).
                return None
            if earlier_life(owner, self.id):
                continue  # ours before a restart: that process is gone
            try:
                if self.store.calls.alive(owner):
                    return None
            except Exception:  # noqa: BLE001 - without Redis nobody can tell: leave it
                return None
        headers = {"Unique-ID": uuid, "Caller-Caller-ID-Number": str(row.get("cid_num", "")),
                   "Caller-Destination-Number": str(row.get("dest", "")), "variable_tollgate_managed": "true",
                   "Answer-State": "answered" if row.get("callstate") == "ACTIVE" else "ringing"}
        for name in ("tollgate_tenant", "tollgate_dialed", "tollgate_extension", "tollgate_language",
                     "tollgate_country", "tollgate_source", "sip_authorized", "user_name",
                     "tollgate_unattended", "transfer_source", "sip_refer_to", "sip_h_Diversion", "sip_history_info"):
            value = var(name)
            if value:
                headers["variable_" + name] = value
        return channel_data(headers)

    def _recovery_loop(self) -> None:
        while not self.stopped.wait(self.cfg.recovery_interval):
            for sup in self.supervisors:
                conn = sup.current
                if conn and conn.connected:
                    self.recover(conn)

    def _heartbeat_loop(self) -> None:
        ttl = max(int(self.cfg.heartbeat_interval * 3 + 0.999), 1)
        while True:
            try:
                self.store.calls.heartbeat(ttl)
            except Exception as exc:  # noqa: BLE001 - Redis down: the next beat retries
                log.debug("heartbeat failed: %s", exc)
            if self.stopped.wait(self.cfg.heartbeat_interval):
                return

    def _flush_loop(self) -> None:
        while not self.stopped.wait(1.0):
            if self.store.audit.spool or self.store.audit.suspect:
                self.store.audit.flush()

    # -- socket mode: one connection per call --------------------------------------
    def _socket_call(self, sock: SocketSession) -> None:
        session = CallSession("", sock, None, pump=sock.pump)

        def route(headers: dict) -> None:
            try:
                event = parse(headers)
            except MalformedEvent as exc:
                log.warning("ignored malformed event: %s", exc)
                return
            if event is not None:
                session.deliver(event)

        def lost(reason: str) -> None:
            session.deliver(Disconnected(session.uuid, reason))

        try:
            park = channel_data(sock.start(route, lost))  # the ~90 channel headers are not kept
        except (CommandFailed, MalformedEvent) as exc:
            log.error("socket session failed before the call started: %s", exc)
            sock.close()
            return
        session.uuid = park.uuid
        if not park.managed or not self.dispatcher.accepting:
            log.error("[%s] socket session for a channel we must not take: hanging up", park.uuid)
            try:
                sock.send(commands.hangup_channel(park.uuid, "NORMAL_TEMPORARY_FAILURE"))
            except CommandFailed:
                pass
            sock.close()
            return
        self.dispatcher.calls[park.uuid] = session
        flow = CallFlow(session, park, self.svc)
        try:
            flow.run()
        finally:
            self.dispatcher.calls.pop(park.uuid, None)
        if sock.sync and flow.outcome == "transferred":
            # A static session runs inside the socket application: the transfer
            # (switch_ivr_session_transfer, state CS_ROUTING) takes effect only
            # once that application returns, which it does when we close.
            sock.close()
            return
        if sock.sync and flow.outcome == "bridge_sent" and not sock.following and sock.release(RELEASE_BOUND):
            return  # FreeSWITCH holds the whole handover and needs nothing more from us
        why = sock.drain(park.uuid, SOCKET_LINGER_BOUND)
        log.debug("[%s] socket session closed by us: %s", park.uuid, why)
        sock.close()

    # -- stop -------------------------------------------------------------------
    def shutdown(self, grace: float | None = None) -> None:
        """Stop taking calls, let those in progress finish (bounded), flush the audit."""
        if self.stopped.is_set():
            return
        self.dispatcher.accepting = False
        grace = self.cfg.shutdown_grace if grace is None else grace
        log.info("shutting down: %d call(s) in progress, waiting up to %.0fs", len(self.dispatcher.calls), grace)
        with gevent.Timeout(grace, False):
            while self.dispatcher.calls:
                gevent.sleep(0.05)
        self.dispatcher.kill_all(timeout=2)
        self.stopped.set()
        for sup in self.supervisors:
            sup.stop()
            if sup.current:
                sup.current.close()
        for feed in self.feeds:
            feed.stop()
        if self.server:
            self.server.stop()
        flushed = self.store.audit.flush()
        if self.store.audit.spool:
            log.error("%d audit entries could not be written before exit", len(self.store.audit.spool))
        elif flushed:
            log.info("flushed %d spooled audit entries", flushed)
        gevent.killall(self._greenlets, timeout=2)
        if self.store.audit.journal is not None:
            self.store.audit.journal.close()  # what still waits stays in the file for the next start
        if self.health:
            self.health.stop()

    def readiness(self) -> dict:
        """Ready = every FreeSWITCH node's Event Socket is up (or, in socket mode,
        the listener is bound) and Redis answers; `nodes` reports each connection."""
        try:
            redis_ok = bool(self.store.r.ping())
        except Exception:  # noqa: BLE001 - any failure means not ready
            redis_ok = False
        found = {"event_socket": self.connected, "redis": redis_ok}
        if self.supervisors:
            found["nodes"] = {f"{h}:{p}": s.up.is_set() for (h, p), s in zip(self.cfg.nodes, self.supervisors)}
        if self.feeds:
            # Reported, not required: without it calls are still decided; places
            # lapse by themselves and minutes go uncounted (controller.call.ends).
            found["ends_connections"] = {f.node: f.up.is_set() for f in self.feeds}
        return found

    @property
    def connected(self) -> bool:
        if self.cfg.mode == "socket":
            return self.server is not None and self.server.bound_port is not None
        return bool(self.supervisors) and all(s.up.is_set() for s in self.supervisors)


def serve_forever(cfg: Config) -> None:
    logs.setup(cfg.log_level, cfg.log_format)
    controller = Controller(cfg)
    controller.start()
    # What exists now lives as long as the process (modules, libphonenumber's
    # metadata, compiled patterns): frozen out of the collector's sight, a full
    # collection walks only what calls create instead of pausing every call in
    # progress for tens of milliseconds.
    gc.freeze()
    done = gevent.event.Event()

    def stop(*_):
        gevent.spawn(lambda: (controller.shutdown(), done.set()))

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    done.wait()
