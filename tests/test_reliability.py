"""Faults one at a time: Redis down or corrupt, dead controllers, bad events, SIGTERM, the watchdog."""

import logging
import os
import signal
import subprocess
import sys

import pytest

from controller.simulator import Caller
from controller.simulator.wire import event_plain
from controller.store import keys
from tests.rig import PEPPER, PINS, Rig, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]
PIN = PINS["1003"][1]


def played(rig, ch):
    return [p.rsplit("/", 1)[-1] for u, p in rig.sim.played if u == ch.uuid]


def spawn_controller(rig, name, *extra, log_path):
    env = {**os.environ, "TOLLGATE_REDIS_URL": rig.redis_url, "TOLLGATE_PEPPER": PEPPER.decode(),
           "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "controller", "run", "--esl-port", str(rig.sim.port),
                                 "--controller-id", name, "--log-level", "debug", *extra],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc


def test_redis_down_fails_closed_but_emergency_and_tollfree_pass(rig, redis_server, caplog):
    rig.controller("c1")
    redis_server.stop()
    national = rig.call("0140000000", caller_id="1001")
    sos = rig.call("112", caller_id="1003")
    free = rig.call("0800123456", caller_id="1001")
    rig.finish(national, sos, free)
    assert national.hangup_cause == "SERVICE_UNAVAILABLE" and played(rig, national) == ["service_unavailable.wav"]
    assert sos.outcome == "bridged" and free.outcome == "bridged"
    # The batch writer tries within milliseconds, fails, and spools them.
    wait(lambda: len(rig.controllers[0].store.audit.spool) >= 3, message="verdicts waiting in the spool")
    redis_server.start()
    # The spool is flushed in the background once Redis answers again.
    reasons = {v["uuid"]: v["reason"] for v in wait(lambda: len(rig.verdicts()) == 3 and rig.verdicts(),
                                                      message="spooled verdicts flushed")}
    assert reasons == {national.uuid: "service_unavailable", sos.uuid: "emergency", free.uuid: "degraded_tollfree"}
    rig.assert_clean(caplog, (PIN,))


def test_fail_open_is_a_tenant_option_read_while_redis_was_up(rig, redis_server):
    rig.store.admin.update_tenant("acme", {"fail_mode": "open"})
    rig.controller("c1")
    rig.finish(rig.call("0140000000", caller_id="1001"))  # settings read and cached
    redis_server.stop()
    ch = rig.call("0612345678", caller_id="1001")
    rig.finish(ch)
    assert ch.outcome == "bridged"
    redis_server.start()
    assert wait(lambda: [v for v in rig.verdicts() if v["uuid"] == ch.uuid])[0]["reason"] == "fail_open"


def test_two_controllers_without_redis_still_act_once_per_call(rig, redis_server):
    rig.controller("c1")
    rig.controller("c2")
    wait(lambda: rig.sim.inbound_clients() == 2)
    redis_server.stop()
    chans = [rig.call("0140000000", caller_id="1001") for _ in range(10)] + [rig.call("112") for _ in range(3)]
    rig.finish(*chans)
    for ch in chans:
        assert len({conn for _, _, conn in ch.executed if conn}) == 1, f"{ch.uuid} handled twice"
    assert sum(c.outcome == "bridged" for c in chans) == 3
    redis_server.start()
    wait(lambda: len(rig.verdicts()) == 13, message="13 verdicts, one per call")
    assert not rig.sim.hash_db, "FreeSWITCH-side claims go with their channels"


def b_in_the_prompt(rig, log_path, *extra):
    """Controller B in its own process, with a PIN call of 1003 in its prompt
    whose caller keys the PIN only from the fourth time on."""
    rig.provision()
    b = spawn_controller(rig, "B", *extra, log_path=log_path)
    wait(lambda: rig.sim.inbound_clients() == 1, timeout=20, message="B connected")
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["", "", "", PIN, PIN, PIN]))
    wait(lambda: ch.prompts >= 1, message="B prompting")
    return b, ch


def test_a_dead_controllers_call_is_taken_over(redis_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    rig = Rig(redis_url, scale=0.2)  # slow enough to kill B in the middle of the PIN dialog
    try:
        b, ch = b_in_the_prompt(rig, tmp_path / "b.log", "--heartbeat-interval", "0.3")
        b.send_signal(signal.SIGKILL)
        b.wait(10)
        assert rig.store.r.get(keys.claim("acme", ch.uuid)).startswith("B~")  # B, this life of it
        a = rig.controller("A", recovery_interval=0.3)
        rig.finish(ch, timeout=30)
        v = rig.verdict_of(ch)
        assert (v["controller"], v["verdict"], ch.outcome) == ("A", "ALLOW", "bridged")
        assert a.metrics.render()
        assert b"Traceback" not in (tmp_path / "b.log").read_bytes()
        rig.assert_clean(caplog, (PIN,))
    finally:
        rig.close()


def test_a_controller_restarted_under_its_own_name_recovers_its_previous_lifes_calls(redis_url, tmp_path, caplog):
    """Issue 31: SIGKILLed with a call parked and one in the PIN prompt, then started
    again under the same --controller-id (a TOML file or a systemd unit pins it).
    It took both for its own calls in progress and left them until park_timeout;
    as a new life it recovers them at once."""
    caplog.set_level(logging.DEBUG)
    rig = Rig(redis_url, scale=0.2)
    try:
        b, prompted = b_in_the_prompt(rig, tmp_path / "b1.log", "--recovery-interval", "0.5")
        b.send_signal(signal.SIGSTOP)
        parked = rig.call("0140000000", caller_id="1002")
        wait(lambda: parked.parked, message="a call parked while B is stopped")
        b.send_signal(signal.SIGKILL)
        b.wait(10)
        b = spawn_controller(rig, "B", "--recovery-interval", "0.5", log_path=tmp_path / "b2.log")
        try:
            rig.finish(prompted, parked, timeout=30)
        finally:
            b.send_signal(signal.SIGTERM)
            b.wait(20)
        for ch in (prompted, parked):
            v = rig.verdict_of(ch)
            assert (v["controller"], v["verdict"], ch.outcome) == ("B", "ALLOW", "bridged")
        assert b"Traceback" not in (tmp_path / "b2.log").read_bytes()
    finally:
        rig.close()


def test_bad_events_and_strange_calls_get_a_safe_outcome(rig, caplog):
    ctl = rig.controller("c1")
    # Events FreeSWITCH would never send: no Unique-ID, no Event-Name, junk lines.
    rig.sim.inject(event_plain([("Event-Name", "CHANNEL_PARK"), ("variable_tollgate_managed", "true")]))
    rig.sim.inject(event_plain([("Unique-ID", "x"), ("Application", "y")]))
    rig.sim.inject(b"Content-Length: 20\nContent-Type: text/event-plain\n\nnot headers at all\n\n")
    rig.sim.inject(b"Content-Type: text/unknown-thing\n\n")
    wait(lambda: ctl.dispatcher.malformed >= 1, message="malformed event counted")
    strange = {
        "ghost-tenant": rig.call("0140000000", caller_id="1001", tenant="ghost"),
        "no-tenant": rig.call("0140000000", caller_id="1001", tenant="bad tenant!"),
        "500-digits": rig.call("9" * 500, caller_id="1001"),
        "sip-uri": rig.call("sip:bob@example.com", caller_id="1001"),
        "unicode": rig.call("０１４０ 😀", caller_id="1001"),
        "unknown-ext": rig.call("0140000000", caller_id="4242"),
    }
    rig.finish(*strange.values())
    for name, ch in strange.items():
        if name == "unknown-ext":
            assert ch.outcome == "bridged", name  # no rule restricts national calls
        else:
            assert ch.hangup_cause == "OUTGOING_CALL_BARRED" and not ch.bridged, name
    # A frame the reader cannot survive: the connection is dropped and made again.
    rig.sim.inject(b"Content-Length: 99999999999\n\n")
    wait(lambda: ctl.supervisor.reconnects >= 1 and rig.sim.inbound_clients() == 1, message="reconnected")
    ok = rig.call("0140000000", caller_id="1001")
    rig.finish(ok)
    assert ok.outcome == "bridged"
    assert "Traceback" not in caplog.text


def test_corrupt_redis_value_refuses_but_emergency_passes(rig):
    rig.store.r.hset(keys.tenant("acme"), "lockout_seconds", "soon")
    rig.controller("c1")
    ch, sos = rig.call("0140000000", caller_id="1001"), rig.call("17", caller_id="1001")
    rig.finish(ch, sos)
    assert ch.hangup_cause == "SERVICE_UNAVAILABLE" and sos.outcome == "bridged"
    v = rig.verdict_of(ch)
    assert v["reason"] == "service_unavailable"


def test_watchdog_ends_a_call_that_outlives_its_bound(redis_url):
    rig = Rig(redis_url, scale=0.2)
    try:
        rig.provision()
        rig.controller("c1", call_bound=1.0)
        ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["", "", ""]))
        rig.finish(ch, timeout=10)
        assert ch.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"
        assert rig.verdict_of(ch)["outcome"] == "watchdog"
    finally:
        rig.close()


def test_sigterm_lets_calls_finish_and_flushes(redis_url, tmp_path):
    rig = Rig(redis_url, scale=0.2)
    try:
        rig.provision()
        proc = spawn_controller(rig, "T", "--shutdown-grace", "20", log_path=tmp_path / "t.log")
        wait(lambda: rig.sim.inbound_clients() == 1, timeout=20, message="connected")
        ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["", PIN]))
        wait(lambda: ch.prompts >= 1, message="prompting")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        # The controller may be gone while the bridge still rings: FreeSWITCH has it.
        wait(lambda: ch.state == "hangup", message="the call ends")
        assert ch.outcome == "bridged"
        assert rig.verdict_of(ch)["verdict"] == "ALLOW"
        text = (tmp_path / "t.log").read_text()
        assert "shutting down: 1 call(s) in progress" in text and "Traceback" not in text
    finally:
        rig.close()


@pytest.mark.parametrize("recorded,expected_cause", [("DENY", "OUTGOING_CALL_BARRED"), ("ALLOW", "")])
def test_a_verdict_recorded_by_a_dead_controller_is_carried_out_not_decided_again(rig, recorded, expected_cause):
    """The controller writes its verdict before acting. One that dies in between
    leaves a parked call and the record: the survivor carries out that record
    (even one it would not have decided itself) and writes no second verdict."""
    # 1001 may call premium; B recorded the opposite to show whose verdict is carried out.
    ch = rig.call("0899123456" if recorded == "DENY" else "0140000000", caller_id="1001"
                  if recorded == "DENY" else "1005")
    wait(lambda: ch.parked, message="the call parked")
    rig.store.r.set(keys.claim("acme", ch.uuid), "B", ex=300)  # B's claim; B has no heartbeat: dead
    record = {"uuid": ch.uuid, "extension": "1001", "verdict": recorded, "reason": "recorded_by_B",
              "class": "premium" if recorded == "DENY" else "national",
              "outcome": "refused" if recorded == "DENY" else "bridge_sent", "controller": "B"}
    intent = {k: v for k, v in record.items() if k != "uuid" and k != "extension"}
    rig.store.calls.record_verdict("acme", ch.uuid, record, intent)
    rig.controller("A", recovery_interval=0.3)
    rig.finish(ch, timeout=15)
    if recorded == "DENY":
        assert ch.hangup_cause == expected_cause and not ch.bridged
    else:
        assert ch.bridged
    assert ch.cdr["tollgate_verdict"] == recorded and ch.cdr["tollgate_reason"] == "recorded_by_B"
    v = rig.verdict_of(ch)  # exactly one verdict: B's
    assert (v["controller"], v["reason"]) == ("B", "recorded_by_B")
    rig.assert_clean()
