"""Caps on what an extension or a whole tenant may spend (issue 12), pure.

- velocity: at most `max` calls of the classes in `window` seconds, per
  extension (or per trusted caller ID) or per tenant. The store counts them in
  Redis (per limit and subject, in 60 buckets of the window: a call counts for
  the window and at most one bucket more, see store.counting) and admits a call
  atomically with the write of its verdict; the policy refuses a call when the
  count it was given has reached the limit (given none, it leaves that check to
  the admission: policies.decide.needs_counts).
- duration: a call of the classes lasts at most `seconds`; the bridge carries
  the limit, so FreeSWITCH enforces it even if no controller is left.
- concurrency: at most `max` calls of the classes at once (a hash of call ids,
  each with the time its place lapses; the end of the call frees it).
- budget: at most `minutes` of the classes a day (the tenant's day), counted
  from each call's billed seconds when it ends.
- alert: refuses nothing; counted like velocity, and the call that brings the
  count to `max` in `window` raises an alert (audited, counted, sent as a
  webhook) that suspends the tenant's chargeable calls if it chose so
  (`auto_suspend`).
Empty `classes`: every chargeable class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from policies.classes import CHARGEABLE, CallClass, parse_class
from policies.identity import Identity, IdentityKind
from policies.names import check_name

KINDS = ("velocity", "duration", "concurrency", "budget", "alert")
# How long a concurrency place is held when the end of a call is never seen (a
# controller died with it): the longest a call may last without a duration limit.
PLACE_BOUND = 4 * 3600
SCOPES = ("extension", "tenant")


@dataclass(frozen=True)
class Limit:
    name: str
    kind: str = "velocity"
    classes: tuple[CallClass, ...] = ()
    scope: str = "extension"
    max: int = 0  # velocity: calls per window
    window: int = 3600  # velocity: seconds
    seconds: int = 0  # duration: the longest call
    minutes: int = 0  # budget: minutes a day

    def applies(self, call_class: CallClass) -> bool:
        return call_class in self.classes if self.classes else call_class in CHARGEABLE

    def subject(self, identity: Identity) -> str | None:
        """Whose count: the tenant's, or the identified caller's (None: nobody's)."""
        if self.scope == "tenant":
            return "tenant"
        if identity.kind is IdentityKind.EXTENSION:
            return f"ext:{identity.number}"
        if identity.kind is IdentityKind.TRUSTED_CALLER_ID:
            return f"cid:{identity.number}"
        return None

    def describe(self) -> str:
        what = "/".join(c.value for c in self.classes) or "chargeable"
        per = "per extension" if self.scope == "extension" else "per tenant"
        if self.kind == "duration":
            return f"{what} calls last at most {self.seconds}s"
        if self.kind == "concurrency":
            return f"at most {self.max} {what} calls at once {per}"
        if self.kind == "budget":
            return f"at most {self.minutes} minutes of {what} calls a day {per}"
        if self.kind == "alert":
            return f"alert at {self.max} {what} calls in {window_text(self.window)} {per}"
        return f"at most {self.max} {what} calls in {window_text(self.window)} {per}"

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "classes": [c.value for c in self.classes]}
        if self.kind in ("velocity", "alert"):
            out.update(scope=self.scope, max=self.max, window=self.window)
        elif self.kind == "concurrency":
            out.update(scope=self.scope, max=self.max)
        elif self.kind == "budget":
            out.update(scope=self.scope, minutes=self.minutes)
        else:
            out.update(seconds=self.seconds)
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> "Limit":
        if not isinstance(data, Mapping):
            raise ValueError("a limit must be a JSON object")
        try:
            kind = str(data.get("kind", "velocity"))
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
            scope = str(data.get("scope", "extension"))
            if scope not in SCOPES:
                raise ValueError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
            limit = cls(name=check_name("limit", str(data["name"])), kind=kind,
                        classes=tuple(parse_class(str(c)) for c in data.get("classes", [])), scope=scope,
                        max=int(data.get("max", 0)), window=int(data.get("window", 3600)),
                        seconds=int(data.get("seconds", 0)), minutes=int(data.get("minutes", 0)))
        except KeyError as exc:
            raise ValueError(f"limit is missing {exc.args[0]!r}") from None
        except TypeError as exc:
            raise ValueError(f"malformed limit: {exc}") from None
        if kind in ("velocity", "alert") and not (1 <= limit.max <= 1_000_000 and 60 <= limit.window <= 31 * 86400):
            raise ValueError(f"a {kind} limit needs max 1..1000000 and window 60..2678400 seconds")
        if kind == "duration" and not 10 <= limit.seconds <= 86400:
            raise ValueError("a duration limit needs seconds 10..86400")
        if kind == "concurrency" and not 1 <= limit.max <= 100_000:
            raise ValueError("a concurrency limit needs max 1..100000")
        if kind == "budget" and not 1 <= limit.minutes <= 1440 * 1000:
            raise ValueError("a budget limit needs minutes 1..1440000")
        return limit


def count_key(limit: Limit, subject: str) -> str:
    """How a count is named between the store and the policy."""
    return f"{limit.name}|{subject}"


def window_text(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} day{'s' if seconds != 86400 else ''}"
    return f"{seconds // 60} minutes"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
