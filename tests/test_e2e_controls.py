"""End to end, in inbound and socket mode: the fraud controls of issue 12 on
calls through the simulator, a real redis-server and the real controller."""

import datetime as dt
import logging
import time

import pytest

from controller.simulator import Caller
from policies.schedule import zone_for
from tests.rig import Rig, count_calls, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

OUTSIDE = "+33155501234"  # the outside caller of a forward or a transfer


@pytest.fixture(params=["inbound", "socket"])
def rig(redis_url, request, caplog):
    caplog.set_level(logging.DEBUG)
    r = Rig(redis_url, mode=request.param)
    r.provision()  # 1001 listed on "direction"; 1002 disabled; 1003/1004 with IVR authentication
    r.store.admin.add_entry("acme", "direction", "Anna", "Accueil", "1003")
    r.controller("c1")
    yield r
    r.close()


def test_a_forward_to_a_premium_number_is_refused_unless_a_rule_allows_it(rig):
    # 1003 is listed, but its calls need a PIN, and nobody is there to key it.
    fwd = rig.call("0899123456", caller_id=OUTSIDE, user="", extension="1003", unattended="forward")
    rig.finish(fwd)
    assert not fwd.bridged and fwd.hangup_cause == "OUTGOING_CALL_BARRED"
    v = rig.verdict_of(fwd)
    assert (v["reason"], v["unattended"], v["extension"], v["identity"]) == \
        ("unattended_chargeable", "forward", "1003", "extension")
    rig.store.admin.add_rule("acme", "premium-forwards", "allow", classes=["premium"], lists=["direction"],
                             position=1, unattended=True)
    again = rig.call("0899123456", caller_id=OUTSIDE, user="", extension="1003", unattended="forward")
    rig.finish(again)
    assert again.bridged and rig.verdict_of(again)["reason"] == "allowed_unattended"
    assert not [p for u, p in rig.sim.played if u == again.uuid and "enter_pin" in p]
    rig.assert_clean()


def test_a_blind_transfer_abroad_is_decided_for_the_transferring_extension(rig):
    # 1002's entry is disabled: it may not call abroad, nor have someone else do it.
    xfer = rig.call("+442079460000", caller_id=OUTSIDE, user="", extension="1002", unattended="transfer")
    rig.finish(xfer)
    assert not xfer.bridged and xfer.hangup_cause == "OUTGOING_CALL_BARRED"
    v = rig.verdict_of(xfer)
    assert (v["reason"], v["unattended"], v["extension"], v["caller_id"]) == \
        ("not_authorized", "transfer", "1002", OUTSIDE)
    assert xfer.vars["transfer_source"].split(":")[2] == "bl_xfer"  # as switch_ivr_session_transfer writes it
    rig.assert_clean()


def test_the_eleventh_international_call_in_an_hour_is_refused(rig):
    rig.store.limits.add("acme", {"name": "intl-hourly", "classes": ["international"], "max": 10, "window": 3600})
    calls = [rig.call(f"+44207946{i:04d}", caller_id="1001") for i in range(10)]
    rig.finish(*calls)
    assert all(c.bridged for c in calls)
    eleventh = rig.call("+442079469999", caller_id="1001")
    national = rig.call("0140000000", caller_id="1001")
    other = rig.call("+442079460000", caller_id="1003")  # another extension: its own count (PIN aside)
    rig.finish(eleventh, national, other)
    assert not eleventh.bridged and national.bridged
    v = rig.verdict_of(eleventh)
    assert (v["reason"], v["count"]) == ("velocity_exceeded", "11")
    assert "11th international call in 60 minutes (ext:1001), limit 10" in v["detail"]
    assert rig.verdict_of(other)["reason"] != "velocity_exceeded"
    assert rig.store.r.hget("tg:{acme}:rate:intl-hourly:ext:1001", "n") == "10"
    rig.assert_clean()


def test_a_pin_call_over_its_limit_is_refused_before_any_prompt(rig):
    """An allowed call leaves its counts to the admission; a call about to be
    asked a PIN reads them first: nobody keys a PIN to be refused after it."""
    rig.store.limits.add("acme", {"name": "intl-hourly", "classes": ["international"], "max": 1, "window": 3600})
    count_calls(rig.store.r, "tg:{acme}:rate:intl-hourly:ext:1003", [time.time() - 60], 3600)
    call = rig.call("+442079460000", caller_id="1003")  # 1003's chargeable calls need a PIN
    rig.finish(call)
    assert not call.bridged and call.hangup_cause == "OUTGOING_CALL_BARRED"
    v = rig.verdict_of(call)
    assert (v["reason"], v["count"], v["pin_tries"]) == ("velocity_exceeded", "2", "0")
    assert not [p for u, p in rig.sim.played if u == call.uuid and "enter_pin" in p]
    rig.assert_clean()


def test_freeswitch_cuts_a_call_at_its_longest_duration(rig):
    rig.store.limits.add("acme", {"name": "intl-10m", "kind": "duration", "classes": ["international"],
                                  "seconds": 600})
    # Simulated time runs 100x: 600 s are 6 real seconds; this caller would talk 20 (2,000 s).
    long_call = rig.call("+442079460000", caller_id="1001", caller=Caller(talk_seconds=20))
    rig.finish(long_call, timeout=15)
    assert long_call.bridged and long_call.hangup_cause == "ALLOTTED_TIMEOUT"
    assert (long_call.uuid, 600, "ALLOTTED_TIMEOUT") in rig.sim.scheduled_hangups
    # Set with the bridge's variables, run by FreeSWITCH as the bridge starts: no application of its own.
    apps = [app for app, _, _ in long_call.executed]
    assert "sched_hangup" not in apps and apps.index("multiset") < apps.index("bridge")
    assert long_call.cdr["execute_on_pre_originate"] == "sched_hangup +600 ALLOTTED_TIMEOUT"
    assert rig.verdict_of(long_call)["max_seconds"] == "600"
    short = rig.call("0140000000", caller_id="1001")  # national: no limit
    rig.finish(short)
    assert short.hangup_cause == "NORMAL_CLEARING" and short.uuid not in {u for u, _, _ in rig.sim.scheduled_hangups}
    rig.assert_clean()


def test_a_night_call_is_refused_by_the_schedule(rig):
    # A window that is never now: it closes an hour before the current Paris hour.
    now = dt.datetime.now(zone_for("", "FR"))
    start, end = (now.hour + 2) % 24, (now.hour + 23) % 24
    rig.store.admin.add_rule("acme", "intl-office", "allow", classes=["international"], lists=["direction"],
                             position=1, schedule={"hours": f"{start:02d}:00-{end:02d}:00"})
    rig.store.admin.add_rule("acme", "intl-closed", "deny", classes=["international"], position=2)
    ch = rig.call("+442079460000", caller_id="1001")
    rig.finish(ch)
    v = rig.verdict_of(ch)
    assert not ch.bridged and (v["reason"], v["rule"]) == ("rule_deny", "intl-closed")
    assert "rule 'intl-office' holds only every day" in v["detail"] and "Europe/Paris" in v["detail"]
    rig.assert_clean()


def test_at_most_four_chargeable_calls_at_once_for_the_tenant(rig):
    rig.store.limits.add("acme", {"name": "four-lines", "kind": "concurrency", "scope": "tenant", "max": 4})
    long_talk = Caller(talk_seconds=1.5)
    first = [rig.call(f"014000000{i}", caller_id="1001", caller=long_talk) for i in range(4)]
    wait(lambda: all(c.bridged for c in first), message="four calls talking")
    fifth = rig.call("0140000009", caller_id="1002")
    internal = rig.call("1002", caller_id="1001")  # not chargeable: not counted
    rig.finish(fifth, internal)
    assert not fifth.bridged and internal.bridged
    v = rig.verdict_of(fifth)
    assert v["reason"] == "concurrency_exceeded" and "4 national calls already in progress (tenant)" in v["detail"]
    rig.finish(*first, timeout=15)
    # The ends gave the places back: the next call goes through.
    wait(lambda: rig.store.r.hlen("tg:{acme}:place:four-lines:tenant") == 0, message="places given back")
    after = rig.call("0140000009", caller_id="1002")
    rig.finish(after)
    assert after.bridged
    rig.assert_clean()


def test_a_daily_budget_spent_refuses_until_the_next_day(rig):
    rig.store.limits.add("acme", {"name": "intl-day", "kind": "budget", "classes": ["international"],
                                  "minutes": 1})
    # 0.7 s of real talk is 70 simulated seconds: over the minute after one call.
    first = rig.call("+442079460000", caller_id="1001", caller=Caller(talk_seconds=0.7))
    rig.finish(first)
    assert first.bridged
    wait(lambda: any(int(rig.store.r.get(k) or 0) >= 60 for k in rig.store.r.scan_iter("tg:{acme}:budget:*")),
         message="the call's minutes counted")
    second = rig.call("+442079460001", caller_id="1001")
    national = rig.call("0140000000", caller_id="1001")
    rig.finish(second, national)
    assert not second.bridged and national.bridged
    v = rig.verdict_of(second)
    assert v["reason"] == "budget_exhausted" and "of 1 minutes of international calls used today" in v["detail"]
    rig.assert_clean()


def test_two_controllers_on_a_node_count_each_end_once(redis_url, caplog):
    """Every controller on a node gets every park, and used to get every end too
    (and each added the call's minutes). A counted call is now handed over marked
    with its owner, and only the owner's ends filter passes its end.""" 
    caplog.set_level(logging.DEBUG)
    rig = Rig(redis_url)
    try:
        rig.provision()
        first, second = rig.controller("c1"), rig.controller("c2")
        wait(lambda: rig.sim.inbound_clients() == 2, message="both controllers connected")
        assert rig.sim.ends_clients() == 2  # and each has its ends connection
        rig.store.limits.add("acme", {"name": "day", "kind": "budget", "scope": "tenant", "minutes": 10_000})
        rig.store.limits.add("acme", {"name": "lines", "kind": "concurrency", "scope": "tenant", "max": 50})
        calls = [rig.call(f"014000001{i}", caller_id="1001", caller=Caller(talk_seconds=0.3)) for i in range(8)]
        rig.finish(*calls, timeout=15)
        assert all(c.bridged for c in calls)
        billed = sum(int(c.vars["billsec"]) for c in calls)
        assert billed >= 8 * 20  # 0.3 s of real talk are ~30 simulated seconds
        def spent() -> int:
            return sum(int(rig.store.r.get(k) or 0) for k in rig.store.r.scan_iter("tg:{acme}:budget:day:tenant:*"))

        wait(lambda: spent() == billed, message="every call's minutes, once")
        time.sleep(0.3)  # a second count would have landed by now (ends are read every 0.1 s)
        assert spent() == billed
        assert rig.store.r.hlen("tg:{acme}:place:lines:tenant") == 0
        # Each call's end is marked with the name of the controller that handed it
        # over (its owner mark is that controller's life: name~incarnation).
        assert all(c.vars["tollgate_managed"] == f"ended-{c.vars['tollgate_owner'].rpartition('~')[0]}"
                   for c in calls)
        assert first.name == "c1" and second.name == "c2"
        rig.assert_clean(caplog)
    finally:
        rig.close()


class Receiver:
    """A real HTTP server on loopback that records the webhooks it gets; it
    answers 500 to the first `fail_first` requests (to exercise the retries)."""

    def __init__(self, fail_first: int = 0):
        from gevent.pywsgi import WSGIServer

        self.got: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        self.requests = 0
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/tollgate"

    def app(self, environ, start_response):
        self.requests += 1
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if self.requests <= self.fail_first:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"try again"]
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        self.got.append((headers, body))
        start_response("204 No Content", [])
        return [b""]


SECRET = b"webhook-secret-0123456789"


@pytest.mark.parametrize("mode", ["inbound", "socket"])
def test_a_burst_of_international_calls_suspends_the_tenant_and_is_sent_signed(redis_url, caplog, monkeypatch, mode):
    import hashlib
    import hmac
    import json

    from controller.ops import alerts as alerts_module

    monkeypatch.setattr(alerts_module, "BACKOFF", 0.05)
    receiver = Receiver(fail_first=2)  # the first two deliveries fail: retried
    rig = Rig(redis_url, mode=mode)
    try:
        rig.provision()
        rig.store.admin.update_tenant("acme", {"auto_suspend": "on"})
        rig.store.limits.add("acme", {"name": "intl-burst", "kind": "alert", "classes": ["international"],
                                      "scope": "tenant", "max": 20, "window": 600})
        rig.controller("c1", webhook_url=receiver.url, webhook_secret=SECRET)
        burst = []
        for i in range(30):
            burst.append(rig.call(f"+44207946{i:04d}", caller_id="1001"))
            gevent_sleep(0.02)
        rig.finish(*burst, timeout=20)
        bridged = sum(c.bridged for c in burst)
        assert 20 <= bridged < 30 and not burst[-1].bridged
        refused = [rig.verdict_of(c) for c in burst if not c.bridged]
        assert {v["reason"] for v in refused} == {"tenant_suspended"}
        wait(lambda: receiver.got, timeout=10, message="the webhook")
        headers, body = receiver.got[0]
        payload = json.loads(body)
        assert (payload["tenant"], payload["alert"], payload["count"], payload["suspended"]) == \
            ("acme", "intl-burst", "20", "yes")
        stamp = headers["X-Tollgate-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Tollgate-Signature"], expected)
        assert receiver.requests == 3 and len(receiver.got) == 1  # two failures, then delivered once
        # Emergency and internal calls still pass; lifting the suspension restores the rest.
        sos, internal = rig.call("112", caller_id="1001"), rig.call("1002", caller_id="1001")
        rig.finish(sos, internal)
        assert sos.bridged and internal.bridged
        assert [a["alert"] for a in rig.store.alerts.list("acme")] == ["intl-burst"]
        rig.store.alerts.lift("acme")
        after = rig.call("0140000000", caller_id="1001")
        rig.finish(after)
        assert after.bridged
        audit = [f for _, f in rig.store.audit.read("acme", count=1000)]
        assert [f["action"] for f in audit if f.get("kind") in ("alert", "change") and "alert" in f.get("action", "")] \
            == ["alert.raise", "alert.lift"]
        rig.assert_clean()
    finally:
        rig.close()
        receiver.server.stop()


def gevent_sleep(seconds: float) -> None:
    import gevent

    gevent.sleep(seconds)


def test_lockouts_piling_up_raise_an_alert(redis_url, caplog):
    rig = Rig(redis_url)
    try:
        rig.provision()  # 1003 and 1004 with IVR authentication
        rig.store.admin.update_tenant("acme", {"lockout_failures": "1", "lockout_alert": "2",
                                               "lockout_alert_window": "3600", "auto_suspend": "on"})
        rig.controller("c1")
        first = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["97531"]))
        rig.finish(first)
        assert rig.verdict_of(first)["reason"] == "locked" and not rig.store.alerts.list("acme")
        second = rig.call("0140000000", caller_id="1004", caller=Caller(keys=["97531"]))
        rig.finish(second)
        wait(lambda: rig.store.alerts.list("acme"), message="the lockout alert")
        alert = rig.store.alerts.list("acme")[0]
        assert (alert["alert"], alert["count"], alert["suspended"]) == ("lockouts", "2", "yes")
        assert "2 extensions locked after failed PINs in 60 minutes, threshold 2" in alert["detail"]
        national = rig.call("0140000000", caller_id="1001")
        rig.finish(national)
        assert rig.verdict_of(national)["reason"] == "tenant_suspended"
        rig.assert_clean(caplog, secrets=("97531",))
    finally:
        rig.close()
