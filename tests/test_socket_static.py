"""Socket mode with the socket application static (issue 32), freeswitch-conf's:
each command runs as soon as FreeSWITCH reads it, the dialplan's bound is a
scheduled uuid_kill, and a call nobody counts is handed over without events."""

from __future__ import annotations

import pytest

from controller.simulator import Caller
from tests.rig import Rig, wait
from tests.test_simulator_queue import _socket_dialplan_bound


@pytest.fixture
def rig(redis_url):
    r = Rig(redis_url, mode="socket")
    r.provision()
    r.controller()
    yield r
    r.close()


def _session_commands(rig, ch) -> list[str]:
    conn_ids = {cid for _, _, cid in ch.executed if cid}
    return [line for cid, line in rig.sim.commands if cid in conn_ids]


def test_an_allowed_call_is_handed_over_at_once_without_events_and_outlives_the_bound(rig):
    """The bound (180 simulated seconds, 1.8 s here) would cut a bridged call that
    talks longer: the handover deletes its group first. The session asks for no
    events and no linger, and we close it once the handover is acknowledged
    (release): FreeSWITCH reads on what it was sent (fixture 16)."""
    ch = rig.call("0140000000", caller_id="1001", caller=Caller(talk_seconds=2.5),
                  before_socket=_socket_dialplan_bound())
    wait(lambda: ch.bridged, message="the bridge")
    # Talking, and nothing of ours holds the call any more: no session greenlet.
    server = rig.controllers[0].server
    wait(lambda: not server.running, message="the session released")
    assert ch.state != "hangup"
    rig.finish(ch, timeout=10)
    assert [arg for app, arg, _ in ch.executed if app == "eval"][0].startswith("+OK Added: ")  # the bound
    assert ch.outcome == "bridged" and ch.hangup_cause == "NORMAL_CLEARING"  # not RECOVERY_ON_TIMER_EXPIRE
    sent = _session_commands(rig, ch)
    assert f"api sched_del tollgate-{ch.uuid}" in sent
    assert not [c for c in sent if c.startswith(("myevents", "linger", "event"))], sent
    assert not ch.delivered  # not one event sent to the session
    assert f"tollgate-{ch.uuid}" not in rig.sim.sched_groups
    # Recorded once, with the outcome it had when recorded: no second audit entry.
    entries = [f for _, f in rig.store.audit.read("acme", count=100) if ch.uuid in f.values()]
    assert len(entries) == 1 and rig.verdict_of(ch)["outcome"] == "bridge_sent", entries
    rig.assert_clean()


def test_without_its_cancel_the_bound_cuts_the_bridged_call(rig, monkeypatch):
    """The other side of the test above: a handover that deleted nothing."""
    from controller.freeswitch import commands

    monkeypatch.setattr(commands, "cancel_bound", lambda channel: "api sched_del nothing-of-ours")
    ch = rig.call("0140000000", caller_id="1001", caller=Caller(talk_seconds=2.5),
                  before_socket=_socket_dialplan_bound())
    rig.finish(ch, timeout=10)
    assert ch.bridged and ch.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"


def test_a_counted_call_is_followed_and_counted_from_its_channel_hangup(rig):
    """A static session never gets CHANNEL_HANGUP_COMPLETE (the channel reports
    once the session is over): the billed seconds come from CHANNEL_HANGUP, the
    way FreeSWITCH computes them, and match its CDR."""
    rig.store.limits.add("acme", {"name": "day", "kind": "budget", "scope": "tenant", "minutes": 10_000})
    calls = [rig.call(f"014000000{i}", caller_id="1001", caller=Caller(talk_seconds=0.3 + 0.17 * i))
             for i in range(3)]
    rig.finish(*calls, timeout=10)
    assert all(c.outcome == "bridged" for c in calls)
    billed = sum(int(c.cdr["billsec"]) for c in calls)
    assert billed > 0

    def spent() -> int:
        return sum(int(rig.store.r.get(k) or 0) for k in rig.store.r.scan_iter("tg:{acme}:budget:day:tenant:*"))

    wait(lambda: spent() == billed, timeout=5, message=f"{billed} s billed counted ({spent()} so far)")
    for c in calls:
        v = rig.verdict_of(c)
        assert v["outcome"] == "bridged"  # followed: a counted call's session reads its bridge
        assert "myevents" in _session_commands(rig, c)
    rig.assert_clean()
