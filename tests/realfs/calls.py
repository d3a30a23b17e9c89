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
        if self.frozen is not None:
            return self.frozen["b_uuid"]
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

    frozen: dict | None = None  # what is kept of a call once judged and forgotten (a soak's memory)

    @property
    def reached_tollgate(self) -> bool:
        if self.frozen is not None:
            return self.frozen["reached"]
        return any(app == "set" and data == "tollgate_managed=true" for app, data in self.applications())

    @property
    def outcome(self) -> str:
        if self.frozen is not None:
            return self.frozen["outcome"]
        return "bridged" if self.carrier_got else (self.cause or "?")

    def freeze(self) -> None:
        self.frozen = {"b_uuid": self.b_uuid, "reached": self.reached_tollgate, "outcome": self.outcome}
        self.events = []

    def ended(self) -> bool:
        if self.frozen is not None:
            return True
        created = {e.get("Unique-ID") for e in self.events if e.get("Event-Name") == "CHANNEL_CREATE"}
        done = {e.get("Unique-ID") for e in self.events if e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"}
        return bool(created) and created <= done and self.a_uuid in done



# What is kept of an event: enough to judge, little enough for a soak's 10,000 calls.
KEPT = ("Event-Name", "Unique-ID", "Channel-Name", "Call-Direction", "Application", "Application-Data",
        "Hangup-Cause", "Event-Date-Timestamp", "variable_carrier_got", "variable_billsec")


class Phones:
    """Places the test's calls and plays each caller's script as FreeSWITCH reports progress.

    `secrets`: PINs that will be keyed; every leg's CDR (CHANNEL_HANGUP_COMPLETE
    variables) is searched for them as it arrives, and what is found is kept in
    `leaks`."""

    def __init__(self, fs: FreeSwitch, secrets: tuple[str, ...] = (), watched: tuple[str, ...] = WATCHED):
        self.fs = fs
        self.secrets = secrets
        self.leaks: list[tuple[str, str]] = []
        self.cdrs = 0  # CHANNEL_HANGUP_COMPLETE events searched
        self.calls: dict[str, Call] = {}
        self.others: list[dict] = []  # events of channels no test call placed
        self.pending: list[gevent.Greenlet] = []  # a caller's later actions
        self.conn = fs.connect(self._event, events=watched)

    def close(self) -> None:
        gevent.killall(self.pending)
        self.conn.close()

    def _event(self, headers: dict) -> None:
        # The connection's reader: only route, never block (see controller.freeswitch.esl).
        call = self.calls.get(headers.get(TAG, ""))
        if call is None:
            if headers.get("Event-Name") != "BACKGROUND_JOB":
                self.others.append(dict(headers))
            return
        if headers.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE":
            self.cdrs += 1
            self.leaks += [(k, v) for k, v in headers.items()
                           if k.startswith("variable_") and any(p in v for p in self.secrets)]
        kept = {k: v for k, v in headers.items() if k in KEPT or k.startswith("variable_tollgate_")}
        # When it reached us: FreeSWITCH's own Event-Date-Timestamp moves in 20 ms
        # steps without its 1 ms timer (runtime.microseconds_per_tick).
        kept["_received"] = time.monotonic()
        call.events.append(kept)
        if headers.get("Event-Name") == "CHANNEL_EXECUTE" and headers.get("Application") == "play_and_get_digits" \
                and headers.get("Channel-Name", "").startswith("sofia/internal/"):
            call.prompts += 1
            self.pending.append(gevent.spawn(self._at_prompt, call, call.prompts))

    def _at_prompt(self, call: Call, n: int) -> None:
        gevent.sleep(0.3)
        if call.script.hangup_at_prompt:
            self.api(f"uuid_kill {call.a_uuid}")
        elif n <= len(call.script.keys) and call.script.keys[n - 1]:
            # RFC 2833 from the phone, across the SIP leg, into the prompt.
            self.api(f"uuid_send_dtmf {call.a_uuid} {call.script.keys[n - 1]}#")

    def hang_up(self, call: Call) -> None:
        if not call.ended():
            self.api(f"uuid_kill {call.a_uuid}")

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
            self.pending.append(gevent.spawn_later(call.script.hangup_after, self.hang_up, call))
        return call

    def forget_ended(self) -> None:
        for call in self.calls.values():
            if call.frozen is None and call.ended():
                call.freeze()

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

