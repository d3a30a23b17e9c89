"""benchmarks.floor_socket, the floor `benchmarks.realfs --mode socket` measures
the controller against: it must hand a call over as Tollgate does, or its CPU
per call means nothing. Run as the benchmark runs it, against the simulator's
static socket session."""

from __future__ import annotations

import subprocess
import sys

from controller.simulator import Caller, Simulator
from tests.conftest import free_port
from tests.rig import stop_processes, wait


def test_the_socket_floor_bridges_like_tollgate_and_lets_the_session_go():
    sim = Simulator(scale=0.05).start()
    port = free_port()
    floor = subprocess.Popen([sys.executable, "-m", "benchmarks.floor_socket", "--listen", f"127.0.0.1:{port}",
                              "--match", r"^0(\d+)$", "--route", r"sofia/gateway/carrier/+33\1"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert "started" in floor.stdout.readline()
        ch = sim.place_call("0140000000", mode="socket", socket_address=("127.0.0.1", port), socket_args="full",
                            caller=Caller(talk_seconds=0.5))
        wait(lambda: ch.bridged, timeout=10, message="the bridge")
        assert (ch.uuid, "sofia/gateway/carrier/+33140000000") in sim.bridges
        assert ch.vars.get("tollgate_verdict") == "ALLOW" and ch.vars.get("hangup_after_bridge") == "true"
        # The floor closed its end once the handover was acknowledged (its replies
        # go nowhere); the call talks to its end and hangs up after the bridge.
        wait(lambda: ch.state == "hangup", timeout=10, message="the end of the call")
        assert ch.hangup_cause == "NORMAL_CLEARING"
    finally:
        stop_processes([floor])
        sim.stop()
