"""The real-switch benchmark's interval on an added p50/p99 (benchmarks.intervals)."""

import random

from benchmarks.intervals import added_interval, blocks, pct


def _stream(n: int, a_delay, b_delay) -> list[tuple[str, float]]:
    """n calls A B B A ..., each path's delay from its function of the call's index."""
    return [(p, a_delay(i) if p == "A" else b_delay(i)) for i, p in enumerate("ABBA"[i % 4] for i in range(n))]


def test_blocks_keep_the_stream_in_groups_of_one_abba():
    stream = [("A", 1.0), ("B", 2.0), ("B", None), ("A", 4.0), ("A", 5.0), ("B", 6.0)]
    assert blocks(stream) == [([1.0, 4.0], [2.0]), ([5.0], [6.0])]


def test_a_constant_difference_is_known_exactly():
    rng = random.Random(1)
    base = [30 + rng.random() * 4 for _ in range(400)]
    groups = blocks(_stream(400, lambda i: base[i] + 3.0, lambda i: base[i]))
    # Each group's A and B are different calls, so the quantiles differ a little
    # from one resampling to the next; the interval stays around the 3 ms.
    lo, hi = added_interval(groups, 0.5)
    assert 2.0 <= lo <= 3.0 <= hi <= 4.0


def test_one_stall_on_one_path_makes_a_wide_p99_interval():
    rng = random.Random(2)
    delays = [35 + rng.random() * 5 for _ in range(400)]
    stalled = {12, 103, 251}  # three A calls caught by the host, 100 ms late

    groups = blocks(_stream(400, lambda i: delays[i] + (100 if i in stalled else 0), lambda i: delays[i]))
    point = pct([d for a, _b in groups for d in a], 0.99) - pct([d for _a, b in groups for d in b], 0.99)
    lo, hi = added_interval(groups, 0.99)
    assert point > 50  # the point estimate says Tollgate adds 60 ms or more...
    assert lo < 10 < hi  # ...but the run cannot tell that from nothing


def test_the_same_stream_gives_the_same_interval():
    rng = random.Random(3)
    groups = blocks(_stream(200, lambda i: 40 + rng.random(), lambda i: 36 + rng.random()))
    assert added_interval(groups, 0.99) == added_interval(groups, 0.99)


def test_no_interval_without_both_paths():
    assert added_interval(blocks([("A", 1.0), ("A", 2.0)]), 0.5) is None
    assert added_interval([], 0.99) is None
