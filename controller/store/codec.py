"""Turning stored strings into policy values, with errors that name the key."""

from __future__ import annotations

import json

from controller.errors import CorruptValue
from policies.classes import parse_class
from policies.limits import Limit
from policies.model import Extension, Rule, TenantSettings


_SETTINGS_CACHE: dict[tuple, TenantSettings] = {}


def tenant_settings(key: str, raw: dict[str, str]) -> TenantSettings:
    """Parsed once per distinct content: every call reads the hash, few change it."""
    token = tuple(raw.items())  # the same hash reads back in the same order: no sort needed
    found = _SETTINGS_CACHE.get(token)
    if found is not None:
        return found
    try:
        settings = TenantSettings.from_mapping(raw)
    except ValueError as exc:
        raise CorruptValue(key, str(exc)) from None
    if len(_SETTINGS_CACHE) > 4096:
        _SETTINGS_CACHE.clear()
    _SETTINGS_CACHE[token] = settings
    return settings


def extension(key: str, number: str, raw: dict[str, str], pins: dict[str, str]) -> Extension:
    flag = raw.get("pin_enabled", "off")
    if flag not in ("on", "off"):
        raise CorruptValue(key, f"pin_enabled: expected on/off, got {flag!r}")
    return Extension(
        number=number,
        pin_enabled=flag == "on",
        language=raw.get("language", ""),
        caller_ids=tuple(x for x in raw.get("caller_ids", "").split(",") if x),
        pins=dict(pins),
        display_name=raw.get("display_name", ""),
    )


def rules(key: str, items: list[str]) -> tuple[Rule, ...]:
    return _json_list(key, items, Rule.from_json, "rule")


def limits(key: str, items: list[str]) -> tuple[Limit, ...]:
    return _json_list(key, items, Limit.from_json, "limit")


_LISTS_CACHE: dict[tuple, tuple] = {}


def _json_list(key: str, items: list[str], parse, what: str) -> tuple:
    """A list of JSON objects, parsed once per distinct content (like the
    settings): every call reads the tenant's rules and limits, few change them."""
    token = (what, *items)
    found = _LISTS_CACHE.get(token)
    if found is not None:
        return found
    out = []
    for i, item in enumerate(items):
        try:
            out.append(parse(json.loads(item)))
        except (ValueError, TypeError) as exc:
            raise CorruptValue(key, f"{what} #{i + 1}: {exc}") from None
    if len(_LISTS_CACHE) > 4096:
        _LISTS_CACHE.clear()
    _LISTS_CACHE[token] = tuple(out)
    return tuple(out)


def limit_json(limit: Limit) -> str:
    return json.dumps(limit.to_json(), sort_keys=True, separators=(",", ":"))


def overrides(key: str, raw: dict[str, str]) -> dict:
    try:
        return {prefix: parse_class(cls) for prefix, cls in raw.items()}
    except ValueError as exc:
        raise CorruptValue(key, str(exc)) from None


def rule_json(rule: Rule) -> str:
    return json.dumps(rule.to_json(), sort_keys=True, separators=(",", ":"))
