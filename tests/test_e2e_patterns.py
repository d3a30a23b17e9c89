"""End to end (issue 30): one tenant's pattern cannot stall the controller.
The real controller, the simulator over TCP and a real redis-server, two tenants."""

from __future__ import annotations

import logging
import time

import pytest

from tests.rig import Rig, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

CATASTROPHIC = r"(\d+)+#"  # Python's re: 9.9 s for 27 digits, doubling with each digit more
BOUND_MS = 1000  # a decision takes milliseconds here; a backtracking match took seconds to forever


def test_a_tenants_catastrophic_pattern_stalls_neither_its_calls_nor_another_tenants(redis_url, caplog):
    caplog.set_level(logging.INFO)
    rig = Rig(redis_url)
    try:
        rig.provision()
        a = rig.store.admin
        a.update_tenant("acme", {"service_pattern": CATASTROPHIC, "internal_pattern": CATASTROPHIC})
        a.create_tenant("globex", {"country": "DE"})
        a.put_extension("globex", "2001", create=True)
        rig.controller("c1")
        started = time.monotonic()
        # placed at the same moment: 40 digits (the most a number may have) and another tenant's call
        long = rig.call("1" * 40, caller_id="1001")
        other = rig.sim.place_call("030 1234567", caller_id="2001", tenant="globex")
        rig.finish(long, other, timeout=20)
        elapsed = time.monotonic() - started
        theirs = wait(lambda: [v for _, v in rig.store.audit.read("globex", count=100)
                               if v.get("uuid") == other.uuid], message="globex's verdict")
        ours = rig.verdict_of(long)
        assert (ours["class"], other.bridged) == ("unknown", True)
        decided = {"acme": float(ours["decision_ms"]), "globex": float(theirs[0]["decision_ms"])}
        print(f"\n40 digits against {CATASTROPHIC!r}: decided in {decided['acme']:.1f} ms; "
              f"globex's call placed with it: {decided['globex']:.1f} ms; both ended after {elapsed:.2f} s")
        assert max(decided.values()) < BOUND_MS, decided
    finally:
        rig.close()
