"""Destination regions: what a rule's `regions` / `except_regions` and the
tenant's high-risk list name (SPEC §2, §9).

A region is what libphonenumber says a number belongs to
(`region_code_for_number`): an ISO 3166 alpha-2 code, or `001` for the
non-geographic calling codes (+800, +870, +881, +882, +883, +979, ...). A
territory with its own code (RE, GP, GI, ...) is its own region, as it is in
the numbering plan and on a carrier's price list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

NON_GEOGRAPHIC = "001"

# Named groups an operator may write instead of their members. The EU's 27
# member states since 1 February 2020 (european-union.europa.eu, "EU
# countries"); the EEA adds Iceland, Liechtenstein and Norway (EEA Agreement).
EU = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
GROUPS = {"EU": EU, "EEA": EU | {"IS", "LI", "NO"}}

# The tenant's high-risk destinations by default: the ITU-T E.164 codes of
# satellite and international networks (+870 Inmarsat, +881 Global Mobile
# Satellite System, +882 and +883 International Networks). Their per-minute
# rates are among the highest anywhere and their ranges are sold on to
# revenue-share schemes: the first numbers an IRSF attack dials.
DEFAULT_HIGH_RISK = "+870,+881,+882,+883"


def check_region(value: str) -> str:
    """One region or group name, upper-cased; ValueError names what is valid."""
    v = str(value).strip().upper()
    if v in GROUPS or v == NON_GEOGRAPHIC or v in phonenumbers.SUPPORTED_REGIONS:
        return v
    raise ValueError(f"unknown region {value!r} (an ISO 3166 code such as CH, a group "
                     f"({', '.join(sorted(GROUPS))}) or {NON_GEOGRAPHIC} for non-geographic codes)")


@lru_cache(maxsize=256)
def expand(names: tuple[str, ...]) -> frozenset[str]:
    """The regions that names (checked) stand for, groups opened."""
    out: set[str] = set()
    for name in names:
        out |= GROUPS.get(name, {name})
    return frozenset(out)


@dataclass(frozen=True)
class Destinations:
    """A set of destinations by E.164 prefix or by region: the high-risk list."""

    prefixes: tuple[str, ...] = ()
    regions: frozenset[str] = frozenset()
    names: tuple[str, ...] = ()  # the regions and groups as written, for explanations

    def match(self, e164: str | None, region: str | None) -> str | None:
        """What on the list a number falls under (for the explanation), or None."""
        if e164:
            for prefix in self.prefixes:
                if e164.startswith(prefix):
                    return prefix
        if region and region in self.regions:
            return next((n for n in self.names if region in GROUPS.get(n, {n})), region)
        return None


@lru_cache(maxsize=256)
def destinations(text: str) -> Destinations:
    """Parse a comma-separated list of E.164 prefixes (+881) and regions (CU,
    EU); ValueError for anything else. Cached: every call of a tenant asks."""
    prefixes, names = [], []
    for item in (x.strip() for x in str(text).split(",")):
        if not item:
            continue
        if item.startswith("+"):
            if not re.fullmatch(r"\+\d{1,15}", item):
                raise ValueError(f"prefix {item!r} must be '+' and digits (E.164)")
            prefixes.append(item)
        else:
            names.append(check_region(item))
    return Destinations(tuple(dict.fromkeys(prefixes)), expand(tuple(names)), tuple(dict.fromkeys(names)))


def describe(d: Destinations) -> str:
    """The list as stored: prefixes first, then regions and groups as written."""
    return ",".join([*d.prefixes, *d.names])
