"""A simulated channel: variables, the park loop, and the applications Tollgate uses."""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid as uuidlib

import gevent
import gevent.event
from gevent.queue import Empty, Queue

from controller.simulator import apps
from controller.simulator.callers import Caller
from controller.simulator.errors import Broken, Hungup

_APP_IDS = itertools.count(1)
_APP_ID_BASE = uuidlib.uuid4().hex[:20]


def app_uuid() -> str:
    """A uuid-shaped id for an application the dialplan runs: unique in this
    process, without a random draw per application."""
    n = f"{next(_APP_IDS):012x}"
    b = _APP_ID_BASE
    return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{n}"


_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
_API_CALL = re.compile(r"\$\{([a-z_]+)\(([^()]*)\)\}")
ZOMBIE_EXEC = frozenset({"set", "unset", "multiset", "export"})  # mod_dptools' SAF_ZOMBIE_EXEC ones we use


_CODEC = [("Channel-Read-Codec-Name", "L16"), ("Channel-Read-Codec-Rate", "8000"),
          ("Channel-Read-Codec-Bit-Rate", "128000"), ("Channel-Write-Codec-Name", "L16"),
          ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "128000")]
_CALLING = {
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2944"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2967"),
    "CHANNEL_PARK": ("switch_ivr.c", "switch_ivr_park", "1002"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3846"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", "3650"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1879"),
    "DTMF": ("switch_channel.c", "switch_channel_dequeue_dtmf", "677"),
}


class Channel:
    def __init__(self, sim, *, dialed: str, caller_id: str, caller_name: str, context: str,
                 variables: dict[str, str], caller: Caller, mode: str, socket_address=None,
                 socket_args: str = "full", before_socket: list[tuple[str, str]] | None = None):
        self.sim = sim
        self.uuid = str(uuidlib.uuid4())
        self.name = f"sofia/internal/{caller_id}@pbx.example"
        self.dialed, self.caller_id, self.caller_name, self.context = dialed, caller_id, caller_name, context
        self.caller = caller
        self.mode = mode
        self.socket_address = socket_address
        self.socket_args = socket_args  # the socket application's arguments after the address
        self.listener_inbox = None  # a static socket session's listener, run by this channel
        self.created = time.time()
        self.created_us = str(int(self.created * 1_000_000))
        self.vars: dict[str, str] = {
            "direction": "inbound", "uuid": self.uuid, "channel_name": self.name,
            "read_codec": "L16", "read_rate": "8000", "write_codec": "L16", "write_rate": "8000",
            "call_uuid": self.uuid,
        }
        self.dialplan_vars = dict(variables)
        # Socket mode: the applications the dialplan runs right before `socket`
        # (freeswitch-conf's: eval ${sched_api(...)}, the bound).
        self.before_socket = list(before_socket or [])
        self.state = "ringing"  # ringing | early | answered | hangup
        self.hangup_cause = ""
        self.application = ""
        self.application_data = ""
        self.park_uuid = ""
        self.parked = False
        self.bridged = False
        # The channel's private event queue (FreeSWITCH's private_event_queue):
        # every `sendmsg` lands here, ("execute", app, arg, event uuid, conn id,
        # event-lock) or ("hangup", cause); None ends the park loop.
        self.queue: Queue = Queue()
        self.event_lock = 0  # CF_EVENT_LOCK: an event-locked application runs
        self.depth = 0  # applications running, one inside the other
        self.runs: list[tuple[str, int]] = []  # (application, depth) as FreeSWITCH logs "EXECUTE [depth=N]"
        self.digits: list[str] = []
        self.prompts = 0
        # Set to wake an application that waits: a hangup, a break, or a message queued.
        self.interrupt = gevent.event.Event()
        self.break_pending = False
        self.cdr: dict[str, str] | None = None
        self.events: list[str] = []  # names, in emission order
        self.delivered: list[str] = []  # names, once per client it was sent to
        self.executed: list[tuple[str, str, int]] = []  # (app, data, connection id)
        self.outcome = ""  # bridged | refused | ...
        self.socket_conn = None
        self.ended_at: float | None = None
        self.t_park: float | None = None  # perf_counter when CHANNEL_PARK went out
        self.t_bridge: float | None = None  # ... and when the bridge command came in
        self.t_park_start: float | None = None  # perf_counter when the park loop began
        self.t_bridge_run: float | None = None  # ... and when bridge began to run (the modelled setup delay)
        self.greenlet: gevent.Greenlet | None = None
        self.answered_at: float | None = None  # monotonic, for billsec
        self.hungup_at: float | None = None  # monotonic
        self.billsec = 0
        self._profile: list[tuple[str, str]] | None = None
        self.timers: list = []  # sched_hangup's loop timers, closed at the end

    # -- events ------------------------------------------------------------------
    def headers(self, name: str, extra=(), with_vars: bool = True) -> list[tuple[str, str]]:
        f, fn, line = _CALLING.get(name, ("switch_channel.c", "switch_channel_event", "1"))
        answered = {"ringing": "ringing", "early": "early", "answered": "answered", "hangup": "hangup"}[self.state]
        call_state = {"ringing": "RINGING", "early": "EARLY", "answered": "ACTIVE", "hangup": "HANGUP"}[self.state]
        h = self.sim.base_headers(name, f, fn, line)
        h += [("Channel-State", "CS_EXECUTE" if self.state != "hangup" else "CS_HANGUP"),
              ("Channel-Call-State", call_state), ("Channel-State-Number", "4"),
              ("Channel-Name", self.name), ("Unique-ID", self.uuid), ("Call-Direction", "inbound"),
              ("Presence-Call-Direction", "inbound"), ("Channel-HIT-Dialplan", "true"),
              ("Channel-Call-UUID", self.uuid), ("Answer-State", answered)]
        if self.hangup_cause:
            h.append(("Hangup-Cause", self.hangup_cause))
        h += _CODEC
        if with_vars:
            profile = self.profile()
            if self.answered_at is not None:
                # The answer's time in microseconds, on the event's clock with the
                # simulator's time scale: the event's time minus the simulated
                # seconds since the answer (what a static session computes the
                # billed seconds from, controller.freeswitch.events).
                now_us = int(next(v for k, v in h if k == "Event-Date-Timestamp"))
                answered = str(now_us - int(self.since_answer() * 1_000_000))
                profile = [(k, answered if k == "Caller-Channel-Answered-Time" else v) for k, v in profile]
            h += profile
            h += [("variable_" + k, v) for k, v in self.vars.items()]
        h += list(extra)
        return h

    def since_answer(self) -> float:
        """Simulated seconds since the answer (0 before it; frozen at the hangup)."""
        if self.answered_at is None:
            return 0.0
        end = self.hungup_at if self.hungup_at is not None else time.monotonic()
        return (end - self.answered_at) / (self.sim.scale or 1)

    def profile(self) -> list[tuple[str, str]]:
        """The caller profile's headers: the same for every event of the channel, built once."""
        if self._profile is None:
            self._profile = self._make_profile()
        return self._profile

    def _make_profile(self) -> list[tuple[str, str]]:
        p = "Caller"
        return [(f"{p}-Direction", "inbound"), (f"{p}-Logical-Direction", "inbound"), (f"{p}-Dialplan", "xml"),
                (f"{p}-Caller-ID-Name", self.caller_name), (f"{p}-Caller-ID-Number", self.caller_id),
                (f"{p}-Orig-Caller-ID-Name", self.caller_name), (f"{p}-Orig-Caller-ID-Number", self.caller_id),
                (f"{p}-Callee-ID-Name", "Outbound Call"), (f"{p}-Callee-ID-Number", self.dialed),
                (f"{p}-ANI", self.caller_id), (f"{p}-Destination-Number", self.dialed),
                (f"{p}-Unique-ID", self.uuid), (f"{p}-Source", "mod_sofia"), (f"{p}-Context", self.context),
                (f"{p}-Channel-Name", self.name), (f"{p}-Profile-Index", "1"),
                (f"{p}-Profile-Created-Time", self.created_us), (f"{p}-Channel-Created-Time", self.created_us),
                (f"{p}-Channel-Answered-Time", "0"), (f"{p}-Channel-Hangup-Time", "0"),
                (f"{p}-Screen-Bit", "true"), (f"{p}-Privacy-Hide-Name", "false"),
                (f"{p}-Privacy-Hide-Number", "false")]

    def emit(self, name: str, extra=(), with_vars: bool = True) -> None:
        self.events.append(name)
        self.sim.publish(self, name, extra, with_vars)

    def park_written(self) -> None:
        """CHANNEL_PARK has been written to a client's socket (the first one)."""
        if self.t_park is None:
            self.t_park = time.perf_counter()

    # -- the dialplan --------------------------------------------------------------
    def run(self) -> None:
        try:
            for k, v in self.dialplan_vars.items():
                self._app("set", f"{k}={v}", app_uuid(), conn_id=0)
            if self.caller.hangup_at == "park":
                gevent.spawn_later(self.caller.hangup_delay, self.hangup, "NORMAL_CLEARING")
            if self.mode == "socket":
                for app, data in self.before_socket:
                    self._app(app, data, app_uuid(), conn_id=0)
                self._socket()
                return
            self.park_uuid = app_uuid()
            self.application, self.application_data = "park", ""
            self.vars["current_application"] = "park"
            self.emit("CHANNEL_EXECUTE", [("Application", "park"), ("Application-UUID", self.park_uuid)])
            self.parked = True
            self.emit("CHANNEL_PARK")
            self._serve_queue()
        except Hungup:
            pass
        finally:
            if self.state == "hangup":
                # The hangup is processed by the channel's own thread once its
                # applications have unwound (hooks, then CHANNEL_HANGUP_COMPLETE).
                self._finish()

    def _serve_queue(self) -> None:
        """switch_ivr_park's loop: run what the private queue holds until the call
        ends, the controller lets go (None), or the park_timeout the dialplan set
        passes (checked between applications, as FreeSWITCH does: it never cuts
        one short).

        Its pace (Simulator.park_pace, real seconds): without media the loop
        sleeps (`switch_yield(20000)`), then dequeues ONE message and runs it
        (switch_ivr_parse_event), then runs the rest of the queue in the same
        turn (switch_ivr_parse_all_events, unless an event-locked application
        holds it). So a message sent to a parked channel runs at the loop's next
        20 ms tick, counted from the park's start (or from the end of what the
        loop ran last), never before; messages sent together run at that same
        tick. With media (after pre_answer or answer: park's `rate`) the loop
        blocks in switch_core_session_read_frame, which a queued message breaks
        at once (switch_core_session_queue_private_event -> SWITCH_SIG_BREAK)."""
        expires, cause = self._park_timeout()
        pace = self.sim.park_pace
        self.t_park_start = time.perf_counter()
        base = time.monotonic()  # when the loop's last switch_yield began
        while self.state != "hangup":
            left = None if expires is None else max(expires - time.monotonic(), 0.0)
            try:
                item = self.queue.get(timeout=left)
            except Empty:
                item = ()
            if item is None or self.state == "hangup":
                return  # the loop ends with the call: what is still queued is dropped
            if item and pace > 0 and self.state == "ringing":
                # No media: the loop looks at its queue only on its ticks.
                now = time.monotonic()
                gevent.sleep(base + (int((now - base) / pace) + 1) * pace - now)
                if self.state == "hangup":
                    return
            if item:
                self._run(item)
                # switch_ivr_parse_all_events: the rest of the queue, same turn.
                while (more := self._next_nested()) is not None:
                    self._run(more)
            if expires is not None and time.monotonic() >= expires and self.state != "hangup":
                self.hangup(cause)
                return
            if self.parked and self.state != "hangup":
                self.application, self.application_data = "park", ""
            base = time.monotonic()

    def _park_timeout(self) -> tuple[float | None, str]:
        """`park_timeout=SECONDS[:CAUSE]`, read (and unset) when the park starts
        (switch_ivr_park); the cause defaults to NORMAL_CLEARING."""
        value = self.vars.pop("park_timeout", "")
        if not value:
            return None, ""
        seconds, _, cause = value.partition(":")
        try:
            timeout = int(seconds)
        except ValueError:
            return None, ""
        if timeout < 0:
            return None, ""
        return time.monotonic() + timeout * self.sim.scale, cause or "NORMAL_CLEARING"

    def _run(self, item: tuple) -> None:
        """One message of the private queue (switch_ivr_parse_event)."""
        if item[0] == "hangup":
            self.hangup(item[1])
            raise Hungup()
        _, app, arg, event_uuid, conn_id, lock = item
        # event-lock: nothing more leaves the queue until this application returns.
        self.event_lock += lock
        try:
            self._app(app, arg, event_uuid, conn_id)
            return
        except Hungup:
            pass
        finally:
            self.event_lock -= lock
        self._zombies()  # with this application's lock released, as FreeSWITCH clears it
        raise Hungup()

    def _zombies(self) -> None:
        """An application ended by a hangup returns into switch_ivr_parse_all_events,
        which goes on taking queued messages: those whose application may run on a
        hung-up channel (SAF_ZOMBIE_EXEC: set, unset, multiset, export) run, the
        others are refused ("does not have the zombie_exec flag")."""
        while (item := self._next_nested()) is not None:
            if item[0] == "execute" and item[1] in ZOMBIE_EXEC:
                try:
                    self._app(*item[1:5])
                except Hungup:
                    pass

    def _next_nested(self) -> tuple | None:
        """What a running application takes from the queue while it parses events
        (switch_ivr_parse_all_events): nothing while an event-locked one runs."""
        if self.event_lock or self.queue.empty() or self.queue.peek() is None:
            return None
        return self.queue.get_nowait()

    def _socket(self) -> None:
        host, port = self.socket_address[0], self.socket_address[1]
        self.application, self.application_data = "socket", f"{host}:{port} {self.socket_args}".strip()
        self.vars["current_application"] = "socket"
        self.vars["socket_host"] = host
        self.emit("CHANNEL_EXECUTE", [("Application", "socket"), ("Application-Data", self.application_data),
                                      ("Application-UUID", app_uuid())])
        static = "async" not in self.socket_args.lower().split()
        connected = self.sim.connect_socket(self)
        if connected is None:
            # Nobody listening: the socket application returns at once and the
            # dialplan's next action is `hangup` (fail closed).
            self.hangup("NORMAL_TEMPORARY_FAILURE")
            return
        if static:
            # listener_run in this thread; no `connect` (False): it returns at once.
            if connected:
                self.sim.serve_static(self)
        else:
            # Connected (or accepted by a controller that never said `connect`:
            # "Socket Error!" after mod_event_socket's wait): socket_function parks
            # the call either way, with the dialplan's park_timeout.
            self._serve_queue()
        if self.state != "hangup" and self.outcome != "transferred":
            # the controller went away: the dialplan continues with `hangup`
            self.hangup("NORMAL_TEMPORARY_FAILURE")

    def execute_now(self, app: str, arg: str, event_uuid: str, conn_id: int, lock: bool = False) -> None:
        """switch_ivr_parse_event called by a static socket session's listener, in
        this channel's thread: the application runs now, not queued. On a channel
        that hung up (the session lingers) only the SAF_ZOMBIE_EXEC ones run."""
        if self.state == "hangup":
            if app in ZOMBIE_EXEC:
                try:
                    self._app(app, arg, event_uuid, conn_id)
                except Hungup:
                    pass
            return
        try:
            self._run(("execute", app, arg, event_uuid, conn_id, int(lock)))
        except Hungup:
            pass

    def enqueue(self, app: str, arg: str, event_uuid: str, conn_id: int, lock: bool = False) -> bool:
        if self.state == "hangup":
            return False
        self.queue.put(("execute", app, arg, event_uuid, conn_id, int(lock)))
        self.interrupt.set()  # an application that parses events looks at the queue
        return True

    def enqueue_hangup(self, cause: str) -> bool:
        """`sendmsg` call-command hangup: queued like an execute, so it waits
        behind an event-locked application (uuid_kill does not)."""
        if self.state == "hangup":
            return False
        self.queue.put(("hangup", cause))
        self.interrupt.set()
        return True

    def expand(self, text: str) -> str:
        """switch_channel_expand_variables: ${name} is a channel variable, and
        ${api(args)} runs that api command (its arguments expanded first) and
        stands for its output."""
        text = _VARIABLE.sub(lambda m: self.vars.get(m.group(1), ""), text)
        return _API_CALL.sub(lambda m: self.sim.api(f"{m.group(1)} {m.group(2)}").rstrip("\n"), text)

    def _app(self, app: str, arg: str, event_uuid: str, conn_id: int) -> None:
        if "${" in arg:  # switch_core_session_execute_application expands channel variables
            arg = self.expand(arg)
        self.executed.append((app, arg, conn_id))
        if app == "bridge" and self.t_bridge_run is None:
            self.t_bridge_run = time.perf_counter()
        self.runs.append((app, self.depth))
        outer = (self.application, self.application_data)  # an application this one runs inside
        tag = [("Application", app)] + ([("Application-Data", arg)] if arg else []) + \
              [("Application-UUID", event_uuid)]
        self.application, self.application_data = app, arg
        self.vars["current_application"] = app
        if arg:
            self.vars["current_application_data"] = arg
        self.emit("CHANNEL_EXECUTE", tag)
        response = "_none_"
        self.depth += 1
        try:
            handler = apps.APPS.get(app)
            response = handler(self, arg) if handler else "_none_"
        except Hungup:
            pass
        except Broken:
            self.break_pending = False
        finally:
            self.depth -= 1
            if self.depth:
                self.application, self.application_data = outer
        self.emit("CHANNEL_EXECUTE_COMPLETE", tag[:-1] + [("Application-Response", response), tag[-1]])
        if self.state == "hangup":
            raise Hungup()

    # -- time, with caller hangups and breaks ---------------------------------------
    def pause(self, seconds: float) -> None:
        """Time passing inside an application that parses events while it runs
        (playback, play_and_get_digits, bridge, sleep: switch_ivr_parse_all_events).
        A message queued meanwhile runs here, nested, unless an event-locked
        application holds the queue."""
        deadline = time.monotonic() + max(seconds, 0) * self.sim.scale
        while True:
            if self.state == "hangup":
                raise Hungup()
            if self.break_pending:
                raise Broken()
            item = self._next_nested()
            if item is not None:
                self._run(item)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.interrupt.clear()
            self.interrupt.wait(left)

    def hangup(self, cause: str) -> None:
        if self.state == "hangup":
            return
        self.state = "hangup"
        self.hangup_cause = cause
        self.hungup_at = time.monotonic()
        # FreeSWITCH's billsec: whole epoch seconds, hung up minus answered
        # (switch_channel_set_timestamps), the same sum a static session does
        # with CHANNEL_HANGUP's headers.
        now = time.time()
        self.billsec = int(now) - int(now - self.since_answer()) if self.answered_at is not None else 0
        self.emit("CHANNEL_HANGUP")
        self.interrupt.set()
        self.queue.put(None)  # the park loop ends; the channel's greenlet finishes the hangup
        if self.listener_inbox is not None:
            # A static session's listener sees it at its next wake.
            self.socket_conn.wake_later(self.listener_inbox)
        if self.greenlet is None or self.greenlet.dead:
            self._finish()

    def _finish(self) -> None:
        if self.ended_at is not None:
            return  # a hangup nested in an application unwinds through both
        if self.parked:
            self.emit("CHANNEL_EXECUTE_COMPLETE", [("Application", "park"), ("Application-Response", "_none_"),
                                                   ("Application-UUID", self.park_uuid)])
        digits = "".join(self.digits)
        flt = self.vars.get("digits_dialed_filter")
        if digits and flt:
            try:
                digits = re.sub(flt, lambda m: "X" * len(m.group(0)), digits)
            except re.error:
                pass
        self.vars["digits_dialed"] = digits or "none"
        if self.answered_at is not None:  # billed seconds, in the simulated clock, as of the hangup
            self.vars["billsec"] = str(self.billsec)
        hook = self.vars.get("api_hangup_hook")
        if hook:
            self.sim.api(hook)  # hangup state: before CHANNEL_HANGUP_COMPLETE and the CDR
        self.ended_at = time.time()
        self.emit("CHANNEL_HANGUP_COMPLETE")
        for timer in self.timers:
            timer.close()
        self.cdr = dict(self.vars)
        hook = self.vars.get("api_reporting_hook")
        if hook:
            self.sim.api(hook)
        self.sim.ended(self)

    def break_app(self) -> None:
        if self.application not in ("park", "socket", ""):
            self.break_pending = True
            self.interrupt.set()

    def key(self, digits: str) -> None:
        for d in digits:
            self.digits.append(d)
            # DTMF events carry no channel variables (a variable filter drops them).
            self.emit("DTMF", [("DTMF-Digit", d), ("DTMF-Duration", "2000"), ("DTMF-Source", "RTP")],
                      with_vars=False)

    def prompt_length(self, path: str) -> float:
        """Seconds of audio in a WAV file (8 kHz 16-bit mono), 1 s if unknown."""
        try:
            return max(os.path.getsize(path) - 44, 0) / 16000
        except OSError:
            return 1.0
