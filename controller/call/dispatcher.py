"""Routes raw events to calls. Runs in greenswitch's handler greenlet: O(1), never blocks.

An event for a call we own goes to that call's mailbox. A CHANNEL_PARK of a
marked channel (`tollgate_managed=true`) starts a call greenlet, up to
`max_calls` of them; unmarked parks (other applications park calls too) are
left alone, and a second park of a call we already own is just another event
in its mailbox.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent

from controller.freeswitch import commands
from controller.call.callflow import CallFlow
from controller.call.services import Services
from controller.errors import CommandFailed
from controller.freeswitch.events import ChannelPark, Disconnected, MalformedEvent, parse
from controller.call.session import CallSession, Transport
from controller.greenlets import CallGreenlets

log = logging.getLogger("tollgate.dispatch")


class Dispatcher:
    def __init__(self, svc: Services, max_calls: int = 20000):
        self.svc = svc
        self.calls: dict[str, CallSession] = {}
        self.max_calls = max_calls
        self.running = CallGreenlets(log)
        self.transports: dict[str, Transport] = {}  # FreeSWITCH node -> its inbound connection
        self.accepting = True
        self.malformed = 0
        self.rejected = 0

    def router(self, node: str) -> Callable[[dict], None]:
        """The event handler of one node's connection: its parks start calls on it."""
        return lambda headers: self.route(headers, node)

    def route(self, headers, node: str = "") -> None:
        # Most events belong to calls nobody here handles (any more): two header
        # lookups decide that, before anything is parsed.
        uuid = headers.get("Unique-ID", "")
        session = self.calls.get(uuid)
        if session is None and headers.get("Event-Name") != "CHANNEL_PARK":
            return
        try:
            event = parse(headers)
        except MalformedEvent as exc:
            self.malformed += 1
            self.svc.metrics.malformed.inc()
            log.warning("ignored malformed event: %s", exc)
            return
        if event is None or isinstance(event, Disconnected):
            return
        session = self.calls.get(event.uuid)
        if session is not None:
            session.deliver(event)
        elif isinstance(event, ChannelPark) and event.managed:
            transport = self.transports.get(node)
            if transport is not None:
                self.start(event, transport, event.uuid)

    def start(self, park: ChannelPark, transport: Transport, channel: str | None,
              on_done: Callable[[], None] | None = None, recovered: bool = False,
              interrupt: bool = False):
        if not self.accepting:
            # Another controller, or this one's successor (its recovery scan on
            # connect), takes it; FreeSWITCH's park_timeout bounds the wait.
            log.warning("[%s] shutting down: leaving the call to another controller", park.uuid)
            return None
        if len(self.running) >= self.max_calls:
            self.rejected += 1
            log.error("[%s] at capacity (%d calls): refusing with a temporary failure", park.uuid, self.max_calls)
            gevent.spawn(_reject, transport, park.uuid, channel)
            return None
        session = CallSession(park.uuid, transport, channel)
        self.calls[park.uuid] = session
        flow = CallFlow(session, park, self.svc, recovered=recovered, interrupt=interrupt)
        return self.running.spawn(f"[{park.uuid}] call flow", self._run, flow, park.uuid, on_done)

    def _run(self, flow: CallFlow, uuid: str, on_done: Callable[[], None] | None) -> None:
        try:
            flow.run()
        finally:
            self.calls.pop(uuid, None)
            if on_done:
                on_done()

    def kill_all(self, timeout: float) -> None:
        """The calls still running at the end of the shutdown's grace: ended
        (GreenletExit unwinds each flow), waited for `timeout` seconds at most."""
        self.running.kill(timeout)

    def rebind_all(self, transport: Transport) -> int:
        """A node's new inbound connection: its calls that lost theirs resume on it
        (a channel lives on one node: never on another node's connection)."""
        moved = 0
        node = getattr(transport, "node", "")
        for session in list(self.calls.values()):
            if session.channel is not None and session.node == node and session.transport is not transport:
                session.rebind(transport)
                moved += 1
        return moved

    def connection_lost(self, transport: Transport, reason: str) -> None:
        """Every call waiting on that connection unwinds (EslLost)."""
        for session in list(self.calls.values()):
            if session.transport is transport:
                session.deliver(Disconnected(session.uuid, reason, source=transport))


def _reject(transport: Transport, uuid: str, channel: str | None) -> None:
    try:
        transport.send(commands.hangup_channel(channel or uuid, "NORMAL_TEMPORARY_FAILURE"))
    except CommandFailed as exc:
        log.error("[%s] could not hand the call back: %s", uuid, exc)
