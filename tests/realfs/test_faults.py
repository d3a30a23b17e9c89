"""Faults on a real FreeSWITCH 1.10, in both modes: Redis killed mid-call, the
controller SIGKILLed and restarted under the same name, two controllers on one
switch, and a controller that stops answering. Every call ends bridged or hung
up, and each figure (how long it took) is printed for the closing note."""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from controller.store.audit import settled_verdicts
from tests.realfs.calls import Script
from tests.realfs.conftest import PINS, ControllerProcess
from tests.rig import wait

ANNA = PINS["1003"][0][1]
def verdicts(store) -> list[dict]:
    return settled_verdicts(store.audit.read("acme", count=10_000))


def parked(call) -> bool:
    return any(e.get("Event-Name") == "CHANNEL_PARK" and e.get("Channel-Name", "").startswith("sofia/internal/")
               for e in call.events)


def test_redis_killed_mid_prompt_and_while_calls_park(freeswitch, controller, phones, store, realfs_redis):
    phones.api("global_setvar tollgate_emergency_bypass=false")  # emergency through Tollgate, without Redis
    try:
        prompted = phones.place("1003", "0140000000", Script(keys=[ANNA]))
        wait(lambda: prompted.prompts >= 1, timeout=15, message="the PIN prompt")
        realfs_redis.kill()
        t0 = time.monotonic()
        national = phones.place("1002", "0140000000")
        emergency = phones.place("1004", "112")
        premium = phones.place("1001", "0899123456")
        assert phones.wait_all([prompted, national, emergency, premium], timeout=40)
        down = time.monotonic() - t0
        assert emergency.carrier_got == "112"  # whatever Redis does
        assert national.carrier_got is None and national.cause == "SERVICE_UNAVAILABLE"  # fail closed
        assert premium.carrier_got is None and premium.cause == "SERVICE_UNAVAILABLE"
        assert prompted.cause  # ended, bridged or refused: decided without hanging
        realfs_redis.start()
        again = phones.place("1002", "0140000000")
        assert phones.wait_all([again], timeout=30)
        assert again.carrier_got == "+33140000000"  # served again, no restart
    finally:
        phones.api("global_setvar tollgate_emergency_bypass=true")
        if realfs_redis.proc.poll() is not None:
            realfs_redis.start()
    print(f"\n[{freeswitch.mode}] Redis killed: PIN call in the prompt -> carrier={prompted.carrier_got} "
          f"cause={prompted.cause}; during the outage national {national.cause}, premium {premium.cause}, "
          f"112 -> carrier {emergency.carrier_got}; all ended in {down:.1f}s; after restart national bridged")
    assert phones.wait_no_channels(2.0) is not None


def test_controller_killed_with_calls_parked_and_in_the_prompt_then_restarted(
        freeswitch, realfs_redis, store, phones, tmp_path):
    ctl = ControllerProcess(freeswitch, realfs_redis.url, tmp_path, "ctl-a", "--recovery-interval", "2").start()
    try:
        # Three callers in the prompt, who key nothing the first time (the kill
        # comes then), and the PIN when they are asked again.
        prompted = [phones.place("1003", "0140000000", Script(keys=["", ANNA, ANNA])) for _ in range(3)]
        wait(lambda: all(c.prompts >= 1 for c in prompted), timeout=20, message="three callers in the prompt")
        if freeswitch.mode == "inbound":
            ctl.signal(signal.SIGSTOP)  # the next two park with nobody to read their CHANNEL_PARK
            waiting = [phones.place("1002", "0140000000") for _ in range(2)]
            wait(lambda: all(parked(c) for c in waiting), timeout=15, message="two calls parked")
        else:
            waiting = []
        ctl.signal(signal.SIGKILL)
        ctl.proc.wait(10)
        killed = time.monotonic()
        ctl.start()  # the same name: a new life of the same controller
        everyone = prompted + waiting
        assert phones.wait_all(everyone, timeout=60)
        ended = {c.tag: max(float(e.get("Event-Date-Timestamp", 0)) for e in c.events) / 1e6 for c in everyone}
        wall_killed = time.time() - (time.monotonic() - killed)
        took = sorted(round(t - wall_killed, 1) for t in ended.values())
    finally:
        ctl.stop()
    outcomes = [(c.carrier_got, c.cause) for c in everyone]
    print(f"\n[{freeswitch.mode}] SIGKILL with {len(waiting)} parked and {len(prompted)} in the prompt, restarted "
          f"under the same name: {outcomes}; each call's end after the kill (s): {took}")
    # Socket mode: the sessions died with the process; FreeSWITCH's dialplan ends
    # those calls itself (the `hangup` after `socket`), never bridged unchecked.
    if freeswitch.mode == "inbound":
        assert all(got == "+33140000000" for got, _ in outcomes), outcomes
        assert max(took) < 40
    else:
        assert all(got is None and cause for got, cause in outcomes), outcomes
    assert phones.wait_no_channels(2.0) is not None


def test_two_controllers_on_one_switch_decide_each_call_once(freeswitch, realfs_redis, store, phones, tmp_path):
    if freeswitch.mode == "socket":
        pytest.skip("socket mode: each call's session goes to one address (the dialplan's), so to one controller")
    one = ControllerProcess(freeswitch, realfs_redis.url, tmp_path, "ctl-1").start()
    two = ControllerProcess(freeswitch, realfs_redis.url, tmp_path, "ctl-2").start()
    try:
        specs = [("1002", "0140000000", Script()), ("1001", "0899123456", Script()),
                 ("1002", "0899123456", Script()), ("1003", "0140000000", Script(keys=[ANNA]))] * 3
        calls = [phones.place(p, d, s) for p, d, s in specs]
        assert phones.wait_all(calls, timeout=60)
        wait(lambda: len(verdicts(store)) >= len(calls), timeout=10, message="every verdict")
    finally:
        one.stop()
        two.stop()
    per_call = Counter(v["uuid"] for v in verdicts(store))
    b_legs = {c.b_uuid for c in calls}
    assert set(per_call) == b_legs and set(per_call.values()) == {1}, per_call
    by = Counter(v["controller"] for v in verdicts(store))
    print(f"\n[{freeswitch.mode}] two controllers, {len(calls)} calls: verdicts per call {set(per_call.values())}, "
          f"by controller {dict(by)}")
    assert phones.wait_no_channels(2.0) is not None
