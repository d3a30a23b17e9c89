"""One controller serving several FreeSWITCH nodes, each on its own Event Socket
connection: calls stay on the node they came from, a node that goes away does
not stop the others, and readiness and `tollgate calls` name the node."""

import json

import pytest

from controller.app import Config, Controller
from controller.cli import main
from controller.simulator import Caller, Simulator
from tests.rig import PEPPER, PINS, Rig, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]


@pytest.fixture
def two_nodes(redis_url):
    rig = Rig(redis_url)  # node A is the rig's simulator
    rig.provision()
    b = Simulator(scale=0.01).start()
    ctl = Controller(Config(esl_nodes=(("127.0.0.1", rig.sim.port), ("127.0.0.1", b.port)), redis_url=redis_url,
                            pepper=PEPPER, controller_id="multi"))
    ctl.start()
    rig.controllers.append(ctl)
    wait(lambda: rig.sim.inbound_clients() == 1 and b.inbound_clients() == 1 and ctl.connected,
         message="both nodes connected")
    yield rig, b, ctl
    rig.close()
    b.stop()


def test_calls_on_each_node_are_decided_on_that_node(two_nodes):
    rig, b, ctl = two_nodes
    on_a = rig.sim.place_call("0899123456", caller_id="1001")
    on_b = b.place_call("0899123456", caller_id="1002")  # not on the list: refused
    internal_b = b.place_call("1001", caller_id="1002")
    wait(lambda: all(c.state == "hangup" for c in (on_a, on_b, internal_b)), message="calls to end")
    assert (on_a.outcome, internal_b.outcome) == ("bridged", "bridged") and on_b.outcome != "bridged"
    verdicts = {v["uuid"]: v["verdict"] for v in rig.verdicts()}
    assert verdicts[on_a.uuid] == "ALLOW" and verdicts[on_b.uuid] == "DENY"


def test_a_node_that_goes_away_leaves_the_others_served(two_nodes, monkeypatch, capsys):
    rig, b, ctl = two_nodes
    ready = ctl.readiness()
    assert ready["nodes"] == {f"127.0.0.1:{rig.sim.port}": True, f"127.0.0.1:{b.port}": True}
    rig.sim.server.stop()
    rig.sim.drop_connections()
    wait(lambda: not ctl.readiness()["nodes"][f"127.0.0.1:{rig.sim.port}"], message="node A seen down")
    assert ctl.readiness()["event_socket"] is False and ctl.readiness()["nodes"][f"127.0.0.1:{b.port}"] is True
    # Node B still has its calls decided, PIN dialogs included; `tollgate calls` names the node.
    ch = b.place_call("0140000000", caller_id="1003", caller=Caller(keys=["", "", ""]))
    wait(lambda: "play_and_get_digits" in [a for a, _, _ in ch.executed], message="prompt on node B")
    monkeypatch.setenv("TOLLGATE_REDIS_URL", rig.redis_url)
    assert main(["calls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["uuid"], r["node"], r["owner"]) for r in rows] == [(ch.uuid, f"127.0.0.1:{b.port}", "multi")]
    wait(lambda: ch.state == "hangup", timeout=15, message="silent caller refused")
    ok = b.place_call("0612345678", caller_id="1003", caller=Caller(keys=[PINS["1003"][1]]))
    wait(lambda: ok.state == "hangup", message="PIN call on node B")
    assert ok.outcome == "bridged"
    rig.sim.start()  # node A comes back on its own connection
    wait(lambda: ctl.connected, timeout=15, message="node A reconnected")
    back = rig.sim.place_call("0899123456", caller_id="1001")
    wait(lambda: back.state == "hangup", message="node A served again")
    assert back.outcome == "bridged"
