"""One call's mailbox and its small command interface.

The connection's handler only puts events in the mailbox (plivo's model); the
call's own greenlet takes them out while it waits for something. A hangup, or
the loss of the Event Socket, raises out of whatever the flow is waiting for,
so the flow unwinds as an exception instead of checking flags at every step.
Completions are matched by the `Event-UUID` we send, which FreeSWITCH echoes
as `Application-UUID` on CHANNEL_EXECUTE_COMPLETE.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

import gevent
import gevent.event

from controller.freeswitch import commands
from controller.errors import ChannelGone, CommandFailed, NotConnected
from controller.freeswitch.events import Disconnected, Event, ExecuteComplete, Hangup


class Transport(Protocol):
    """What a call needs from the Event Socket: inbound connection or socket session."""

    def send(self, data: str, timeout: float | None = None) -> str: ...

    def send_many(self, commands: list[str], timeout: float | None = None) -> list[str]: ...


class EslLost(CommandFailed):
    """The Event Socket connection went away while this call waited on it."""


class StepTimeout(CommandFailed):
    """FreeSWITCH did not report the end of an application in time."""


class Mailbox:
    """One call's events, in order, and an Event to wait on (gevent's Queue
    costs more memory per call, and thousands of calls wait at once).

    The events are a list read from a moving index, not a deque: an empty
    deque is a 64-slot block (about 600 bytes) that every held PIN dialog
    kept. A list that is read to its end is emptied; one that never is (a
    steady stream) drops what was read once that is half of it.

    With a `pump` (socket mode), nobody else fills it: waiting means reading the
    call's own socket, `pump(timeout)`, which delivers what it reads; no Event."""

    __slots__ = ("_items", "_head", "_ready", "pump")

    def __init__(self, pump: Callable[[float], bool] | None = None):
        self._items: list = []
        self._head = 0  # the next item to hand out
        self._ready = gevent.event.Event() if pump is None else None
        self.pump = pump

    def put_nowait(self, item) -> None:
        self._items.append(item)
        if self._ready is not None:
            self._ready.set()

    def get(self, timeout: float):
        """The next item; None when `timeout` passes first."""
        if self._head >= len(self._items):
            if self.pump is not None:
                deadline = time.monotonic() + timeout
                while self._head >= len(self._items):
                    left = deadline - time.monotonic()
                    if left <= 0 or not self.pump(left):
                        break
            else:
                self._ready.clear()
                self._ready.wait(timeout)
            if self._head >= len(self._items):
                return None
        items, head = self._items, self._head
        item = items[head]
        head += 1
        if head == len(items):
            items.clear()
            head = 0
        elif head > 32 and head * 2 > len(items):
            del items[:head]
            head = 0
        self._head = head
        return item


class CallSession:
    def __init__(self, uuid: str, transport: Transport, channel: str | None,
                 pump: Callable[[float], bool] | None = None):
        self.uuid = uuid
        self.transport = transport
        self.node = getattr(transport, "node", "")  # the FreeSWITCH node the call is on
        self.channel = channel  # the uuid in inbound mode, None in socket mode
        self.mailbox = Mailbox(pump)
        self.gone: Hangup | None = None
        self.rebound = gevent.event.Event()

    def rebind(self, transport: Transport) -> None:
        """Inbound mode: the Event Socket came back; the call goes on on the new connection."""
        self.transport = transport
        self.rebound.set()

    def wait_rebind(self, timeout: float) -> bool:
        if self.channel is None:
            return False  # socket mode: the session was the call's only link
        got = self.rebound.wait(timeout)
        self.rebound.clear()
        return got

    def send(self, data: str, timeout: float | None = None) -> str:
        try:
            return self.transport.send(data, timeout)
        except NotConnected as exc:
            raise EslLost(str(exc)) from None

    # -- called by the connection's handler: never blocks -----------------------
    def deliver(self, event: Event) -> None:
        self.mailbox.put_nowait(event)

    # -- called by the call's greenlet ------------------------------------------
    def start(self, app: str, arg: str | None = None) -> str:
        """Send an application; return its Event-UUID without waiting for it to end."""
        return self.start_many([(app, arg)])[0]

    @property
    def sync(self) -> bool:
        """A static socket session (the socket application without `async`): each
        application runs as soon as it is read, and nothing else is read or sent
        on the session until it returns."""
        return getattr(self.transport, "sync", False)

    def start_many(self, steps: list[tuple[str, str | None]], lead: tuple[str, ...] = (),
                   follow: bool = True) -> list[str | None]:
        """Queue several applications in one write; FreeSWITCH runs them in order.
        `lead`: api commands written first in the same write. `follow`: the flow
        will read the call's events (a socket session subscribes first); False
        for a last handover nobody follows (a session that was subscribed stops)."""
        if self.gone:
            raise ChannelGone(self.gone.cause)
        # Nobody waits for the completions of a handover nobody follows: no
        # Event-UUID, 49 bytes less per application for FreeSWITCH to read (see
        # commands.execute).
        uuids = [commands.new_event_uuid() if follow else None for _ in steps]
        subscription = getattr(self.transport, "follow_commands" if follow else "unfollow_commands", None)
        lock = not self.sync  # a static session runs each application as it reads it: nothing to hold
        msgs = [*(subscription() if subscription else ()), *lead,
                *(commands.execute(app, arg, u, self.channel, lock) for (app, arg), u in zip(steps, uuids))]
        try:
            replies = self.transport.send_many(msgs)
        except NotConnected as exc:
            raise EslLost(str(exc)) from None
        if any(r.startswith("-ERR") for r in replies):
            # "-ERR invalid session id": the channel is gone already.
            raise ChannelGone("NO_SUCH_CHANNEL")
        return uuids

    def run(self, app: str, arg: str | None = None, timeout: float = 30.0) -> ExecuteComplete:
        """Send an application and wait until FreeSWITCH reports it finished."""
        return self.wait_done(self.start(app, arg), timeout, what=app)

    def wait_done(self, event_uuid: str, timeout: float, what: str = "application") -> ExecuteComplete:
        """Until FreeSWITCH reports that the execution sent with this Event-UUID ended."""
        return self.wait_for(lambda e: isinstance(e, ExecuteComplete) and e.app_uuid == event_uuid, timeout,
                             what=what)

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float, what: str = "event") -> Event:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StepTimeout(f"{what} did not finish within {timeout:.1f}s")
            event = self.mailbox.get(remaining)
            if event is None:
                continue
            if isinstance(event, Hangup):
                self.gone = event
                raise ChannelGone(event.cause)
            if isinstance(event, Disconnected):
                if event.source is None or event.source is self.transport:
                    raise EslLost(event.reason)
                continue  # news of a connection this call has already left
            if predicate(event):
                return event

    def wait_hangup_complete(self, timeout: float) -> Hangup | None:
        """After the hangup, the CHANNEL_HANGUP_COMPLETE that follows it (final
        variables: the billed seconds); None if it does not come in time."""
        if isinstance(self.gone, Hangup) and self.gone.complete:
            return self.gone
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            event = self.mailbox.get(remaining)
            if isinstance(event, Hangup) and event.complete:
                return event
            if isinstance(event, Disconnected):
                return None
        return None

    def api(self, command: str, timeout: float | None = None) -> str:
        return self.send(command, timeout)

    def kill(self, cause: str) -> None:
        """Hang the channel up without the mailbox (watchdog, lost state), at
        once, whatever application runs (commands.hangup_channel)."""
        self.send(commands.hangup_channel(self.channel or self.uuid, cause))

