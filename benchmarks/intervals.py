"""How sure an added p50 or p99 is: a block bootstrap over the interleaved
stream (`benchmarks.realfs --interleaved`).

A p99 of 200 setup delays is their second-largest: one stall of the host more
or less on one path moves it by tens of milliseconds. The interval says which
differences the run can tell apart. Resampled in blocks of one A B B A group,
so that a stall that fell on neighbouring calls of both paths stays on both.
"""

from __future__ import annotations

import random


def nearest_rank(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted, non-empty `ordered`: the nearest rank below,
    the rule of every percentile the benchmarks report."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile of `values`, to 0.1 ms."""
    if not values:
        return None
    return round(nearest_rank(sorted(values), q), 1)


def blocks(paths_and_delays: list[tuple[str, float | None]], size: int = 4) -> list[tuple[list, list]]:
    """The stream in order, cut into groups of `size` calls: (A's delays, B's)."""
    out = []
    for i in range(0, len(paths_and_delays), size):
        group = paths_and_delays[i:i + size]
        out.append(([d for p, d in group if p == "A" and d is not None],
                    [d for p, d in group if p == "B" and d is not None]))
    return out


def added_interval(groups: list[tuple[list, list]], q: float, rounds: int = 2000,
                   seed: int = 32) -> list[float] | None:
    """The 95% interval of pct(A, q) - pct(B, q) over `rounds` resamplings of
    the groups with replacement (a fixed seed: the same stream, the same
    interval), or None without delays on both paths."""
    if not any(a for a, _b in groups) or not any(b for _a, b in groups):
        return None
    rng = random.Random(seed)
    diffs = []
    for _ in range(rounds):
        a: list[float] = []
        b: list[float] = []
        for _ in range(len(groups)):
            ga, gb = groups[rng.randrange(len(groups))]
            a += ga
            b += gb
        if a and b:
            diffs.append(pct(a, q) - pct(b, q))
    diffs.sort()
    return [round(diffs[int(0.025 * len(diffs))], 1), round(diffs[int(0.975 * len(diffs)) - 1], 1)]
