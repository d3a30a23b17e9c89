"""Normalize a dialed string to E.164 and put it in a class (SPEC §2).

The numbering plans are libphonenumber's (the `phonenumbers` package): number
types for full numbers, `shortnumberinfo` for short codes and emergency
numbers. Nothing here is a hand-written table except the operator's own
overrides, which win over the library.

Precedence (SPEC §9): emergency; service; an extension Tollgate knows; what the
numbering plan recognizes; the tenant's internal pattern only for what the plan
does not recognize; otherwise `unknown` (chargeable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

import phonenumbers
from phonenumbers import PhoneNumberType as T
from phonenumbers import region_code_for_number
from phonenumbers import shortnumberinfo as sni

from policies.classes import CallClass
from policies.patterns import matches as _matches

MAX_DIALED_LENGTH = 40
# Visual separators people and phones put in numbers; they carry no meaning.
_SEPARATORS = re.compile(r"[\s().\-/]")
_DIALABLE = re.compile(r"^\+?[0-9*#]+$")

_TYPE_CLASS = {
    T.FIXED_LINE: CallClass.NATIONAL,
    T.FIXED_LINE_OR_MOBILE: CallClass.NATIONAL,
    T.MOBILE: CallClass.MOBILE,
    T.TOLL_FREE: CallClass.TOLLFREE,
    T.PREMIUM_RATE: CallClass.PREMIUM,
    T.SHARED_COST: CallClass.SHARED_COST,
    T.VOIP: CallClass.NATIONAL,
    T.PERSONAL_NUMBER: CallClass.MOBILE,
    T.PAGER: CallClass.MOBILE,
    T.UAN: CallClass.NATIONAL,
    T.VOICEMAIL: CallClass.NATIONAL,
}

# shortnumberinfo.ShortNumberCost values
_SHORT_COST_CLASS = {
    sni.ShortNumberCost.TOLL_FREE: CallClass.TOLLFREE,
    sni.ShortNumberCost.STANDARD_RATE: CallClass.NATIONAL,
    sni.ShortNumberCost.PREMIUM_RATE: CallClass.PREMIUM,
    sni.ShortNumberCost.UNKNOWN_COST: CallClass.UNKNOWN,
}


@dataclass(frozen=True)
class Classification:
    call_class: CallClass
    e164: str | None  # None for short codes, extensions and unreadable input
    note: str  # why, in a few words (goes into the decision's detail)
    dialable: bool = True  # False: letters, a SIP URI, 500 digits... nothing to place
    region: str | None = None  # ISO 3166 region of a full number (libphonenumber's), "001" non-geographic


def clean(dialed: str) -> str | None:
    """Strip separators; None when what is left is not a dialable string."""
    if not isinstance(dialed, str) or len(dialed) > MAX_DIALED_LENGTH * 2:
        return None
    text = _SEPARATORS.sub("", dialed)
    if not text or len(text) > MAX_DIALED_LENGTH or not _DIALABLE.match(text):
        return None
    return text


def _strip_outside_line(text: str, prefix: str) -> str:
    if prefix and not text.startswith("+") and text.startswith(prefix) and len(text) > len(prefix):
        return text[len(prefix):]
    return text


def is_emergency(text: str, country: str, outside_line_prefix: str = "") -> bool:
    """True for the region's emergency numbers, with or without the outside-line prefix."""
    for candidate in {text, _strip_outside_line(text, outside_line_prefix)}:
        if candidate.isdigit() and len(candidate) <= 6 and sni.is_emergency_number(candidate, country):
            return True
    return False


def _override(e164: str | None, overrides: Mapping[str, CallClass]) -> CallClass | None:
    if not e164 or not overrides:
        return None
    best = None
    for prefix, cls in overrides.items():
        if e164.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, cls)
    return best[1] if best else None


def classify(
    dialed: str,
    country: str,
    *,
    outside_line_prefix: str = "",
    service_pattern: str = r"^\*\d+$",
    internal_pattern: str = "",
    is_known_extension: bool = False,
    overrides: Mapping[str, CallClass] | None = None,
) -> Classification:
    text = clean(dialed)
    if text is None:
        return Classification(CallClass.UNKNOWN, None, "not a dialable number", dialable=False)
    if is_emergency(text, country, outside_line_prefix):
        return Classification(CallClass.EMERGENCY, None, f"emergency number of {country}")
    if _matches(service_pattern, text):
        return Classification(CallClass.SERVICE, None, "feature code or IVR application")
    if is_known_extension:
        return Classification(CallClass.INTERNAL, None, "extension of this tenant")

    number = _strip_outside_line(text, outside_line_prefix)
    result = _by_numbering_plan(number, country)
    if result is None:
        if _matches(internal_pattern, number) or _matches(internal_pattern, text):
            return Classification(CallClass.INTERNAL, None, "matches the tenant's internal pattern")
        # No E.164 form: the plan does not know the number, so any form we made
        # up could match a rule's prefix by accident.
        result = Classification(CallClass.UNKNOWN, None, f"not a valid number in the {country} plan")

    forced = _override(result.e164, overrides or {})
    if forced is not None:
        return Classification(forced, result.e164, f"operator override for {result.e164}", region=result.region)
    return result


@lru_cache(maxsize=4096)
def _by_numbering_plan(number: str, country: str) -> Classification | None:
    """The plan's reading of the number, or None when the plan does not know it.
    Cached: a foreign number's type costs a second region lookup (15-20 us for
    +1 or +44), and a tenant's callers dial the same destinations again."""
    if not number.replace("+", "", 1).isdigit():
        return None  # '*' or '#' past the service check: nothing a plan can place
    if not number.startswith("+") and len(number) <= 6:
        try:
            short = phonenumbers.parse(number, country)
        except phonenumbers.NumberParseException:
            return None
        if sni.is_valid_short_number_for_region(short, country):
            cost = sni.expected_cost_for_region(short, country)
            return Classification(_SHORT_COST_CLASS[cost], None, f"short code of {country}", region=country)
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    home_code = phonenumbers.country_code_for_region(country)
    if parsed.country_code != home_code:
        region = region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(parsed.country_code)
        return _foreign(parsed, e164, region)
    if len(phonenumbers.region_codes_for_country_code(home_code)) > 1 and \
            not phonenumbers.is_valid_number_for_region(parsed, country):
        # A calling code shared by several regions (+1 NANP, +7, +44 with the
        # Crown Dependencies, +39/VA, +47/SJ, +61/CC/CX, +590...): a number of
        # another region is a call abroad with that region's tariffs, even
        # though no international prefix was dialed. Numbers valid in several
        # regions (NANP toll-free, shared ranges) count as the tenant's own.
        region = region_code_for_number(parsed)
        if region is None:
            return None  # no region of the code knows it
        return _foreign(parsed, e164, region)
    # number_type() is UNKNOWN exactly when the number is not valid for its
    # region (is_valid_number() is built on the same lookup): one pass, not two.
    kind = phonenumbers.number_type(parsed)
    if kind == T.UNKNOWN:
        return None
    call_class = _TYPE_CLASS.get(kind, CallClass.UNKNOWN)
    return Classification(call_class, e164, f"{call_class.value} number of {country}", region=country)


# What a foreign number keeps of its type: a premium-rate or shared-cost line
# abroad (or on a non-geographic code such as +979) is what international
# revenue-share fraud dials, and a rule that lets staff call abroad must not let
# them call it. Anything else abroad is `international`: a foreign toll-free or
# mobile number is still billed as an international call.
_FOREIGN_KEEPS = {T.PREMIUM_RATE: CallClass.PREMIUM, T.SHARED_COST: CallClass.SHARED_COST}


def _foreign(parsed: phonenumbers.PhoneNumber, e164: str, region: str | None) -> Classification:
    call_class = _FOREIGN_KEEPS.get(phonenumbers.number_type(parsed), CallClass.INTERNATIONAL)
    code = parsed.country_code
    where = f"{region} (+{code})" if region and region != "001" else f"+{code}"
    return Classification(call_class, e164, f"{call_class.value} number of {where}", region=region)


def normalize_phone(text: str, country: str) -> str:
    """An authorized entry's or caller's phone: E.164, or an extension's digits.

    Raises ValueError with a one-line reason for anything else.
    """
    cleaned = clean(text or "")
    if cleaned is None or "*" in cleaned or "#" in cleaned:
        raise ValueError(f"{text!r} is not a phone number")
    if not cleaned.startswith("+") and len(cleaned) <= 8 and not cleaned.startswith("0"):
        return cleaned  # an extension number
    try:
        parsed = phonenumbers.parse(cleaned, country)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{text!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{text!r} is not a possible phone number in {country}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_identities(caller_id: str, country: str) -> tuple[str, ...]:
    """The forms of a presented caller ID that can match an authorized entry."""
    try:
        return (normalize_phone(caller_id, country),)
    except ValueError:
        return ()


def national_form(e164: str | None, fallback: str) -> str:
    """Digits a national gateway expects (used by the `{national}` route placeholder)."""
    if not e164:
        return fallback
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return fallback
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "")
