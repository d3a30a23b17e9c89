"""Names and days of what a call counts under the tenant's limits: the key an
admission takes, the tenant's date for budgets, and what the end of a counted
call gives back (written on the channel as `tollgate_counted`)."""

from __future__ import annotations

from controller.store import keys
from policies.schedule import local_minute


def tenant_day(now: float, zone: str, country: str) -> str:
    """The tenant's date, for daily budgets (UTC where its country has several
    zones and none is set)."""
    return local_minute(int(now) // 60, zone, country)[0].date().isoformat()


def admission_key(tenant: str, entry: tuple, day: str) -> str:
    kind, name, subject, _, _ = entry
    if kind in ("velocity", "alert"):
        return keys.velocity(tenant, name, subject)
    if kind == "concurrency":
        return keys.concurrency(tenant, name, subject)
    return keys.budget(tenant, name, subject, day)


def counted_spec(counted: tuple, day: str) -> str:
    """What the end of the call gives back, as a channel variable: c/limit/subject
    and b/limit/subject/day, joined by ';' (no '|': multiset's separator)."""
    return ";".join(f"c/{n}/{s}" if k == "concurrency" else f"b/{n}/{s}/{day}" for k, n, s in counted)


def parse_counted(text: str) -> list[tuple[str, str, str, str]]:
    out = []
    for item in (text or "").split(";"):
        parts = item.split("/")
        if len(parts) in (3, 4) and parts[0] in ("c", "b") and all(parts[1:]):
            out.append((parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else ""))
    return out
