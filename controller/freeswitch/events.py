"""Raw Event Socket headers -> small typed events.

The call flow never sees a raw header dict. Parsing keeps only the fields the
flow uses; in particular the PIN digits variable is taken out into a `Secret`
(whose repr hides it) and `digits_dialed` is dropped, so an event that ends up
in a log line or a traceback cannot carry a PIN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

PIN_VARIABLE = "tollgate_pin_input"
MANAGED_VARIABLE = "tollgate_managed"
# Its value once FreeSWITCH has the call's bridge: the Event Socket filter
# (tollgate_managed=true) stops sending that channel's events from then on.
HANDED_OVER = "done"
# ... and what the hangup hook of a call whose end we must see (it holds a
# concurrency place or spends a budget) sets, so that its CHANNEL_HANGUP_COMPLETE,
# and nothing else after the bridge, passes the filter.
ENDED = "ended"

# What the controller subscribes to (and nothing else).
SUBSCRIBED = (
    "CHANNEL_PARK",
    "CHANNEL_EXECUTE_COMPLETE",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
)


class Secret:
    """Holds digits keyed by a caller; never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Event:
    uuid: str


@dataclass(frozen=True, slots=True)
class ChannelPark(Event):
    managed: bool
    tenant: str
    dialed: str
    extension: str  # the directory user FreeSWITCH authenticated; '' when none
    caller_id: str  # presented by the caller: never an identity on its own
    language: str = ""
    country: str = ""
    answered: bool = False
    source: str = ""  # the gateway/trunk the dialplan says the call came through
    unattended: str = ""  # forward | transfer | originated: nobody at the phone placed it


@dataclass(frozen=True, slots=True)
class ExecuteComplete(Event):
    application: str
    app_uuid: str
    response: str
    read_result: str = ""
    digits: Secret = field(default_factory=lambda: Secret(""))
    originate_disposition: str = ""
    answered: bool = False


@dataclass(frozen=True, slots=True)
class Answer(Event):
    pass


@dataclass(frozen=True, slots=True)
class Bridge(Event):
    pass


@dataclass(frozen=True, slots=True)
class Hangup(Event):
    cause: str
    complete: bool = False  # CHANNEL_HANGUP_COMPLETE (the channel's variables are final)
    # Seconds billed from the answer: FreeSWITCH's on CHANNEL_HANGUP_COMPLETE; on
    # CHANNEL_HANGUP, the same computed as of the hangup (_billsec_at_hangup).
    billsec: int = 0


@dataclass(frozen=True, slots=True)
class Disconnected(Event):
    """The Event Socket went away (uuid is empty, or the session's in socket mode)."""

    reason: str
    source: object = None  # the connection that went away (None: the session's own)


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The end of a bridged call that holds a concurrency place or spends a budget
    (CHANNEL_HANGUP_COMPLETE of a channel marked `tollgate_counted`)."""

    tenant: str
    counted: str
    billsec: int


def hangup_complete_counted(h: Mapping[str, str], uuid: str) -> CallEnded | None:
    """The end of a counted call, from a CHANNEL_HANGUP_COMPLETE whose Unique-ID
    the dispatcher already read (every header looked up is a scan of ~4 KB of
    variables); None for a call that counted nothing."""
    counted = _get(h, "variable_tollgate_counted")
    if not counted or not uuid:
        return None
    return CallEnded(uuid, _get(h, "variable_tollgate_tenant"), counted, _billsec(h))


def _billsec(h: Mapping[str, str]) -> int:
    try:
        return max(int(_get(h, "variable_billsec") or "0"), 0)
    except ValueError:
        return 0


class MalformedEvent(ValueError):
    """An event without the headers every channel event has."""


def _get(h: Mapping[str, str], name: str) -> str:
    value = h.get(name, "")
    return value if isinstance(value, str) else str(value)


def parse(h: Mapping[str, str]) -> Event | None:
    """A typed event, None for events the flow does not use; MalformedEvent if unusable."""
    name = _get(h, "Event-Name")
    if name not in _PARSERS:
        if name == "" and _get(h, "Content-Type") == "text/disconnect-notice":
            return Disconnected("", "disconnect notice")
        return None
    uuid = _get(h, "Unique-ID")
    if not uuid:
        raise MalformedEvent(f"{name} without Unique-ID")
    return _PARSERS[name](uuid, h)


def authenticated_extension(h: Mapping[str, str]) -> str:
    """The extension FreeSWITCH vouches for, never the presented caller ID.

    `tollgate_extension` is what the dialplan set from `${user_name}` (see
    freeswitch-conf/); without it, the directory user of a call that sofia
    authenticated (`sip_authorized=true`, set on digest or ACL authentication,
    with `user_name` from the directory). Caller-ID, From and any SIP header
    are the caller's to write: they never name the extension.
    """
    ext = _get(h, "variable_tollgate_extension")
    if ext:
        return ext
    if _get(h, "variable_sip_authorized") == "true":
        return _get(h, "variable_user_name")
    return ""


UNATTENDED = ("forward", "transfer", "originated")


def unattended_kind(h: Mapping[str, str]) -> str:
    """Why nobody at a phone is placing this call, from what FreeSWITCH reports.

    The dialplan says so first (`tollgate_unattended`, set where it forwards a
    call or an application originates one). Without it, FreeSWITCH's own marks:
    `transfer_source` (switch_ivr_session_transfer, e.g. `<epoch>:<uuid>:bl_xfer:
    <dest>/<context>/XML`) and sofia's `sip_refer_to` for a transfer; an
    incoming Diversion or History-Info header (`sip_h_Diversion`,
    `sip_history_info`) for a forward. Headers are the caller's to write, but
    they can only make a call stricter (no PIN possible), never looser.
    """
    said = _get(h, "variable_tollgate_unattended")
    if said in UNATTENDED:
        return said
    if said:
        return "originated"  # an unknown word from the dialplan: the strictest reading
    if _get(h, "variable_transfer_source") or _get(h, "variable_sip_refer_to"):
        return "transfer"
    if _get(h, "variable_sip_h_Diversion") or _get(h, "variable_sip_history_info"):
        return "forward"
    return ""


def _park(uuid: str, h: Mapping[str, str]) -> ChannelPark:
    return ChannelPark(
        uuid=uuid,
        managed=_get(h, "variable_" + MANAGED_VARIABLE) == "true",
        tenant=_get(h, "variable_tollgate_tenant"),
        dialed=_get(h, "variable_tollgate_dialed") or _get(h, "Caller-Destination-Number"),
        extension=authenticated_extension(h),
        caller_id=_get(h, "Caller-Caller-ID-Number"),
        source=_get(h, "variable_tollgate_source"),
        unattended=unattended_kind(h),
        language=_get(h, "variable_tollgate_language"),
        country=_get(h, "variable_tollgate_country"),
        answered=_get(h, "Answer-State") == "answered",
    )


def _complete(uuid: str, h: Mapping[str, str]) -> ExecuteComplete:
    return ExecuteComplete(
        uuid=uuid,
        application=_get(h, "Application"),
        app_uuid=_get(h, "Application-UUID"),
        response=_get(h, "Application-Response"),
        read_result=_get(h, "variable_read_result"),
        digits=Secret(_get(h, "variable_" + PIN_VARIABLE)),
        originate_disposition=_get(h, "variable_originate_disposition"),
        answered=_get(h, "Answer-State") == "answered",
    )


def _billsec_at_hangup(h: Mapping[str, str]) -> int:
    """What FreeSWITCH will bill, computed from CHANNEL_HANGUP the way
    switch_channel_set_timestamps does (whole epoch seconds: hung up minus
    answered), with the event's own time as the hangup's. A static socket
    session never gets CHANNEL_HANGUP_COMPLETE: the channel reports only once
    the socket application has returned. FreeSWITCH stamps the hangup when it
    processes it (switch_core_session_hangup_state), a few milliseconds later,
    on the same clock of 20 ms steps: a second apart only when a second starts
    in between."""
    try:
        answered = int(_get(h, "Caller-Channel-Answered-Time") or 0)
        now = int(_get(h, "Event-Date-Timestamp") or 0)
    except ValueError:
        return 0
    if answered <= 0 or now <= 0:
        return 0
    return max(0, now // 1_000_000 - answered // 1_000_000)


_PARSERS = {
    "CHANNEL_PARK": _park,
    "CHANNEL_EXECUTE_COMPLETE": _complete,
    "CHANNEL_ANSWER": lambda u, h: Answer(u),
    "CHANNEL_BRIDGE": lambda u, h: Bridge(u),
    "CHANNEL_HANGUP": lambda u, h: Hangup(u, _get(h, "Hangup-Cause") or "NORMAL_CLEARING",
                                          billsec=_billsec_at_hangup(h)),
    "CHANNEL_HANGUP_COMPLETE": lambda u, h: Hangup(u, _get(h, "Hangup-Cause") or "NORMAL_CLEARING", True,
                                                   _billsec(h)),
}


def channel_data(h: Mapping[str, str]) -> ChannelPark:
    """The channel a `socket` session (or a recovery scan) is about, from its headers."""
    uuid = _get(h, "Unique-ID") or _get(h, "variable_uuid")
    if not uuid:
        raise MalformedEvent("channel data without Unique-ID")
    return _park(uuid, h)
