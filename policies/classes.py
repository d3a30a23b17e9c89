"""Destination classes (SPEC §2) and which of them cost money."""

from __future__ import annotations

from enum import Enum


class CallClass(str, Enum):
    INTERNAL = "internal"
    SERVICE = "service"
    EMERGENCY = "emergency"
    TOLLFREE = "tollfree"
    NATIONAL = "national"
    MOBILE = "mobile"
    SHARED_COST = "shared_cost"
    PREMIUM = "premium"
    INTERNATIONAL = "international"
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # click and f-strings print the value, not the name
        return self.value


# SPEC §2: "unknown" is chargeable on purpose, so a number we cannot read is
# treated like the most expensive thing it might be.
CHARGEABLE = frozenset(
    {
        CallClass.NATIONAL,
        CallClass.MOBILE,
        CallClass.SHARED_COST,
        CallClass.PREMIUM,
        CallClass.INTERNATIONAL,
        CallClass.UNKNOWN,
    }
)

# Destinations that never reach the rules.
ALWAYS_PASS = frozenset({CallClass.INTERNAL, CallClass.SERVICE, CallClass.EMERGENCY})
# What a rule or a class override can name: the rest never reaches the rules.
RULE_CLASSES = tuple(c for c in CallClass if c not in ALWAYS_PASS)


def parse_class(text: str) -> CallClass:
    """Parse a class name given by an operator; ValueError names the choices."""
    try:
        return CallClass(text.strip().lower())
    except ValueError:
        choices = ", ".join(c.value for c in CallClass)
        raise ValueError(f"unknown class {text!r} (choose from {choices})") from None
