"""The values a decision is made from and the decision itself.

Tenant and extension settings are parsed here from the flat string mappings an
operator writes (CLI flags, Redis hashes), so that one place says what a valid
value is. Parsing raises ValueError with the field's name; callers turn that
into their own one-line error.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Mapping

from policies.classes import CallClass, parse_class
from policies.identity import UNKNOWN_CALLER, Identity
from policies.limits import Limit
from policies.names import NAME_RE, check_name  # noqa: F401 (the model's checks, with check_text below)
from policies.patterns import check_pattern
from policies.regions import DEFAULT_HIGH_RISK, Destinations, check_region, describe, destinations, expand
from policies.schedule import Schedule, check_zone
from policies.validity import Grant

LANGUAGES = ("en", "fr", "de")
# Characters that change how the text around them is shown: bidirectional
# embeddings, overrides and isolates, and the direction marks.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def check_text(kind: str, value: object, longest: int = 80) -> str:
    """A person's words (first and last names, a PIN holder, a label), trimmed:
    one line, no control characters (NUL, line breaks...) and no bidi controls,
    which make a name read differently on a page or in a CSV than it is."""
    if not isinstance(value, str):
        raise ValueError(f"{kind} must be a string, got {type(value).__name__}")
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in BIDI_CONTROLS), None)
    if bad is not None:
        raise ValueError(f"{kind} {value!r} contains the control character U+{ord(bad):04X}")
    v = value.strip()
    if len(v) > longest:
        raise ValueError(f"{kind} is at most {longest} characters")
    return v


def check_flag(kind: str, value: object) -> bool:
    """A JSON boolean: "false" is not one (it would read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{kind} must be true or false, got {value!r}")
    return value


def check_strings(kind: str, value: object) -> tuple[str, ...]:
    """A JSON list of strings: a lone string is not one (it would be read letter by letter)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
        raise ValueError(f"{kind} must be a list of strings, got {value!r}")
    return tuple(value)


def _bool(value: str) -> bool:
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected on/off, got {value!r}")


def _int(lo: int, hi: int):
    def parse(value: str) -> int:
        try:
            n = int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if not lo <= n <= hi:
            raise ValueError(f"{n} is outside {lo}..{hi}")
        return n

    return parse


def _choice(*choices: str):
    def parse(value: str) -> str:
        v = str(value).strip().lower()
        if v not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return v

    return parse


def _country(value: str) -> str:
    import phonenumbers

    v = str(value).strip().upper()
    if v not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown ISO 3166 country code {value!r}")
    return v


def _prefix(value: str) -> str:
    v = str(value).strip()
    if v and not v.isdigit():
        raise ValueError(f"outside-line prefix must be digits, got {value!r}")
    if len(v) > 4:
        raise ValueError("outside-line prefix is at most 4 digits")
    return v


def _route(value: str) -> str:
    v = str(value).strip()
    if not v:
        raise ValueError("route must not be empty")
    if "\n" in v or "\r" in v:
        raise ValueError("route must be one line")
    # Only the documented placeholders; a typo must fail now, not on a live call.
    # `${var}` is FreeSWITCH's own channel-variable expansion: left alone.
    for name in re.findall(r"(?<!\$)\{([^{}]*)\}", v):
        if name not in ROUTE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}} in route (use {', '.join(sorted(ROUTE_FIELDS))})"
            )
    return v


def _high_risk(value: str) -> str:
    """The tenant's high-risk destinations, stored as written (prefixes first)."""
    return describe(destinations(str(value)))


def _names(value: str) -> str:
    """A comma-separated set of names (gateways, trunks), stored sorted."""
    names = sorted({check_name("source", x.strip()) for x in str(value).split(",") if x.strip()})
    return ",".join(names)


ROUTE_FIELDS = frozenset({"e164", "dialed", "national", "gateway", "tenant", "extension"})


class Verdict(str, Enum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    CHALLENGE = "CHALLENGE"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TenantSettings:
    """SPEC §9, tenant settings. Defaults are the SPEC's."""

    country: str = "FR"
    outside_line_prefix: str = ""
    internal_pattern: str = ""
    service_pattern: str = r"^\*\d+$"
    language: str = "en"
    pin_feature: bool = False
    pin_min_length: int = 4
    pin_max_length: int = 12
    pin_tries: int = 3
    pin_timeout_ms: int = 5000
    pin_interdigit_ms: int = 3000
    lockout_failures: int = 5
    lockout_seconds: int = 900
    answer_mode: str = "answer"
    route: str = "sofia/gateway/{gateway}/{e164}"
    # Marked calls to extensions and feature codes stay on the PBX.
    internal_route: str = "user/{dialed}@${domain_name}"
    gateway: str = "default"
    default_action: str = "allow"
    fail_mode: str = "closed"
    # Gateways / trunks (the dialplan's `tollgate_source`) whose presented caller
    # ID may identify a caller on the lists. None by default: a caller ID is
    # what a fraudster sets first.
    trusted_sources: str = ""
    # IANA zone for rule schedules and daily counts; '' = the country's only zone.
    timezone: str = ""
    # An alert limit that fires suspends the tenant's chargeable calls (off: it only alerts).
    auto_suspend: bool = False
    # Lockouts that raise an alert: this many (0: never) within lockout_alert_window seconds.
    lockout_alert: int = 0
    lockout_alert_window: int = 3600
    # Destinations a PIN guards (pin) or that are refused (deny) whatever the
    # rules allow: E.164 prefixes and regions (policies.regions).
    high_risk: str = DEFAULT_HIGH_RISK
    high_risk_action: str = "deny"

    @property
    def trusted_source_set(self) -> frozenset[str]:
        return frozenset(x for x in self.trusted_sources.split(",") if x)

    @property
    def high_risk_list(self) -> Destinations:
        return destinations(self.high_risk)  # parsed once per distinct text (cached)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> "TenantSettings":
        """Build from stored strings; unknown fields are ignored (newer writers)."""
        values = {}
        for f in fields(cls):
            if f.name in raw:
                try:
                    values[f.name] = TENANT_PARSERS[f.name](raw[f.name])
                except ValueError as exc:
                    raise ValueError(f"{f.name}: {exc}") from None
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.pin_min_length > self.pin_max_length:
            raise ValueError("pin_min_length is greater than pin_max_length")

    def to_mapping(self) -> dict[str, str]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = ("on" if v else "off") if isinstance(v, bool) else str(v)
        return out

    def with_changes(self, raw: Mapping[str, str]) -> "TenantSettings":
        merged = self.to_mapping()
        unknown = set(raw) - set(merged)
        if unknown:
            raise ValueError(
                f"unknown tenant setting {sorted(unknown)[0]!r} "
                f"(settings: {', '.join(sorted(merged))})"
            )
        merged.update(raw)
        return TenantSettings.from_mapping(merged)


TENANT_PARSERS = {
    "country": _country,
    "outside_line_prefix": _prefix,
    "internal_pattern": check_pattern,
    "service_pattern": check_pattern,
    "language": _choice(*LANGUAGES),
    "pin_feature": _bool,
    "pin_min_length": _int(4, 12),
    "pin_max_length": _int(4, 12),
    "pin_tries": _int(1, 10),
    "pin_timeout_ms": _int(1000, 60000),
    "pin_interdigit_ms": _int(500, 30000),
    "lockout_failures": _int(1, 100),
    "lockout_seconds": _int(10, 86400 * 7),
    "answer_mode": _choice("answer", "pre_answer"),
    "route": _route,
    "internal_route": _route,
    "gateway": lambda v: check_name("gateway", str(v).strip()),
    "default_action": _choice("allow", "deny"),
    "fail_mode": _choice("closed", "open"),
    "trusted_sources": _names,
    "timezone": check_zone,
    "auto_suspend": _bool,
    "lockout_alert": _int(0, 1000),
    "lockout_alert_window": _int(60, 86400 * 7),
    "high_risk": _high_risk,
    "high_risk_action": _choice("pin", "deny"),
}


@dataclass(frozen=True)
class Extension:
    """SPEC §9, extension settings. `pins` maps holder name -> stored hash."""

    number: str
    pin_enabled: bool = False
    language: str = ""
    caller_ids: tuple[str, ...] = ()
    pins: Mapping[str, str] = field(default_factory=dict)
    display_name: str = ""


@dataclass(frozen=True)
class Rule:
    """SPEC §3. Empty `classes` and `prefixes` together match every number."""

    name: str
    action: str = "deny"
    classes: tuple[CallClass, ...] = ()
    prefixes: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    pin: bool = False
    enabled: bool = True
    # Also allows calls nobody at the phone placed (forwards, transfers, calls
    # the PBX originates): without it, such a call that would need a PIN is refused.
    unattended: bool = False
    schedule: Schedule | None = None  # holds only in this window (tenant's time zone)
    # Destination regions (ISO 3166, groups such as EU, 001 non-geographic;
    # policies.regions): only numbers of these / not numbers of those.
    regions: tuple[str, ...] = ()
    except_regions: tuple[str, ...] = ()

    def matches(self, call_class: CallClass, e164: str | None, region: str | None = None) -> bool:
        if not self.enabled:
            return False
        if self.classes and call_class not in self.classes:
            return False
        if self.prefixes:
            if not e164 or not any(e164.startswith(p) for p in self.prefixes):
                return False
        # A number without a region (unreadable) is in no set: an allow rule
        # naming regions does not let it through, a deny "except" rule catches it.
        if self.regions and region not in expand(self.regions):
            return False
        if self.except_regions and region in expand(self.except_regions):
            return False
        return True

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "action": self.action,
            "classes": [c.value for c in self.classes],
            "prefixes": list(self.prefixes),
            "lists": list(self.lists),
            "pin": self.pin,
            "enabled": self.enabled,
            **({"unattended": True} if self.unattended else {}),
            **({"schedule": self.schedule.to_json()} if self.schedule else {}),
            **({"regions": list(self.regions)} if self.regions else {}),
            **({"except_regions": list(self.except_regions)} if self.except_regions else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "Rule":
        if not isinstance(data, Mapping):
            raise ValueError("a rule must be a JSON object")
        # One typed reading for every writer (the API's POST and PATCH, the
        # pages, the CLI) and for what is stored: JSON types, not truthiness.
        if "name" not in data:
            raise ValueError("rule is missing 'name'")
        action = data.get("action", "deny")
        if not isinstance(action, str):
            raise ValueError(f"action must be allow or deny, got {action!r}")
        schedule = data.get("schedule")
        if schedule is not None and not isinstance(schedule, Mapping):
            raise ValueError(f"schedule must be an object, got {schedule!r}")
        try:
            rule = cls(
                name=check_name("rule", data["name"]),
                action=_choice("allow", "deny")(action),
                classes=tuple(parse_class(c) for c in check_strings("classes", data.get("classes", []))),
                prefixes=tuple(check_prefix(p) for p in check_strings("prefixes", data.get("prefixes", []))),
                lists=tuple(check_name("list", x) for x in check_strings("lists", data.get("lists", []))),
                pin=check_flag("pin", data.get("pin", False)),
                enabled=check_flag("enabled", data.get("enabled", True)),
                unattended=check_flag("unattended", data.get("unattended", False)),
                schedule=Schedule.from_json(schedule) if schedule else None,
                regions=_regions(check_strings("regions", data.get("regions", []))),
                except_regions=_regions(check_strings("except_regions", data.get("except_regions", []))),
            )
        except TypeError as exc:
            raise ValueError(f"malformed rule: {exc}") from None
        return rule

    def with_enabled(self, enabled: bool) -> "Rule":
        return replace(self, enabled=enabled)


def _regions(values) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split(",")
    return tuple(dict.fromkeys(check_region(v) for v in values if str(v).strip()))


def check_prefix(value: str) -> str:
    v = str(value).strip()
    if not re.fullmatch(r"\+\d{1,15}", v):
        raise ValueError(f"prefix {value!r} must be '+' and digits (E.164)")
    return v


@dataclass(frozen=True)
class CallerAuth:
    """Which authorized lists the caller is enabled on, and through which phone."""

    lists: Mapping[str, str] = field(default_factory=dict)  # list -> phone
    # list -> grants that hold only from / until an instant (policies.validity)
    timed: Mapping[str, tuple[Grant, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything one decision needs, as loaded in one Redis round trip."""

    tenant: str
    settings: TenantSettings
    extension: Extension | None
    dialed: str
    caller_id: str = ""
    rules: tuple[Rule, ...] = ()
    class_overrides: Mapping[str, CallClass] = field(default_factory=dict)
    destination_is_extension: bool = False
    caller_auth: CallerAuth = field(default_factory=CallerAuth)
    locked_seconds: int = 0  # > 0: the extension is locked out for that long
    tenant_exists: bool = True
    # Who the decision is about (policies.identity); unknown unless the store
    # found an authenticated extension or a trusted caller ID: fail closed.
    identity: Identity = UNKNOWN_CALLER
    # "forward", "transfer", "originated": nobody at the phone placed this call.
    unattended: str = ""
    now: float = 0.0  # epoch seconds, for schedules (the store's clock)
    limits: tuple[Limit, ...] = ()
    # limits.count_key -> calls in its window (seconds for a budget). None: not
    # read; the admission checks them as it takes them (policies.decide).
    counts: Mapping[str, int] | None = None
    suspended: str = ""  # why the tenant's chargeable calls are suspended ('' = they are not)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    call_class: CallClass
    e164: str | None
    reason: str  # machine-readable: emergency, internal, rule_deny, not_authorized, ...
    detail: str  # one human sentence
    rule: str | None = None
    authorized_list: str | None = None
    authorized_phone: str | None = None
    pin_holders: tuple[str, ...] = ()
    identity: str = "none"  # IdentityKind value: what the caller was known as
    region: str | None = None  # the number's region (ISO 3166), libphonenumber's
    # What the call takes if it goes ahead: (kind, limit, subject, max, window)
    # with kind velocity | concurrency | budget | alert (max: seconds for a budget).
    admit: tuple[tuple[str, str, str, int, int], ...] = ()
    max_seconds: int = 0  # the longest the call may last (0: no limit)
    unattended: str = ""
    count: int = 0  # the count that refused it (velocity, concurrency, budget)
    alert: tuple[str, int] | None = None  # (alert limit, count) this call brings to its threshold

    @property
    def counted(self) -> tuple[tuple[str, str, str], ...]:
        """(kind, limit, subject) of what the end of the call must give back or add to."""
        return tuple((k, n, s) for k, n, s, _, _ in self.admit if k in ("concurrency", "budget"))

    def to_json(self) -> dict:
        return {
            "verdict": self.verdict.value,
            "class": self.call_class.value,
            "e164": self.e164,
            "region": self.region,
            "identity": self.identity,
            "unattended": self.unattended or None,
            "max_seconds": self.max_seconds or None,
            "rule": self.rule,
            "reason": self.reason,
            "detail": self.detail,
            "authorized_list": self.authorized_list,
        }
