"""The simulator replays what a real FreeSWITCH 1.10.12 did with queued commands
(tests/fixtures/esl/11-*, 13-*, captured by `python -m tests.realfs.capture`):
the same messages, sent the same way, end in the same order of completions on
the simulator, with and without event-lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.freeswitch import commands
from controller.freeswitch.esl import InboundConnection
from controller.freeswitch.framing import FrameReader, decode_frame
from controller.simulator import Caller, Simulator
from tests.rig import wait

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "esl"
BRIDGE = [("set", "hangup_after_bridge=true"), ("bridge", "sofia/gateway/carrier/+33140000000"),
          commands.hangup_if_bridge_fails()]
PLAYBACK = [("playback", "tone_stream://%(1000,0,440)"), ("set", "after_playback=yes"), ("hangup", "NORMAL_CLEARING")]
CASES = [("11-bridge-then-queued-hangup", BRIDGE), ("13-playback-then-queued-set", PLAYBACK)]


def completions(events) -> list[str]:
    """The applications Tollgate queued, in the order FreeSWITCH reported them done,
    and whether the call got bridged."""
    out, seen_park = [], False
    for name, app in events:
        if name == "CHANNEL_PARK":
            seen_park = True
        elif seen_park and name == "CHANNEL_EXECUTE_COMPLETE" and app != "park":
            out.append(app)
        elif seen_park and name == "CHANNEL_BRIDGE":
            out.append("(bridged)")
    return out


def captured(name: str) -> list[str]:
    events = []
    for headers, body in FrameReader().feed((FIXTURES / f"{name}.rx").read_bytes()):
        kind, h, _ = decode_frame(headers, body)
        if kind == "event":
            events.append((h.get("Event-Name"), h.get("Application", "")))
    return completions(events)


def simulated(steps, lock: bool) -> list[str]:
    sim = Simulator(scale=0.05).start()
    seen = []
    conn = InboundConnection("127.0.0.1", sim.port, "ClueCon",
                             lambda h: seen.append((h.get("Event-Name"), h.get("Application", ""))))
    try:
        conn.open()
        ch = sim.place_call("0140000000", caller=Caller(talk_seconds=1))
        wait(lambda: ("CHANNEL_PARK", "") in seen, message="the park")
        msgs = []
        for app, arg in steps:
            msg = commands.execute(app, arg, commands.new_event_uuid(), ch.uuid)
            msgs.append(msg if lock else msg.replace("event-lock: true\n", ""))
        conn.send_many(msgs)  # in one write, as captured
        wait(lambda: ("CHANNEL_HANGUP_COMPLETE", "") in seen, message="the call's end")
    finally:
        conn.close()
        sim.stop()
    return completions(seen)


@pytest.mark.parametrize("name,steps", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lock", [False, True], ids=["no-event-lock", "event-lock"])
def test_the_simulator_runs_queued_commands_as_the_real_switch_did(name, steps, lock):
    real = captured(f"{name}-{'event-lock' if lock else 'no-event-lock'}")
    assert simulated(steps, lock) == real
    # What the captures show, said plainly:
    if name.startswith("11"):
        assert ("(bridged)" in real) is lock  # unlocked, the hangup ran inside the bridge's originate
    else:
        assert real.index("playback") > real.index("set") if not lock else real[0] == "playback"
