"""The dialplan applications the simulator runs on a channel, as FreeSWITCH 1.10
behaves (the captured fixtures and their notes): what each does to the
channel, which events it emits, and how a hangup interrupts it."""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

import gevent

from controller.simulator.errors import Hungup

if TYPE_CHECKING:
    from controller.simulator.roles import AppChannel


def _answer(ch: "AppChannel", _arg: str) -> str:
    if ch.state != "answered":
        ch.state = "answered"
        ch.answered_at = time.monotonic()
        ch.emit("CHANNEL_ANSWER")
    return "_none_"


def _pre_answer(ch: "AppChannel", _arg: str) -> str:
    if ch.state == "ringing":
        ch.state = "early"
        ch.emit("CHANNEL_PROGRESS_MEDIA")
    return "_none_"


def _set(ch: "AppChannel", arg: str) -> str:
    name, _, value = arg.partition("=")
    if value:
        ch.vars[name] = value
    else:
        ch.vars.pop(name, None)
    return "_none_"


def _multiset(ch: "AppChannel", arg: str) -> str:
    delim = " "
    if arg.startswith("^^") and len(arg) > 2:
        delim, arg = arg[2], arg[3:]
    for item in arg.split(delim):
        if item:
            _set(ch, item)
    return "_none_"


def _unset(ch: "AppChannel", arg: str) -> str:
    ch.vars.pop(arg.strip(), None)
    return "_none_"


def _playback(ch: "AppChannel", arg: str) -> str:
    _pre_answer(ch, "")  # switch_ivr_play_file pre-answers first (media: park's read_frame, not its 20 ms sleep)
    path = arg.strip()
    if not (path.startswith("tone_stream://") or path.startswith("silence_stream://") or os.path.isfile(path)):
        return "FILE NOT FOUND"
    ch.sim.played.append((ch.uuid, path))
    if ch.caller.hangup_at == "announcement":
        ch.hangup("NORMAL_CLEARING")
        raise Hungup()
    ch.pause(ch.prompt_length(path))
    return "FILE PLAYED"


def _play_and_get_digits(ch: "AppChannel", arg: str) -> str:
    parts = arg.split()
    if len(parts) < 10:
        return "-ERR invalid arguments"
    min_d, max_d, tries, timeout_ms = int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3])
    _pre_answer(ch, "")  # switch_ivr_read pre-answers first
    prompt, invalid, var, regex = parts[5], parts[6], parts[7], parts[8]
    ch.vars.pop(var, None)
    ch.vars["read_result"] = "failure"
    for _ in range(max(tries, 1)):
        ch.prompts += 1
        ch.sim.played.append((ch.uuid, prompt))
        if ch.caller.hangup_at == "prompt" and ch.prompts == ch.caller.hangup_prompt:
            gevent.spawn_later(ch.caller.hangup_delay, ch.hangup, "NORMAL_CLEARING")
        ch.pause(min(ch.prompt_length(prompt), 1.0))
        keyed = ch.caller.next_keys(ch.prompts - 1)
        if not keyed:
            ch.pause(timeout_ms / 1000)
        else:
            ch.key(keyed + "#")
            if min_d <= len(keyed) <= max_d and re.fullmatch(regex, keyed):
                ch.vars[var] = keyed
                ch.vars["read_result"] = "success"
                ch.vars["read_terminator_used"] = "#"
                if ch.caller.hangup_at == "keyed" and ch.prompts == ch.caller.hangup_prompt:
                    gevent.spawn(ch.hangup, "NORMAL_CLEARING")  # as the prompt returns
                return "_none_"
        ch.sim.played.append((ch.uuid, invalid))
        ch.pause(min(ch.prompt_length(invalid), 1.0))
    return "_none_"


def _execute_on(ch: "AppChannel", prefix: str) -> None:
    """switch_channel_execute_on: every variable whose name starts with `prefix`
    holds an application and its argument (after the first space or lone
    colon), run there and then on the channel (switch_channel_execute_on_value;
    a `::` one is queued by FreeSWITCH: not simulated)."""
    for name, value in list(ch.vars.items()):
        if not name.lower().startswith(prefix) or not value:
            continue
        cut = min((i for i in (value.find(" "), value.find(":")) if i >= 0), default=len(value))
        if value[cut:cut + 2] == "::":
            continue
        app, arg = value[:cut], value[cut + 1:]
        if app in APPS:
            APPS[app](ch, arg)


def _bridge(ch: "AppChannel", arg: str) -> str:
    _execute_on(ch, "execute_on_pre_originate")  # switch_ivr_originate, before the other leg is called
    ch.sim.bridges.append((ch.uuid, arg))
    caller = ch.caller
    if caller.hangup_at == "ringing":
        ch.pause(0.5)
        ch.hangup("ORIGINATOR_CANCEL")
        raise Hungup()
    ch.pause(0.2)  # ringing
    if caller.bridge in ("busy", "no_answer"):
        cause = "USER_BUSY" if caller.bridge == "busy" else "NO_ANSWER"
        ch.vars["originate_disposition"] = cause
        if ch.state != "answered":
            ch.hangup(cause)  # fixture 09: the failure hangs the unanswered call up
            raise Hungup()
        return "_none_"
    ch.vars["originate_disposition"] = "SUCCESS"
    if ch.answered_at is None:
        ch.answered_at = time.monotonic()
    ch.state = "answered"
    ch.bridged = True
    ch.outcome = "bridged"
    ch.emit("CHANNEL_BRIDGE")
    ch.pause(caller.talk_seconds / ch.sim.scale if ch.sim.scale else 0)
    ch.emit("CHANNEL_UNBRIDGE")
    if ch.vars.get("hangup_after_bridge") == "true":
        ch.hangup("NORMAL_CLEARING")
        raise Hungup()
    return "_none_"  # back to park: the call stays up (fixture 02)


def _transfer(ch: "AppChannel", arg: str) -> str:
    ch.sim.transfers.append((ch.uuid, arg))
    ch.outcome = "transferred"
    ch.parked = False
    gevent.spawn_later(0.01, ch.hangup, "NORMAL_CLEARING")
    return "_none_"


def _hangup(ch: "AppChannel", arg: str) -> str:
    ch.hangup(arg.strip() or "NORMAL_CLEARING")
    raise Hungup()


def _sched_hangup(ch: "AppChannel", arg: str) -> str:
    """mod_dptools' `sched_hangup +SECONDS [CAUSE]`: the core's scheduler hangs the
    channel up then, whatever runs on it and whoever controls it."""
    when, _, cause = arg.strip().partition(" ")
    seconds = float(when.lstrip("+") or "0")
    if ch.sim.record:
        ch.sim.scheduled_hangups.append((ch.uuid, seconds, cause or "ALLOTTED_TIMEOUT"))
    # Like the core's scheduler task, the timer knows the channel by its uuid
    # only, and the channel's end cancels it: an hour's limit must not keep an
    # hour of ended channels alive (the benchmark places 200 a second).
    timer = gevent.get_hub().loop.timer(max(seconds * ch.sim.scale, 0.0))
    # The loop's callback must not block: the hangup (events to write) gets a greenlet.
    timer.start(gevent.spawn, ch.sim.scheduled_hangup, ch.uuid, cause.strip() or "ALLOTTED_TIMEOUT")
    ch.timers.append(timer)
    return "_none_"


def _sched_cancel(ch: "AppChannel", arg: str) -> str:
    """mod_dptools' `sched_cancel [GROUP]`: switch_scheduler_del_task_group, the
    channel's own group (its uuid: sched_hangup's tasks) when none is given."""
    group = arg.strip() or ch.uuid
    if group == ch.uuid:
        for timer in ch.timers:
            timer.close()
        ch.timers.clear()
    return "_none_"


def _sleep(ch: "AppChannel", arg: str) -> str:
    ch.pause(int(arg or "0") / 1000)
    return "_none_"


APPS = {
    "answer": _answer, "pre_answer": _pre_answer, "set": _set, "multiset": _multiset, "unset": _unset, "playback": _playback,
    "play_and_get_digits": _play_and_get_digits, "bridge": _bridge, "transfer": _transfer,
    "hangup": _hangup, "sleep": _sleep, "sched_hangup": _sched_hangup,
    "sched_cancel": _sched_cancel, "eval": lambda ch, arg: "_none_",  # mod_dptools' eval: only the expansion
}
