"""End to end: the simulator over TCP, a real redis-server and the real controller.

Each test ends with the rig's invariants: no channel left up, one audit
verdict per managed call, and no PIN in logs, audit, Redis or channel variables.
"""

import logging

import pytest

from controller.simulator import Caller
from controller.store import keys
from tests.rig import PINS, Rig, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

PIN_1003 = PINS["1003"][1]
PIN_1004 = PINS["1004"][1]
SECRETS = (PIN_1003, PIN_1004)


@pytest.fixture(params=["inbound", "socket"])
def mode(request):
    return request.param


@pytest.fixture
def rig(redis_url, mode, caplog):
    caplog.set_level(logging.DEBUG)
    r = Rig(redis_url, mode=mode)
    r.provision()
    r.controller("c1")
    yield r
    r.close()


def prompts_played(rig, ch):
    return [p.rsplit("/", 1)[-1] for u, p in rig.sim.played if u == ch.uuid]


def apps(ch):
    return [a for a, _, _ in ch.executed]


def test_internal_calls_never_reach_the_controller_but_marked_ones_are_bridged(rig, caplog):
    # The dialplan keeps extension-to-extension calls; a park without the mark
    # (another application's) is left alone.
    other = rig.sim.place_call("1002", caller_id="1003", managed=False)
    wait(lambda: other.parked, message="unmarked park")
    # A marked call to a known extension from a PIN extension: bridged, no prompt.
    ch = rig.call("1002", caller_id="1003")
    rig.finish(ch)
    assert ch.outcome == "bridged" and "play_and_get_digits" not in apps(ch)
    assert rig.verdict_of(ch)["class"] == "internal"
    # stays on the PBX (FreeSWITCH expands the caller's domain when the bridge runs)
    assert rig.sim.bridges[-1] == (ch.uuid, "user/1002@acme")
    assert all(a == "set" for a in apps(other)), "the controller touched an unmarked call"
    rig.sim.api(f"uuid_kill {other.uuid}")
    rig.assert_clean(caplog, SECRETS)


def test_national_call_from_a_plain_extension_is_bridged_without_prompt(rig, caplog):
    ch = rig.call("01 40 00 00 00", caller_id="1001")
    rig.finish(ch)
    v = rig.verdict_of(ch)
    assert (ch.outcome, v["verdict"], v["class"]) == ("bridged", "ALLOW", "national")
    assert v["outcome"] == rig.bridge_outcome
    assert rig.sim.bridges[-1][1] == "sofia/gateway/default/+33140000000"
    assert ch.cdr["tollgate_verdict"] == "ALLOW" and ch.cdr["hangup_after_bridge"] == "true"
    assert ch.cdr["tollgate_managed"] == "done"
    assert "play_and_get_digits" not in apps(ch)
    rig.assert_clean(caplog, SECRETS)


def test_premium_refused_for_a_caller_not_listed(rig, caplog):
    ch = rig.call("0899123456", caller_id="1002")  # on the list, but disabled
    rig.finish(ch)
    assert ch.hangup_cause == "OUTGOING_CALL_BARRED"  # Q.850 cause 52
    assert prompts_played(rig, ch) == ["not_authorized.wav"]
    assert not ch.bridged
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["reason"], v["rule"]) == ("DENY", "not_authorized", "premium-intl")
    rig.assert_clean(caplog, SECRETS)


def test_premium_allowed_for_a_listed_enabled_caller(rig, caplog):
    ch = rig.call("0899123456", caller_id="1001")
    rig.finish(ch)
    assert ch.outcome == "bridged"
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["rule"], v["authorized_list"]) == ("ALLOW", "premium-intl", "direction")
    entry = rig.store.admin.get_entry("acme", "direction", "1001")
    wait(lambda: rig.store.admin.get_entry("acme", "direction", "1001")["last_used"], message="last_used")
    assert entry is not None
    rig.assert_clean(caplog, SECRETS)


@pytest.mark.parametrize("keys_,tries", [([PIN_1003], 1), (["11112222", "33334444", PIN_1003], 3)])
def test_ivr_authentication_right_pin(rig, caplog, keys_, tries):
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=keys_))
    rig.finish(ch)
    assert ch.outcome == "bridged"
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["reason"], v["pin_holder"], v["pin_tries"]) == ("ALLOW", "pin_ok", "empfang", str(tries))
    assert ch.cdr["tollgate_pin_holder"] == "empfang"
    assert set(ch.cdr["digits_dialed"]) == {"X"}  # digits_dialed_filter masked every key
    assert "tollgate_pin_input" not in ch.cdr
    assert prompts_played(rig, ch).count("invalid_pin.wav") == tries - 1
    rig.assert_clean(caplog, SECRETS)


def test_ivr_authentication_three_wrong_pins_refused(rig, caplog):
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["11112222", "33334444", "55556666"]))
    rig.finish(ch)
    assert ch.hangup_cause == "OUTGOING_CALL_BARRED" and not ch.bridged
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["reason"], v["pin_tries"]) == ("DENY", "bad_pin", "3")
    rig.assert_clean(caplog, SECRETS)


def test_lockout_after_five_failures_across_calls_then_refused_without_prompt(rig, caplog):
    first = rig.call("0140000000", caller_id="1004", caller=Caller(keys=["11112222"] * 3))
    rig.finish(first)
    assert rig.verdict_of(first)["reason"] == "bad_pin"
    second = rig.call("0140000000", caller_id="1004", caller=Caller(keys=["11112222"] * 3))
    rig.finish(second)
    v = rig.verdict_of(second)
    assert (v["reason"], v["pin_tries"]) == ("locked", "2")  # failures 4 and 5
    assert prompts_played(rig, second)[-1] == "locked.wav"
    assert rig.store.r.ttl(keys.locked("acme", "1004")) > 0
    third = rig.call("0140000000", caller_id="1004", caller=Caller(keys=[PIN_1004]))
    rig.finish(third)
    assert "play_and_get_digits" not in apps(third)
    assert prompts_played(rig, third) == ["locked.wav"] and third.hangup_cause == "OUTGOING_CALL_BARRED"
    # The emergency number from the locked extension is bridged at once.
    sos = rig.call("112", caller_id="1004")
    rig.finish(sos)
    assert sos.outcome == "bridged" and prompts_played(rig, sos) == []
    assert rig.verdict_of(sos)["class"] == "emergency"
    rig.store.admin.unlock("acme", "1004")
    fourth = rig.call("0140000000", caller_id="1004", caller=Caller(keys=[PIN_1004]))
    rig.finish(fourth)
    assert fourth.outcome == "bridged"
    rig.assert_clean(caplog, SECRETS)


def test_caller_hangs_up_during_the_prompt(rig, caplog):
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(hangup_at="prompt", hangup_delay=0.01))
    rig.finish(ch)
    v = rig.verdict_of(ch)
    assert (v["verdict"], v["outcome"]) == ("NONE", "abandoned")
    assert not rig.store.calls.calls(), "the call's in-progress key must go"
    rig.assert_clean(caplog, SECRETS)


def test_a_caller_who_hangs_up_as_the_pin_is_read_leaves_it_in_no_cdr(rig, caplog):
    """The PIN lives in a channel variable from the prompt's end to an `unset`. A
    hangup hook cannot remove it (FreeSWITCH's uuid_setvar finds no channel that
    is down), and an `unset` sent once the prompt's completion came back leaves a
    round trip in which a caller who hangs up leaves the PIN in the CDR (12 calls
    in the real switch's soak). Queued with the prompt, it runs before anything."""
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=[PIN_1003], hangup_at="keyed"))
    rig.finish(ch)
    assert PIN_1003 not in "".join(ch.cdr.values())
    assert "tollgate_pin_input" not in ch.cdr
    rig.assert_clean(caplog, SECRETS)


@pytest.mark.parametrize("mode", ["inbound"])  # a socket session gets its channel's events by design
def test_a_call_without_pin_costs_the_event_socket_one_event(rig, caplog):
    """The mark set last in the dialplan and cleared with the bridge: the mark's
    filter would let through the mark's own completion and the park; its second
    filter drops the completion (fixture 17). The park, nothing else."""
    ch = rig.call("0140000000", caller_id="1001")
    rig.finish(ch)
    assert ch.outcome == "bridged" and ch.state == "hangup"
    assert ch.delivered == ["CHANNEL_PARK"]
    # The mark's `set` ran with its events all the same: FreeSWITCH filtered them out.
    assert ("set", "tollgate_managed=true", 0) in ch.executed and "CHANNEL_EXECUTE_COMPLETE" in ch.events
    assert len(ch.events) > 8  # what FreeSWITCH fired for the call, filtered out
    rig.assert_clean(caplog, SECRETS)


def test_failed_bridge_hangs_up_and_is_audited(rig, caplog):
    ch = rig.call("0140000000", caller_id="1001", caller=Caller(bridge="busy"))
    rig.finish(ch)
    # A static socket session does not follow a bridge nobody counts (an async one does).
    failed = "bridge_failed" if rig.bridge_outcome == "bridged" else "bridge_sent"
    assert ch.hangup_cause == "USER_BUSY"
    assert rig.verdict_of(ch)["outcome"] == failed
    answered = rig.call("0140000000", caller_id="1003", caller=Caller(keys=[PIN_1003], bridge="busy"))
    # Answered for the PIN: FreeSWITCH would leave it parked after the failed
    # bridge; the hangup queued behind the bridge ends it, with the far end's cause.
    rig.finish(answered)
    assert answered.hangup_cause == "USER_BUSY" and rig.verdict_of(answered)["outcome"] == failed
    assert [a for a in apps(answered)][-2:] == ["bridge", "hangup"]
    rig.assert_clean(caplog, SECRETS)


def test_calls_at_once_are_independent(rig, caplog):
    chans = [rig.call("0140000000", caller_id="1003", caller=Caller(keys=[PIN_1003])) for _ in range(5)]
    chans += [rig.call("0899123456", caller_id="1002") for _ in range(5)]
    chans += [rig.call("0612345678", caller_id="1001") for _ in range(5)]
    rig.finish(*chans)
    assert sum(c.outcome == "bridged" for c in chans) == 10
    assert sum(c.hangup_cause == "OUTGOING_CALL_BARRED" for c in chans) == 5
    rig.assert_clean(caplog, SECRETS)


def test_two_controllers_on_one_freeswitch_handle_each_call_once(redis_url, caplog):
    caplog.set_level(logging.DEBUG)
    rig = Rig(redis_url)
    try:
        rig.provision()
        rig.controller("c1")
        rig.controller("c2")
        wait(lambda: rig.sim.inbound_clients() == 2, message="both connected")
        chans = [rig.call("0140000000", caller_id="1001") for _ in range(20)]
        chans += [rig.call("0140000000", caller_id="1003", caller=Caller(keys=[PIN_1003])) for _ in range(4)]
        rig.finish(*chans)
        for ch in chans:
            senders = {conn for app, _, conn in ch.executed if conn}
            assert len(senders) == 1, f"{ch.uuid} got commands from {senders}"
        owners = {v["controller"] for v in rig.verdicts()}
        assert owners <= {"c1", "c2"}
        rig.assert_clean(caplog, SECRETS)
    finally:
        rig.close()


def test_event_socket_dropped_and_restored(redis_url, caplog):
    caplog.set_level(logging.DEBUG)
    rig = Rig(redis_url)
    try:
        rig.provision()
        ctl = rig.controller("c1")
        before = rig.call("0140000000", caller_id="1001")
        rig.finish(before)
        # A call parked in a prompt when the connection drops...
        slow = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["", "", PIN_1003]))
        wait(lambda: "play_and_get_digits" in apps(slow), message="prompt running")
        assert rig.sim.drop_connections() == 2  # the park connection and the ends one
        wait(lambda: ctl.supervisor.reconnects >= 1 and rig.sim.inbound_clients() == 1, message="reconnected")
        # ... is found again and finished (challenged from the start).
        rig.finish(slow, timeout=15)
        assert rig.verdict_of(slow)["verdict"] in ("ALLOW", "DENY")
        after = rig.call("0899123456", caller_id="1001")
        rig.finish(after)
        assert after.outcome == "bridged"
        rig.assert_clean(caplog, SECRETS)
    finally:
        rig.close()
