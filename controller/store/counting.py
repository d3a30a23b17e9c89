"""Names and days of what a call counts under the tenant's limits: the key an
admission takes, the tenant's date for budgets, how a velocity or alert count
is kept, and what the end of a counted call gives back (written on the channel
as `tollgate_counted`).

A velocity or alert count is a hash of time buckets (`keys.rate`), each
1/60 of the window (at least a second): bucket index -> calls, `n` the calls
of the buckets kept, `lo` the oldest bucket kept and `hi` the newest one a
call was filed in (`rate_clock`). A call counts from the
moment it is admitted until its bucket is older than the window: between
`window` and `window + bucket` seconds, never less (a cap holds for every
window; a call may find one more call counted, up to a bucket old, than an
exact window would). Sixty-odd small fields whatever the rate, where a sorted
set of call ids grew with every call (a day's window on a busy tenant held
millions) and cost Redis 12-15 us more per admission (the benchmark's VM).
The admission script (`scripts.ADMIT_SCRIPT`) does the same in Lua.
"""

from __future__ import annotations

from functools import lru_cache

from controller.store import keys
from policies.schedule import local_minute


# A concurrency hash's lapsed places (calls whose end was never seen) are
# dropped when its count reaches the limit, and whenever it reaches a multiple
# of this (memory): the admission script and `place_take` alike.
PLACES_SWEEP = 512


def place_take(key: str, fields: dict, uuid: str, now: float, span: int, most: int) -> tuple[int, list[tuple]]:
    """The count a concurrency hash read as `fields` gives an admission at `now`
    (lapsed places included until dropped, as in the script), and the writes
    that drop them and take this call's place (nothing runs in between: the
    in-process store)."""
    c, out = len(fields), []
    if c >= most or (c and c % PLACES_SWEEP == 0):
        stale = [f for f, lapse in fields.items() if _lapse(lapse) < now]
        c -= len(stale)
        out = [("HDEL", key, *stale)] if stale else []
    return c, out + [("HSET", key, uuid, f"{now + span:.3f}"), ("EXPIRE", key, span + 60)]


def places_held(fields: dict, now: float) -> int:
    """The places a concurrency hash holds at `now` (lapsed ones left out)."""
    return sum(1 for lapse in fields.values() if _lapse(lapse) >= now)


def _lapse(text) -> float:
    """When a place lapses; a value that is not a number (corrupt) has lapsed."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("-inf")


def tenant_day(now: float, zone: str, country: str) -> str:
    """The tenant's date, for daily budgets (UTC where its country has several
    zones and none is set)."""
    return local_minute(int(now) // 60, zone, country)[0].date().isoformat()


def bucket_seconds(window: int) -> int:
    return max(1, int(window) // 60)


def oldest_bucket(now: float, window: int) -> int:
    """The oldest bucket still counted at `now` (it holds `now - window`)."""
    return int((now - window) // bucket_seconds(window))


def rate_clock(fields: dict, now: float, window: int) -> float:
    """The time a rate hash is counted at: `now`, or the start of the newest
    bucket a call was filed in (`hi`) when that is later (a controller whose
    clock is behind another's). Otherwise a clock behind would miss the calls
    of a bucket an admission with a later clock had dropped, or file its call
    in a bucket that is already out of the window."""
    hi = fields.get("hi")
    if hi is None or not hi.lstrip("-").isdigit():
        return now
    return max(now, int(hi) * bucket_seconds(window))


def _buckets(fields: dict) -> dict[int, int]:
    """A rate hash's buckets (bucket index -> calls), without `n`, `lo`, `hi`."""
    return {int(f): int(v) for f, v in fields.items() if f.lstrip("-").isdigit()}


def rate_count(fields: dict, now: float, window: int) -> int:
    """The calls a rate hash counts at `now` (its buckets from oldest_bucket on,
    by its clock)."""
    cut = oldest_bucket(rate_clock(fields, now, window), window)
    return sum(v for b, v in _buckets(fields).items() if b >= cut)


def rate_take(key: str, fields: dict, now: float, window: int) -> list[tuple]:
    """The writes that add one call to a rate hash read as `fields` (nothing runs
    in between: the in-process store), dropping the buckets out of the window."""
    now = rate_clock(fields, now, window)
    cut, b = oldest_bucket(now, window), int(now // bucket_seconds(window))
    kept = {x: v for x, v in _buckets(fields).items() if x >= cut}
    stale = [f for f in fields if f.lstrip("-").isdigit() and int(f) < cut]
    out = [("HDEL", key, *stale)] if stale else []
    return out + [("HINCRBY", key, str(b), 1),
                  ("HSET", key, "n", sum(kept.values()) + 1, "lo", min([*kept, b]), "hi", b),
                  ("EXPIRE", key, window + 2 * bucket_seconds(window) + 60)]


@lru_cache(maxsize=1024)
def admission_keys(tenant: str, admit: tuple, day: str) -> tuple[str, ...]:
    """The keys a decision's admit takes, once per tenant, admit and day."""
    return tuple(admission_key(tenant, entry, day) for entry in admit)


def admission_key(tenant: str, entry: tuple, day: str) -> str:
    kind, name, subject, _, _ = entry
    if kind in ("velocity", "alert"):
        return keys.rate(tenant, name, subject)
    if kind == "concurrency":
        return keys.concurrency(tenant, name, subject)
    return keys.budget(tenant, name, subject, day)


@lru_cache(maxsize=1024)
def counted_spec(counted: tuple, day: str) -> str:
    """What the end of the call gives back, as a channel variable: c/limit/subject
    and b/limit/subject/day, joined by ';' (no '|': multiset's separator)."""
    return ";".join(f"c/{n}/{s}" if k == "concurrency" else f"b/{n}/{s}/{day}" for k, n, s in counted)


@lru_cache(maxsize=1024)
def parse_counted(text: str) -> tuple[tuple[str, str, str, str], ...]:
    """What `counted_spec` wrote; the same few texts come back at every end."""
    out = []
    for item in (text or "").split(";"):
        parts = item.split("/")
        if len(parts) in (3, 4) and parts[0] in ("c", "b") and all(parts[1:]):
            out.append((parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""))
    return tuple(out)
