"""Time-limited authorizations (seed 000, good practice 3: "autorisations
limitées dans le temps", SPEC §3): an authorized entry may hold only from /
until an instant. Outside that window it counts as absent, on the next call,
with no job to run: the window travels with the derived indexes a call reads
(`auth:<phone>`, `ext:<n>:auth`), and the decision compares it with the
call's time.

An index value carries its window only when it has one, so that an entry
without a window reads exactly as before: `direction` (a list on a phone's
index) or `+33612345678` (a phone on an extension's), else
`direction|<from>|<until>`, epoch seconds, either side empty. Several timed
grants of one list (an extension and its caller IDs) are joined by commas.

Operators write instants as ISO 8601: a date (valid from its first minute,
until the end of the day), a local date and time (the tenant's time zone), or
either with an offset. Entries keep them in that form, with the offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping
from zoneinfo import ZoneInfo

# Instants before or after these are typing mistakes (or another unit), not dates.
EARLIEST, LATEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Grant:
    """A phone enabled on a list for a while (0: no bound on that side)."""

    phone: str
    valid_from: int = 0
    valid_until: int = 0  # the first second it no longer holds

    def holds(self, now: float) -> bool:
        return (not self.valid_from or now >= self.valid_from) and (not self.valid_until or now < self.valid_until)


def encode_grant(name: str, valid_from: int = 0, valid_until: int = 0) -> str:
    """An index value: the name alone without a window (as before windows existed)."""
    if not (valid_from or valid_until):
        return name
    return f"{name}|{valid_from or ''}|{valid_until or ''}"


def decode_grant(value: str) -> tuple[str, int, int]:
    """(name, from, until) of an index value. A corrupt window narrows the
    grant to nothing (from 2100 until 1970): a damaged value never lets
    anyone through."""
    name, bar, window = value.partition("|")
    if not bar:
        return name, 0, 0
    bounds = window.split("|")
    if len(bounds) != 2 or not any(bounds) or not all(b.isascii() and b.isdigit() for b in bounds if b):
        return name, int(LATEST.timestamp()), 1  # a window encode_grant() never writes
    return name, int(bounds[0] or 0), int(bounds[1] or 0)


def split_grants(raw: Mapping[str, str]) -> tuple[dict[str, str], dict[str, tuple[Grant, ...]]]:
    """An extension's index (list -> value) as (list -> phone) for grants
    without a window and (list -> timed grants) for the others."""
    plain, timed = {}, {}
    for lst, value in raw.items():
        if "|" not in value:
            plain[lst] = value
            continue
        timed[lst] = tuple(Grant(*decode_grant(v)) for v in value.split(","))
    return plain, timed


def find_grant(plain: Mapping[str, str], timed: Mapping[str, tuple[Grant, ...]], lists: tuple[str, ...],
               now: float) -> tuple[str | None, str | None, tuple[str, Grant] | None]:
    """(list, phone) of the first of `lists` the caller is enabled on now, else
    (None, None, the first (list, grant) whose window is why it is not)."""
    lapsed = None
    for lst in lists:
        if lst in plain:
            return lst, plain[lst], None
        for grant in timed.get(lst, ()):
            if grant.holds(now):
                return lst, grant.phone, None
            lapsed = lapsed or (lst, grant)
    return None, None, lapsed


def parse_instant(text: str, zone: ZoneInfo | None, *, end: bool = False) -> int:
    """Epoch seconds of what an operator typed ('' -> 0, no bound). A date
    alone is its start, or with `end` the start of the next day (valid until
    2026-06-30: through that day). ValueError names what is accepted."""
    text = (text or "").strip()
    if not text:
        return 0
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-06-30, 2026-06-30T18:00 or with an offset, "
                         f"2026-06-30T18:00+02:00)") from None
    if len(text) == 10 and end:  # a date alone: through the end of that day
        when += dt.timedelta(days=1)
    if when.tzinfo is None:
        if zone is None:
            raise ValueError(f"{text!r} needs its UTC offset (2026-06-30T18:00+02:00): the tenant's country "
                             f"has several time zones and no timezone is set")
        when = when.replace(tzinfo=zone)
    if not EARLIEST <= when < LATEST:
        raise ValueError(f"{text!r} is not between 2000 and 2100")
    return int(when.timestamp())


def iso(epoch: int, zone: ZoneInfo | None) -> str:
    """How an entry keeps an instant: ISO 8601 with its offset, in the tenant's zone."""
    return dt.datetime.fromtimestamp(epoch, zone or dt.timezone.utc).isoformat(timespec="seconds") if epoch else ""


def epoch(text: str) -> int:
    """An entry's stored instant (iso()) as epoch seconds; 0 for none."""
    return int(dt.datetime.fromisoformat(text).timestamp()) if text else 0


def describe(epoch_s: int, zone: ZoneInfo | None) -> str:
    """An instant for an explanation: 2026-07-01 00:00 Europe/Paris."""
    when = dt.datetime.fromtimestamp(epoch_s, zone or dt.timezone.utc)
    return f"{when:%Y-%m-%d %H:%M} {zone or 'UTC'}"
