"""Placing calls on the real test bed and reading what FreeSWITCH reports.

A call is placed from a phone (a gateway of the `phones` profile, digest auth
towards the stock `internal` profile) with `originate ... &park()`. Every leg
of one test call carries the SIP header X-Tg-Call (sofia copies custom X-
headers to the bridged leg), which the watcher uses to group FreeSWITCH's
events by call. Tollgate never reads it. The judge is only what FreeSWITCH
reports: the PBX leg's applications, bridge and hangup cause, the carrier's
`carrier_got`, and every leg's final variables.
"""

from __future__ import annotations

import itertools
import time
import uuid as uuidlib
from collections import defaultdict
from dataclasses import dataclass, field

import gevent

from tests.realfs.bed import WATCHED, FreeSwitch

TAG = "variable_sip_h_X-Tg-Call"
_IDS = itertools.count(1)


@dataclass
class Script:
    """What the person at the phone does."""
    keys: list[str] = field(default_factory=list)  # keyed at each PIN prompt, '#' added
    hangup_at_prompt: bool = False  # hang up 0.3 s into the first prompt
    hangup_after: float | None = None  # hang up this many seconds after placing the call


@dataclass
class Call:
    tag: str
    phone: str
    dialed: str
    script: Script
    a_uuid: str
    placed: float = 0.0
    events: list[dict] = field(default_factory=list)
    prompts: int = 0

    def legs(self, prefix: str) -> list[dict]:
        """Final variables (CHANNEL_HANGUP_COMPLETE) of the legs whose channel name starts so."""
        return [e for e in self.events if e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                and e.get("Channel-Name", "").startswith(prefix)]

    @property
    def pbx(self) -> dict | None:
        """The PBX leg (B): the internal profile's inbound channel that ran the dialplan."""
        legs = [e for e in self.legs("sofia/internal/") if e.get("Call-Direction") == "inbound"]
        return legs[0] if legs else None

    @property
    def carrier_got(self) -> str | None:
        got = [e.get("variable_carrier_got") for e in self.legs("sofia/world/")]
        return got[0] if got else None

    @property
    def cause(self) -> str:
        return (self.pbx or {}).get("Hangup-Cause", "")

    def applications(self) -> list[tuple[str, str]]:
        """(application, data) the PBX leg ran, in order."""
        b = self.b_uuid
        return [(e.get("Application", ""), e.get("Application-Data", "")) for e in self.events
                if e.get("Event-Name") == "CHANNEL_EXECUTE" and e.get("Unique-ID") == b]

    @property
    def b_uuid(self) -> str:
        for e in self.events:
            if e.get("Event-Name") == "CHANNEL_CREATE" and e.get("Channel-Name", "").startswith("sofia/internal/") \
                    and e.get("Call-Direction") == "inbound":
                return e.get("Unique-ID", "")
        return ""

    def prompts_played(self) -> list[str]:
        """Prompt files the PBX leg played (playback, play_and_get_digits), by name."""
        out = []
        for app, data in self.applications():
            if app == "playback":
                out.append(data.rsplit("/", 1)[-1].removesuffix(".wav"))
            elif app == "play_and_get_digits":
                out.append(data.split()[5].rsplit("/", 1)[-1].removesuffix(".wav"))
        return out

    def ended(self) -> bool:
        created = {e.get("Unique-ID") for e in self.events if e.get("Event-Name") == "CHANNEL_CREATE"}
        done = {e.get("Unique-ID") for e in self.events if e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"}
        return bool(created) and created <= done and self.a_uuid in done

    def final_variables(self) -> list[tuple[str, str]]:
        """Every leg's CDR (its CHANNEL_HANGUP_COMPLETE variables)."""
        return [(k, v) for e in self.events if e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
                for k, v in e.items() if k.startswith("variable_")]


class Phones:
    """Places the test's calls and plays each caller's script as FreeSWITCH reports progress."""

    def __init__(self, fs: FreeSwitch):
        self.fs = fs
        self.calls: dict[str, Call] = {}
        self.others: list[dict] = []  # events of channels no test call placed
        self.conn = fs.connect(self._event, events=WATCHED)

    def close(self) -> None:
        self.conn.close()

    def _event(self, headers: dict) -> None:
        # The connection's reader: only route, never block (see controller.esl).
        call = self.calls.get(headers.get(TAG, ""))
        if call is None:
            if headers.get("Event-Name") != "BACKGROUND_JOB":
                self.others.append(dict(headers))
            return
        call.events.append(dict(headers))
        if headers.get("Event-Name") == "CHANNEL_EXECUTE" and headers.get("Application") == "play_and_get_digits" \
                and headers.get("Channel-Name", "").startswith("sofia/internal/"):
            call.prompts += 1
            gevent.spawn(self._at_prompt, call, call.prompts)

    def _at_prompt(self, call: Call, n: int) -> None:
        gevent.sleep(0.3)
        if call.script.hangup_at_prompt:
            self.api(f"uuid_kill {call.a_uuid}")
        elif n <= len(call.script.keys) and call.script.keys[n - 1]:
            # RFC 2833 from the phone, across the SIP leg, into the prompt.
            self.api(f"uuid_send_dtmf {call.a_uuid} {call.script.keys[n - 1]}#")

    def api(self, command: str) -> str:
        return self.conn.api(f"api {command}", timeout=10)

    def place(self, phone: str, dialed: str, script: Script | None = None, caller_id: str | None = None) -> Call:
        tag = f"t{next(_IDS)}-{uuidlib.uuid4().hex[:8]}"
        a = str(uuidlib.uuid4())
        call = Call(tag, phone, dialed, script or Script(), a, placed=time.monotonic())
        self.calls[tag] = call
        variables = [f"origination_uuid={a}", "ignore_early_media=true", "originate_timeout=60",
                     f"sip_h_X-Tg-Call={tag}", f"origination_caller_id_number={caller_id or phone}"]
        reply = self.conn.send(f"bgapi originate {{{','.join(variables)}}}sofia/gateway/ext{phone}/{dialed} &park()")
        assert reply.startswith("+OK"), reply
        if call.script.hangup_after is not None:
            gevent.spawn_later(call.script.hangup_after, self.api, f"uuid_kill {a}")
        return call

    def wait_all(self, calls: list[Call], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.ended() for c in calls):
                return True
            gevent.sleep(0.1)
        return False

    def channel_count(self) -> int:
        return int(self.api("show channels count").split()[0])

    def wait_no_channels(self, timeout: float) -> float | None:
        """Seconds until `show channels count` says 0, None if it never does in time."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.channel_count() == 0:
                return time.monotonic() - start
            gevent.sleep(0.1)
        return None


def leaked_pins(calls: list[Call], pins: list[str]) -> list[tuple[str, str]]:
    """CDR variables of any leg that hold a PIN that was keyed."""
    return [(k, v) for c in calls for k, v in c.final_variables() if any(p in v for p in pins)]


def events_by_uuid(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        out[e.get("Unique-ID", "")].append(e)
    return out
