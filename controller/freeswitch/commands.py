"""Every FreeSWITCH command string Tollgate sends, built in one place.

Values that go into a command line are checked here: a newline would end the
command and start another one, so it is refused rather than escaped.
"""

from __future__ import annotations

import itertools
import re
import uuid as uuidlib
from functools import lru_cache

from controller.freeswitch.events import ENDED, PIN_VARIABLE, SUBSCRIBED
from controller.freeswitch.events import MANAGED_VARIABLE as MANAGED

_UUID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_VAR = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_CAUSE = re.compile(r"^[A-Z_]{3,40}$")


class UnsafeCommand(ValueError):
    """A value that would change the meaning of a command (newline, bad uuid, ...)."""


def _line(value: str, what: str) -> str:
    if "\n" in value or "\r" in value:
        raise UnsafeCommand(f"{what} contains a line break")
    return value


def _uuid(value: str) -> str:
    if not _UUID.match(value or ""):
        raise UnsafeCommand(f"not a channel uuid: {value!r}")
    return value


# An argument longer than this goes as the body of its sendmsg (see execute):
# "content-type: text/plain" and "content-length: NN" take 44 bytes of header,
# "execute-app-arg: " and the argument 18 more than the argument.
BODY_FROM = 27

_EVENT_IDS = itertools.count(1)
_EVENT_ID_BASE = uuidlib.uuid4().hex[:20]  # random per process: ids never collide across controllers


def new_event_uuid() -> str:
    """A uuid-shaped Event-UUID, unique per process without a random draw per
    command (three per call). FreeSWITCH only echoes it back as Application-UUID."""
    b, n = _EVENT_ID_BASE, next(_EVENT_IDS)
    return f"{b[:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{n:012x}"


def subscribe(events: tuple[str, ...] = SUBSCRIBED) -> str:
    for name in events:
        if not _VAR.match(name):
            raise UnsafeCommand(f"not an event name: {name!r}")
    return "event plain " + " ".join(events)


def auth(password: str) -> str:
    return f"auth {_line(password, 'password')}"


def filter_managed() -> str:
    # Only marked channels' events reach us: FreeSWITCH drops the rest (and
    # DTMF events, which carry no variables; play_and_get_digits does not need
    # them). Once a call is handed over its mark changes (`handed-over`, then
    # `ended-<owner>` at its hangup): its events stop here.
    return f"filter variable_{MANAGED} true"


# The dialplan's mark, `set tollgate_managed=true` (freeswitch-conf), as its
# CHANNEL_EXECUTE_COMPLETE's Application-Data says it.
MARK_DATA = f"{MANAGED}=true"


def filter_mark_executed() -> str:
    """Drops the CHANNEL_EXECUTE_COMPLETE of the dialplan's mark itself: it is
    built once the `set` ran, so the mark's filter passes it, a whole channel's
    worth of headers per call that nothing reads (the CHANNEL_PARK follows).
    A value led by `-` makes a filter one that drops every event it matches,
    whatever the other filters pass (mod_event_socket's event_handler, 1.10:
    it stops at the first such match with the event not sent; fixture 17)."""
    return f"filter Application-Data -{MARK_DATA}"


def subscribe_ends() -> str:
    """The ends connection (controller.call.ends) takes this event only."""
    return "event plain CHANNEL_HANGUP_COMPLETE"


def filter_ends(owner: str) -> str:
    # "ended-<owner>": a bridged call of this controller's that holds a
    # concurrency place or spends a budget, marked so by its hangup hook. Only
    # its owner gets its end (every controller on a node gets every park; each
    # used to get every end too, and add its minutes).
    return f"filter variable_{MANAGED} {end_mark(owner)}"


def end_mark(owner: str) -> str:
    """What the hangup hook of a counted call sets `tollgate_managed` to."""
    return f"{ENDED}-{fs_owner_id(owner)}"


def execute(app: str, arg: str | None, event_uuid: str | None, channel: str | None = None,
            lock: bool = True) -> str:
    """`sendmsg` execute. channel=None in socket mode (the session's own channel).

    Every execute carries `event-lock: true`, in both modes, whatever the
    application. Why (FreeSWITCH 1.10 sources):
    - mod_event_socket puts every `sendmsg` on the channel's private queue
      (switch_core_session_queue_private_event), the socket application's
      own ones too (`async`).
    - Whatever parses events while it runs takes the next queued message and
      runs it nested inside itself: the park loop, but also the originate wait
      of `bridge`, `playback`, `play_and_get_digits` and `sleep`
      (switch_ivr_parse_all_events). Queued behind a bridge, our
      `hangup ${originate_disposition}` ran *inside* it and cancelled the
      carrier's INVITE: every bridged call failed on a real switch.
    - `event-lock: true` sets CF_EVENT_LOCK for as long as that message's
      application runs (switch_ivr_parse_event), and
      switch_core_session_dequeue_private_event hands nothing out of the
      normal queue meanwhile: queued applications run one after another, in
      the order sent, which is what every sequence here assumes (multiset ->
      bridge -> hangup; multiset -> pre_answer -> playback; answer ->
      play_and_get_digits -> unset; the PIN scrub after a resume).
    - The price: nothing queued can interrupt a running application, not even
      a `sendmsg` call-command hangup. What must pre-empt does not queue: a
      hangup is `uuid_kill` (hangup_channel), a prompt is stopped with
      `uuid_break`, both `api` commands that act at once.
    lock=False only for a static socket session (the socket application without
    `async`): it runs each sendmsg as it reads it, never queued, and reads the
    next one when that application returns.

    event_uuid=None: nobody waits for this application's CHANNEL_EXECUTE_COMPLETE
    (a handover nobody follows), so nothing is sent for FreeSWITCH to echo.

    A long argument goes as the message's body (`content-type: text/plain`, which
    switch_ivr_parse_event takes when there is no execute-app-arg):
    mod_event_socket's read_packet reads a command's header block one byte per
    recv(), each followed by a sched_yield(), and a body in one recv(). The
    handover's multiset alone was 170 such bytes, read in the call's own thread
    before its bridge could start.
    """
    head = f"sendmsg {_uuid(channel)}" if channel else "sendmsg"
    lines = [head, "call-command: execute", f"execute-app-name: {_line(app, 'application')}"]
    body = None
    if arg:
        arg = _line(arg, "application argument")
        size = len(arg.encode("utf-8"))
        if size > BODY_FROM:
            body = arg
        else:
            lines.append(f"execute-app-arg: {arg}")
    if lock:
        lines.append("event-lock: true")
    if event_uuid is not None:
        lines.append(f"Event-UUID: {_uuid(event_uuid)}")
    if body is None:
        return "\n".join(lines)
    lines += ["content-type: text/plain", f"content-length: {size}"]
    return "\n".join(lines) + "\n\n" + body


def wire(commands_: list[str]) -> bytes:
    """Commands as written on the Event Socket: each header block ends with a
    blank line, and a command that carries a body (execute) ends with it."""
    return "".join(c if "\n\n" in c else c + "\n\n" for c in commands_).encode("utf-8")


def set_var(name: str, value: str) -> tuple[str, str]:
    if not _VAR.match(name):
        raise UnsafeCommand(f"bad variable name {name!r}")
    return "set", f"{name}={_line(value, 'variable value')}"


def unset_var(name: str) -> tuple[str, str]:
    if not _VAR.match(name):
        raise UnsafeCommand(f"bad variable name {name!r}")
    return "unset", name


def hangup(cause: str) -> tuple[str, str]:
    if not _CAUSE.match(cause):
        raise UnsafeCommand(f"bad hangup cause {cause!r}")
    return "hangup", cause


def play_and_get_digits(*, min_digits: int, max_digits: int, tries: int, timeout_ms: int, terminators: str,
                        prompt: str, invalid_prompt: str, digit_timeout_ms: int) -> tuple[str, str]:
    """All arguments spelled out, in FreeSWITCH's order:
    min max tries timeout terminators file invalid_file var_name regexp digit_timeout.
    """
    for path in (prompt, invalid_prompt):
        if not path or " " in path:
            raise UnsafeCommand(f"prompt path must be non-empty without spaces: {path!r}")
    regex = f"^\\d{{{min_digits},{max_digits}}}$"
    arg = (f"{min_digits} {max_digits} {tries} {timeout_ms} {terminators} {prompt} {invalid_prompt} "
           f"{PIN_VARIABLE} {regex} {digit_timeout_ms}")
    return "play_and_get_digits", _line(arg, "prompt")


def hangup_if_bridge_fails() -> tuple[str, str]:
    """Queued right after a bridge. A bridge that connects ends the call itself
    (hangup_after_bridge); one that fails hangs an unanswered caller up itself
    (fixture 09) but leaves an answered one parked: this hangs that one up with
    the far end's cause. FreeSWITCH expands the variable when the app runs."""
    return "hangup", "${originate_disposition}"


@lru_cache(maxsize=256)
def time_limit(seconds: int) -> tuple[str, str]:
    """The call's longest duration, kept by FreeSWITCH's scheduler (mod_dptools
    `sched_hangup`): it holds even if no controller is left. Queued right before
    the bridge, so ringing counts towards it."""
    if not 0 < int(seconds) <= 86400:
        raise UnsafeCommand(f"time limit {seconds!r} out of range")
    return "sched_hangup", f"+{int(seconds)} ALLOTTED_TIMEOUT"


@lru_cache(maxsize=256)
def time_limit_at_bridge(seconds: int) -> tuple[str, str]:
    """The same limit as a channel variable for a bridge: switch_ivr_originate
    runs the caller channel's `execute_on_pre_originate` (app, then argument
    after the first space) before the other leg is called, so ringing still
    counts; and it rides in the bridge's multiset, one application less to
    send, acknowledge and run per call."""
    app, arg = time_limit(seconds)
    return "execute_on_pre_originate", f"{app} {arg}"


def playback(path: str) -> tuple[str, str]:
    return "playback", _line(path, "prompt path")


def bridge(dial_string: str) -> tuple[str, str]:
    return "bridge", _line(dial_string, "dial string")


def transfer(target: str) -> tuple[str, str]:
    return "transfer", _line(target, "transfer target")


def api(command: str, *args: str) -> str:
    return "api " + " ".join([command, *(_line(a, "api argument") for a in args)])


def hangup_channel(channel: str, cause: str) -> str:
    """Hang a channel up now, in either mode, even in the middle of an
    application. Not `sendmsg` call-command hangup: that one waits in the
    private queue behind an event-locked application (see `execute`), so a
    watchdog's hangup would wait for the very prompt it must end. `uuid_kill`
    is an api command: it hangs the channel up from the Event Socket's thread.
    An outbound (socket application) session in `full` mode may run it too."""
    return uuid_kill(channel, cause)


def uuid_kill(channel: str, cause: str) -> str:
    return api("uuid_kill", _uuid(channel), hangup(cause)[1])


# Socket mode: how long FreeSWITCH keeps a session open after its channel hung
# up, for us to read the last events (CHANNEL_HANGUP_COMPLETE). Plain `linger`
# means -1, forever: mod_event_socket then keeps the session, its thread and
# the channel (in CS_DESTROY, still counted by `show channels count`) until the
# client closes the socket. We close it ourselves once the last event is read
# (controller.freeswitch.esl_socket); this is only the backstop for when we cannot.
LINGER_SECONDS = 10


# A static session (no `async`) runs in the channel's own thread: while it
# lingers the channel's hangup waits (its BYE, CHANNEL_HANGUP_COMPLETE), so
# linger only as long as it takes the last events to reach the session (they go
# through FreeSWITCH's event threads; without linger the session would end, and
# drop them, as soon as it sees the channel down). A controller that stopped
# answering delays a caller's hangup by this much, not by LINGER_SECONDS.
STATIC_LINGER_SECONDS = 1


def linger(seconds: int = LINGER_SECONDS) -> str:
    if not 0 < int(seconds) <= 3600:
        raise UnsafeCommand(f"linger {seconds!r} out of range")
    return f"linger {int(seconds)}"


# What `myevents` subscribes a socket session to (mod_event_socket's parse_command),
# less what the call flow reads (SUBSCRIBED). FreeSWITCH serializes every event it
# sends, about 150 headers each: a call runs a dozen applications, two events each.
_MYEVENTS = ("CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
             "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
             "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING", "CHANNEL_PARK",
             "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK",
             "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK")


def session_events() -> list[str]:
    """A socket session's subscription: its own channel's events (`myevents`),
    then `nixevent` for those the flow does not read."""
    # CHANNEL_PARK too: a session's call comes with `connect`'s answer, and in
    # async mode the socket application's own park would be one more event.
    dropped = [e for e in _MYEVENTS if e not in SUBSCRIBED or e == "CHANNEL_PARK"]
    return ["myevents", "nixevent " + " ".join(dropped)]


def bound_group(channel: str) -> str:
    """The scheduler group of the bound socket mode's dialplan sets before the
    `socket` application: `sched_api +180 tollgate-${uuid} uuid_kill ${uuid} ...`."""
    return f"tollgate-{_uuid(channel)}"


def cancel_bound(channel: str) -> str:
    """Once FreeSWITCH has the call's outcome (bridge, transfer), the bound must not
    cut it: mod_commands' `sched_del` removes the group's task, and only it (the
    dialplan's own sched_hangup tasks are in the channel uuid's group)."""
    return api("sched_del", bound_group(channel))


def stop_events() -> list[str]:
    """A static socket session handing over a call it need not follow: no more
    events, and no linger, so FreeSWITCH closes the session itself once the
    channel is down. Sent before the bridge (it runs inside the session): every
    event FreeSWITCH fires is matched against every listener that takes events
    (mod_event_socket's event_handler looks up Unique-ID in it for each `myevents`
    session), so a session that keeps its subscription for the whole call costs
    the switch a little on every other call's every event."""
    return ["noevents", "nolinger"]


def uuid_getvar(channel: str, name: str) -> str:
    return api("uuid_getvar", _uuid(channel), set_var(name, "")[1][:-1])


def uuid_break(channel: str) -> str:
    return api("uuid_break", _uuid(channel), "all")


def fs_owner_id(owner: str) -> str:
    """A controller id as it can stand in a mod_hash value ('/' and spaces would split it)."""
    return re.sub(r"[^A-Za-z0-9._:~-]", "-", owner)[-64:]


def fs_claim(channel: str, owner: str) -> str:
    """A claim kept by FreeSWITCH (mod_hash) for when Redis cannot arbitrate."""
    return api(f"hash insert_ifempty/tollgate_claims/{_uuid(channel)}/{fs_owner_id(owner)}")


def fs_claim_owner(channel: str) -> str:
    return api(f"hash select/tollgate_claims/{_uuid(channel)}")


def fs_unclaim_at_hangup(channel: str) -> tuple[str, str]:
    """(name, value) for multiset: the claim lives as long as the channel."""
    return "api_reporting_hook", f"hash delete/tollgate_claims/{_uuid(channel)}"


# No `api_hangup_hook=uuid_setvar <uuid> ...` here: at hangup the channel is down,
# and FreeSWITCH's session locate refuses a down channel
# (switch_core_session_read_lock: switch_channel_down_nosig), so uuid_setvar in a
# hangup hook never finds it ("-ERR No such channel!"). The PIN variable is unset
# by an `unset` queued with the prompt (flow_pin), a counted call carries its end
# mark from the handover on (mark_end).


def mark_end(owner: str) -> tuple[str, str]:
    """(name, value) for the handover's multiset of a counted call: tollgate_managed
    = ended-<owner>. The park connections' filter (`true`) stops passing its events;
    its owner's ends connection, subscribed to CHANNEL_HANGUP_COMPLETE alone with
    the filter `ended-<owner>` (filter_ends), gets that one event: the end, with
    variable_billsec."""
    return MANAGED, end_mark(owner)


def multiset(variables: dict[str, str]) -> tuple[str, str]:
    """Several channel variables in one execution (`^^|` makes `|` the separator,
    so values may hold spaces)."""
    parts = []
    for name, value in variables.items():
        set_var(name, value)  # same checks as `set`
        if "|" in value:
            raise UnsafeCommand(f"value of {name} contains '|'")
        parts.append(f"{name}={value}")
    return "multiset", "^^|" + "|".join(parts)


def show_channels() -> str:
    return api("show", "channels", "as", "json")


# -- read-only checks (`tollgate doctor`): mod_commands' api, as FreeSWITCH 1.10 names it --
def version() -> str:
    return "api version"


def module_exists(module: str) -> str:
    if not _VAR.match(module or ""):
        raise UnsafeCommand(f"not a module name: {module!r}")
    return f"api module_exists {module}"


def global_getvar(name: str) -> str:
    if not _VAR.match(name or ""):
        raise UnsafeCommand(f"not a variable name: {name!r}")
    return f"api global_getvar {name}"


def file_exists(path: str) -> str:
    return f"api file_exists {_line(path, 'file path')}"


def xml_locate_context(context: str) -> str:
    """The dialplan context as FreeSWITCH holds it (pre-processed, includes expanded)."""
    if not _VAR.match(context or ""):
        raise UnsafeCommand(f"not a context name: {context!r}")
    return f"api xml_locate dialplan context name {context}"
