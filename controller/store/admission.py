"""A call's admission under its tenant's limits: what `CallStore.record_verdict`
finds (`Admission`), the arguments of the admission script (scripts.ADMIT_SCRIPT)
and its in-process twin for the embedded store, and how one count is read."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from controller.store.counting import bucket_seconds, place_take, places_held, rate_count, rate_take


@dataclass(frozen=True)
class Admission:
    """What `record_verdict` found under the limits: `full` (1-based index in
    the decision's admit, count) when one had no room left and nothing was
    written, else each admission's count before this call (`counts`)."""
    full: tuple[int, int] | None = None
    counts: tuple[int, ...] = ()


_KIND_CODE = {"velocity": "v", "concurrency": "c", "budget": "b", "alert": "a"}


def script_args(now: float, uuid: str, admit: tuple, span: int, writes: list[tuple]) -> list:
    """ARGV of the admission script: now, the uuid, per limit its kind code, max,
    window or place span, and bucket seconds; then the entry's writes, flat."""
    args = [f"{now:.3f}", uuid, *_limit_args(admit, span), len(writes)]
    for command in writes:
        args.append(len(command))
        args += command
    return args


@lru_cache(maxsize=1024)
def _limit_args(admit: tuple, span: int) -> tuple:
    """The limits' part of the arguments: the same for every call of a tenant,
    class and caller (the decision's admit), worked out once."""
    return (len(admit), *[x for kind, _, _, most, window in admit
                          for x in ((_KIND_CODE[kind], most, window, bucket_seconds(window))
                                    if kind in ("velocity", "alert") else (_KIND_CODE[kind], most, span, 0))])


def admit_in_process(r, audit, tenant: str, uuid: str, fields: dict, extra: list, admit: tuple, places: list,
                     now: float, span: int) -> Admission:
    """The admission of the embedded store (no Lua): in process, nothing runs
    between the check and the write."""
    pipe = r.pipeline(transaction=False)
    for (kind, _, _, _, _), key in zip(admit, places):
        read_count(pipe, kind, key)
    raws = pipe.execute()
    counts, takes = [], []
    for raw, (kind, _, _, most, window), key in zip(raws, admit, places):
        if kind == "concurrency":
            n, writes = place_take(key, raw or {}, uuid, now, span, most)
        else:
            n = count_of(kind, raw, now, window)
            writes = rate_take(key, raw, now, window) if kind in ("velocity", "alert") else []
        counts.append(n)
        takes += writes
        if kind != "alert" and n >= most:  # an alert counts, never refuses
            return Admission(full=(len(counts), n))
    audit.write_now(tenant, fields, extra + takes)
    return Admission(counts=tuple(counts))


def read_count(pipe, kind: str, key: str) -> None:
    """Queue the read of one count: a hash for a rate (velocity, alert) or for
    places (concurrency), counted by `count_of`; the billed seconds of the day
    (budget)."""
    if kind == "budget":
        pipe.get(key)
    else:
        pipe.hgetall(key)


def count_of(kind: str, raw, now: float, window: int) -> int:
    if kind in ("velocity", "alert"):
        return rate_count(raw or {}, now, window)
    if kind == "concurrency":
        return places_held(raw or {}, now)
    return int(raw or 0)
