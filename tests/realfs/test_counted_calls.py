"""Calls under a concurrency limit and a budget, on a real FreeSWITCH 1.10: their
ends come back to the controller that handed them over (inbound mode: its ends
connection; socket mode: the session follows the call), so the place is given
back and the minutes counted. The mark that routes the end used to be set by a
hangup hook (uuid_setvar), which FreeSWITCH never runs on a channel that is
down: places lapsed only after their bound and no minute was ever counted."""

from __future__ import annotations

from tests.realfs.calls import Script
from tests.rig import wait


def test_the_end_of_a_counted_call_gives_its_place_back_and_counts_its_minutes(freeswitch, controller, phones,
                                                                                 store):
    store.limits.add("acme", {"name": "day", "kind": "budget", "scope": "tenant", "minutes": 10_000})
    store.limits.add("acme", {"name": "lines", "kind": "concurrency", "scope": "tenant", "max": 50})
    calls = [phones.place("1002", f"014000001{i}", Script()) for i in range(4)]
    assert phones.wait_all(calls, timeout=30)
    assert all(c.carrier_got for c in calls)
    places = "tg:{acme}:place:lines:tenant"
    billed = sum(int(c.pbx.get("variable_billsec", "0") or 0) for c in calls)

    def spent() -> int:
        return sum(int(store.r.get(k) or 0) for k in store.r.scan_iter("tg:{acme}:budget:day:tenant:*"))

    wait(lambda: store.r.hlen(places) == 0, timeout=10, message="every place given back")
    wait(lambda: spent() == billed, timeout=20,
         message=f"every call's seconds counted once ({billed} s billed, {spent()} s counted so far)")
    print(f"\n[{freeswitch.mode}] 4 counted calls: places left {store.r.hlen(places)}, "
          f"budget {spent()} s counted = {billed} s billed by FreeSWITCH")
