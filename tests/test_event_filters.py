"""Event Socket filters as mod_event_socket 1.10 applies them (event_handler;
fixture 17, captured on the real switch): the controller's connection drops
the CHANNEL_EXECUTE_COMPLETE of the dialplan's own mark, and the simulator
filters as the switch does."""

from pathlib import Path

import pytest

from controller.freeswitch import commands
from controller.freeswitch.esl import InboundConnection
from controller.freeswitch.framing import FrameReader, decode_frame
from controller.simulator import Caller, Simulator
from controller.simulator.connection import _filters_pass
from tests.rig import wait

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "esl"


def events(name: str) -> list[dict]:
    out = []
    for headers, body in FrameReader().feed((FIXTURES / f"{name}.rx").read_bytes()):
        kind, parsed, _ = decode_frame(headers, body)
        if kind == "event":
            out.append(parsed)
    return out


def test_on_the_real_switch_the_marks_execution_passes_the_mark_filter_and_not_the_negative_one():
    plain = events("17-inbound-park-mark-unfiltered")
    assert [(e["Event-Name"], e.get("Application-Data")) for e in plain[:2]] == [
        ("CHANNEL_EXECUTE_COMPLETE", "tollgate_managed=true"), ("CHANNEL_PARK", None)]
    filtered = events("17-inbound-park-mark-filtered")
    assert filtered[0]["Event-Name"] == "CHANNEL_PARK"
    # Only that event is gone: the rest of the call comes as before.
    assert [e["Event-Name"] for e in filtered] == [e["Event-Name"] for e in plain[1:]]
    assert commands.filter_mark_executed() == "filter Application-Data -tollgate_managed=true"


MANAGED = ("variable_tollgate_managed", "true")
MARK = ("Application-Data", "-tollgate_managed=true")


@pytest.mark.parametrize("filters, headers, sent", [
    ([], {}, False),  # no filter list at all is the caller's case (everything passes), not this one
    ([MANAGED], {"variable_tollgate_managed": "true"}, True),
    ([MANAGED], {"variable_tollgate_managed": "TRUE"}, True),  # strcasecmp
    ([MANAGED], {"variable_tollgate_managed": "done"}, False),
    ([MANAGED], {}, False),  # a filter counts only for an event with its header
    ([MANAGED, MARK], {"variable_tollgate_managed": "true", "Application-Data": "tollgate_managed=true"}, False),
    ([MARK, MANAGED], {"variable_tollgate_managed": "true", "Application-Data": "tollgate_managed=true"}, False),
    ([MANAGED, MARK], {"variable_tollgate_managed": "true", "Application-Data": "hangup_after_bridge=true"}, True),
    ([MANAGED, MARK], {"variable_tollgate_managed": "true"}, True),
    ([("Event-Name", "+CHANNEL_PARK")], {"Event-Name": "CHANNEL_PARK"}, True),
    ([("Event-Name", "/^CHANNEL_(PARK|ANSWER)$/")], {"Event-Name": "CHANNEL_ANSWER"}, True),
    ([("Event-Name", "/^CHANNEL_(PARK|ANSWER)$/")], {"Event-Name": "CHANNEL_HANGUP"}, False),
    # A negative value is compared as text, slashes and all (the regex test looks at the value's first byte).
    ([("Event-Name", "CHANNEL_PARK"), ("Event-Name", "-/CHANNEL_PARK/")], {"Event-Name": "CHANNEL_PARK"}, True),
])
def test_filters_combine_as_mod_event_socket_combines_them(filters, headers, sent):
    assert _filters_pass(filters, headers.get) is sent


@pytest.fixture
def sim():
    s = Simulator(scale=0.05).start()
    yield s
    s.stop()


def test_the_controllers_connection_gets_the_park_and_not_the_marks_execution(sim):
    seen = {"controller": [], "plain": []}
    ours = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda h: seen["controller"].append(dict(h)))
    plain = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda h: seen["plain"].append(dict(h)),
                              subscribe_filter=False)
    ours.open()
    plain.open()
    try:
        plain.send(commands.filter_managed())  # the mark's filter alone
        ch = sim.place_call("0140000000", caller=Caller(talk_seconds=1))
        wait(lambda: any(e.get("Event-Name") == "CHANNEL_PARK" for e in seen["controller"]), message="the park")
        wait(lambda: any(e.get("Event-Name") == "CHANNEL_PARK" for e in seen["plain"]), message="the park")
    finally:
        ours.close()
        plain.close()
    mine = [e for e in seen["controller"] if e.get("Unique-ID") == ch.uuid]
    theirs = [e for e in seen["plain"] if e.get("Unique-ID") == ch.uuid]
    assert mine[0]["Event-Name"] == "CHANNEL_PARK"
    assert [(e["Event-Name"], e.get("Application-Data")) for e in theirs[:2]] == [
        ("CHANNEL_EXECUTE_COMPLETE", "tollgate_managed=true"), ("CHANNEL_PARK", None)]
