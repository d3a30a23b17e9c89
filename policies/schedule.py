"""When a rule holds (issue 12): weekdays, hours and public holidays, in the
tenant's time zone (`zoneinfo`). Pure: the caller passes the time.

A schedule is written the way an operator says it: days `mon-fri` (or
`mon,wed,sat`), hours `08:00-18:00` (a window past midnight, `22:00-06:00`,
belongs to the day it starts on), and holidays as ISO dates on which the
window does not hold at all.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


@dataclass(frozen=True)
class Schedule:
    days: tuple[int, ...] = tuple(range(7))  # 0 = Monday
    start: int = 0  # minutes after midnight
    end: int = 24 * 60  # exclusive; < start: the window runs past midnight
    holidays: tuple[str, ...] = ()  # ISO dates on which the window does not hold

    def holds(self, local: dt.datetime) -> bool:
        # Keyed by the wall clock alone: two aware datetimes of one instant in
        # two zones are equal (and hash alike), and their answers are not.
        return _holds(self, local.replace(tzinfo=None))

    def describe(self) -> str:
        days = ",".join(DAYS[d] for d in self.days) if len(self.days) < 7 else "every day"
        text = f"{days} {_hhmm(self.start)}-{_hhmm(self.end)}"
        return text + (f" except {', '.join(self.holidays)}" if self.holidays else "")

    def to_json(self) -> dict:
        return {"days": [DAYS[d] for d in self.days], "hours": f"{_hhmm(self.start)}-{_hhmm(self.end)}",
                "holidays": list(self.holidays)}

    @classmethod
    def from_json(cls, data) -> "Schedule":
        if not isinstance(data, dict):
            raise ValueError("a schedule must be a JSON object")
        days, hours, holidays = data.get("days", list(DAYS)), data.get("hours", "00:00-24:00"), \
            data.get("holidays", [])
        for name, value in (("days", days), ("holidays", holidays)):
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise ValueError(f"a schedule's {name} must be a list of strings, got {value!r}")
        if not isinstance(hours, str):
            raise ValueError(f"a schedule's hours must be a string, got {hours!r}")
        return parse(",".join(days), hours, ",".join(holidays))


@lru_cache(maxsize=1024)
def _holds(s: Schedule, local: dt.datetime) -> bool:
    """Schedule.holds, once per schedule and local minute: every call of a
    minute asks the same question (`local`: the wall clock, no zone)."""
    minute = local.hour * 60 + local.minute
    if s.start <= s.end:
        day, inside = local.date(), s.start <= minute < s.end
    elif minute >= s.start:  # the evening part of an overnight window
        day, inside = local.date(), True
    else:  # the morning part belongs to the day before
        day, inside = local.date() - dt.timedelta(days=1), minute < s.end
    return inside and day.weekday() in s.days and day.isoformat() not in s.holidays


def parse(days: str = "", hours: str = "", holidays: str = "") -> Schedule:
    """From an operator's words; ValueError with a one-line reason."""
    return Schedule(days=_days(days) if days.strip() else tuple(range(7)), **_hours(hours or "00:00-24:00"),
                    holidays=_holidays(holidays))


def _days(text: str) -> tuple[int, ...]:
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"days {text!r}: use mon..sun, lists (mon,wed) and ranges (mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return tuple(sorted(out))


def _hours(text: str) -> dict:
    m = _HOURS.match(text.strip())
    if not m:
        raise ValueError(f"hours {text!r}: use HH:MM-HH:MM, e.g. 08:00-18:00 or 22:00-06:00")
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if end > 24 * 60 or start == end:
        raise ValueError(f"hours {text!r}: an empty or impossible window")
    return {"start": start, "end": end}


def _holidays(text: str) -> tuple[str, ...]:
    out = set()
    for part in text.replace(" ", "").split(","):
        if part:
            try:
                out.add(dt.date.fromisoformat(part).isoformat())
            except ValueError:
                raise ValueError(f"holiday {part!r}: use an ISO date, e.g. 2026-12-25") from None
    return tuple(sorted(out))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def check_zone(name: str) -> str:
    """A tenant's `timezone` setting: an IANA name, or '' for its country's own."""
    name = str(name).strip()
    if name and name not in _zones():
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)")
    return name


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=512)
def zone_for(setting: str, country: str) -> ZoneInfo | None:
    """The setting, or the one zone libphonenumber knows for the country's calling
    code; None where the country has several (the tenant must say which)."""
    if setting:
        try:
            return ZoneInfo(setting)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    import phonenumbers
    from phonenumbers import tzdata

    code = str(phonenumbers.country_code_for_region(country))
    zones = {z for prefix, names in tzdata.TIMEZONE_DATA.items() if prefix.startswith(code) for z in names}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else None


@lru_cache(maxsize=256)
def local_minute(minute: int, setting: str, country: str) -> tuple[dt.datetime, str]:
    """The start of a minute (since the epoch) in the tenant's zone, and the
    zone's name: UTC where the country has several zones and none is set.
    Cached: every call of a minute asks (a schedule, a budget's day). Every
    zone's offset has been whole minutes since 1972, so the minute's start has
    the same local date and HH:MM as any instant in it."""
    zone = zone_for(setting, country)
    start = dt.datetime.fromtimestamp(minute * 60, dt.timezone.utc)
    return (start.astimezone(zone), str(zone)) if zone else (start, "UTC")
