"""Names of tenants, lists, rules and limits: they end up in Redis keys and
channel variables, so one check serves the model and the limits."""

import re

# Matched whole (fullmatch): with match() and '$', "acme\n" passed.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(kind: str, value: object) -> str:
    """Names of tenants, lists and rules end up in Redis keys and channel variables."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ValueError(
            f"invalid {kind} name {value!r}: use 1-64 letters, digits, '_', '.', '-'"
        )
    return value
