"""The tenant's own patterns (`service_pattern`, `internal_pattern`), matched
with RE2 (google-re2): time linear in the number's length, whatever the pattern.

Python's `re` backtracks: `(\\d+)+#` against 27 digits took 10 s, and a match
never yields, so one tenant's pattern stalled every call of the controller's
event loop. RE2 has no backtracking; what it cannot run in linear time
(backreferences, lookaround) it refuses to compile, and so do we, when the
pattern is set. Patterns and the text they are matched against are short.
"""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN_LENGTH = 200

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the operator's error, said once, not RE2's stderr
_OPTIONS.max_mem = 1 << 20  # bytes for the compiled program: a pattern that needs more is refused


def check_pattern(value: object) -> str:
    """The pattern if RE2 can run it; ValueError with one line otherwise ('' = none)."""
    if not isinstance(value, str):
        raise ValueError(f"a pattern must be a string, got {type(value).__name__}")
    if value == "":
        return value
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"a pattern is at most {MAX_PATTERN_LENGTH} characters (got {len(value)})")
    try:
        re2.compile(value, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        reason = " ".join(reason.splitlines())  # RE2 quotes the pattern, line breaks and all: one line
        raise ValueError(f"invalid regular expression {value!r} (RE2 syntax, no backreferences "
                         f"or lookaround): {reason}") from None
    return value


@lru_cache(maxsize=256)
def _compiled(pattern: str):
    try:
        return re2.compile(check_pattern(pattern), options=_OPTIONS) if pattern else None
    except ValueError:
        # Checked when set and when read (a refused one makes the tenant's
        # settings a corrupt value); should one get here, it must not crash a
        # call, and matching nothing is the conservative reading.
        return None


def matches(pattern: str, text: str) -> bool:
    """True when the whole of `text` matches `pattern` ('' matches nothing)."""
    rx = _compiled(pattern)
    return bool(rx and rx.fullmatch(text))
