"""A soak on the real switch, in both modes (marker `soak`: not in the default
run; `bash scripts/test.sh -m soak -s tests/realfs/test_soak.py` runs it).

At a steady rate the switch holds on this machine, a mix of allowed, refused
and PIN calls, a tenth of whose callers hang up at a random moment. Every few
seconds it samples FreeSWITCH (`show channels count`, `status`), the
controller (RSS, open descriptors) and Redis (memory, keys). It passes only
when the channels are back to 0 within seconds of the last hangup, the
controller's RSS and descriptors are flat (a slope per 1,000 calls), every call
that reached Tollgate has exactly one verdict, and no PIN reached a CDR."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from pathlib import Path

import gevent
import pytest

from controller.store.audit import settled_verdicts
from tests.realfs.calls import Script
from tests.realfs.conftest import PINS

CALLS = int(os.environ.get("TOLLGATE_SOAK_CALLS", "10000"))
RATE = float(os.environ.get("TOLLGATE_SOAK_RATE", "10"))  # calls a second
SAMPLE_EVERY = 5.0
ANNA = PINS["1003"][0][1]
# (share, phone, dialed, keys): allowed, refused, PIN, listed premium
MIX = [(0.5, "1002", "0140000000", []), (0.2, "1002", "0899123456", []), (0.2, "1003", "0140000000", [ANNA]),
       (0.1, "1001", "0899123456", [])]
RSS_SLOPE_KIB = 512  # per 1,000 calls, after the first fifth (imports, caches, pools warm up)
FD_SLOPE = 1.0

# 10,000 calls at 10-20 a second, then the drain: the suite's 120 s per test does not apply.
pytestmark = [pytest.mark.soak, pytest.mark.timeout(3600)]


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points) or 1.0
    return sum((x - mx) * (y - my) for x, y in points) / den


def _proc(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_soak(freeswitch, controller, phones, store, realfs_redis, tmp_path):
    rng = random.Random(20261207)
    samples: list[dict] = []
    placed = []
    stop = False

    def sample() -> None:
        while not stop:
            take()
            gevent.sleep(SAMPLE_EVERY)

    def take() -> None:
        rss, fds = _proc(controller.proc.pid)
        status = phones.api("status")
        since = re.search(r"(\d+) session\(s\) since startup", status)
        peak = re.search(r"session\(s\) - peak (\d+)", status)
        info = store.r.info("memory")
        samples.append({"t": round(time.monotonic() - t0, 1), "calls": len(placed),
                        "channels": phones.channel_count(), "sessions_since_start": int(since.group(1)),
                        "peak": int(peak.group(1)), "rss_kib": rss, "fds": fds,
                        "redis_used": info["used_memory"], "redis_keys": store.r.dbsize()})

    t0 = time.monotonic()
    sampler = gevent.spawn(sample)
    for i in range(CALLS):
        due = t0 + i / RATE
        if due > time.monotonic():
            gevent.sleep(due - time.monotonic())
        r = rng.random()
        for share, phone, dialed, keys in MIX:
            if r < share:
                break
            r -= share
        script = Script(keys=list(keys))
        if rng.random() < 0.1:
            script.hangup_after = rng.uniform(0.1, 8.0)  # at a random step: ringing, park, prompt, talk
        placed.append(phones.place(phone, dialed, script))
        if len(placed) % 500 == 0:  # what has ended is judged, then forgotten (memory)
            phones.forget_ended()
    offered = time.monotonic() - t0
    assert phones.wait_all(placed, timeout=120), sum(not c.ended() for c in placed)
    last = time.monotonic()
    drained = phones.wait_no_channels(10.0)
    stop = True
    sampler.join(SAMPLE_EVERY + 5)
    verdicts = settled_verdicts(store.audit.read("acme", count=4 * CALLS))
    per_call = Counter(v["uuid"] for v in verdicts)
    reached = {c.b_uuid for c in placed if c.reached_tollgate}
    steady = [s for s in samples if s["calls"] >= CALLS / 5]
    rss_slope = _slope([(s["calls"] / 1000, s["rss_kib"]) for s in steady]) if len(steady) > 2 else 0.0
    fd_slope = _slope([(s["calls"] / 1000, s["fds"]) for s in steady]) if len(steady) > 2 else 0.0
    report = {
        "mode": freeswitch.mode, "calls": CALLS, "rate_offered": round(CALLS / offered, 1),
        "channels_left": phones.channel_count(), "seconds_to_zero_channels": drained,
        "rss_kib_first_last": [steady[0]["rss_kib"], steady[-1]["rss_kib"]] if steady else None,
        "rss_slope_kib_per_1000_calls": round(rss_slope, 1), "fd_slope_per_1000_calls": round(fd_slope, 2),
        "verdicts": len(verdicts), "calls_reaching_tollgate": len(reached),
        "verdicts_per_call": dict(Counter(per_call.values())),
        "without_verdict": len(reached - set(per_call)), "cdrs_searched": phones.cdrs, "pin_in_cdr": len(phones.leaks),
        "sessions_since_start": samples[-1]["sessions_since_start"] if samples else None,
        "peak_sessions": max((s["peak"] for s in samples), default=None),
        "redis_used_first_last": [samples[0]["redis_used"], samples[-1]["redis_used"]] if samples else None,
        "outcomes": dict(Counter(c.outcome for c in placed)),
        "drain_after_last_hangup_s": round(time.monotonic() - last, 1),
    }
    out = Path(os.environ.get("TOLLGATE_SOAK_REPORT_DIR", tmp_path)) / f"soak-{freeswitch.mode}.json"
    out.write_text(json.dumps({"report": report, "samples": samples}, indent=1))
    print(f"\nsoak {json.dumps(report)}\n(samples in {out})")
    assert drained is not None and drained <= 5.0
    assert report["without_verdict"] == 0 and set(per_call.values()) == {1}
    assert phones.leaks == []
    assert rss_slope <= RSS_SLOPE_KIB and fd_slope <= FD_SLOPE
