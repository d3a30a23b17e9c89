"""`tollgate doctor` against the simulator: the shipped configuration passes,
and each broken one is named in the output, with what to fix."""

import pytest

from controller.cli import main
from controller.ops.doctor import analyse_context
from controller.ops.prompt_catalog import PACKAGED_ROOT
from controller.simulator import Simulator
from controller.simulator.node import INBOUND_DIALPLAN, MODULES, SOCKET_DIALPLAN, NodeConfig
from controller.testing import free_port

SHIPPED = INBOUND_DIALPLAN.read_text()


def doctor(capsys, node: NodeConfig, *extra: str, password: str = "ClueCon") -> tuple[int, list[str]]:
    sim = Simulator(node=node).start()
    try:
        rc = main(["doctor", "--esl", f"127.0.0.1:{sim.port}", "--esl-password", password, *extra])
        # Read-only: no channel touched, nothing but api, the subscription, the filter and exit.
        assert {cmd.split()[0] for _, cmd in sim.commands} <= {"auth", "api", "event", "filter", "exit"}, sim.commands
        assert not sim.hash_db
    finally:
        sim.stop()
    lines = capsys.readouterr().out.splitlines()
    return rc, lines


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def test_the_shipped_configuration_passes(capsys):
    rc, lines = doctor(capsys, NodeConfig())
    assert rc == 0 and not failures(lines), lines
    text = "\n".join(lines)
    for expected in ("password accepted", "FreeSWITCH 1.10", "digits_dialed_filter", "event filter accepted",
                     "marks outbound calls", "park_timeout=180", "all 21 prompt files present"):
        assert expected in text


def test_a_dialplan_without_the_mark_is_named(capsys):
    local_only = ('<include><extension name="local"><condition field="destination_number" expression="^(10\\d\\d)$">'
                  '<action application="bridge" data="user/$1"/></condition></extension></include>')
    rc, lines = doctor(capsys, NodeConfig(dialplan={"default": [local_only]}))
    assert rc == 1
    assert failures(lines) == ["FAIL  dialplan context 'default': no extension sets tollgate_managed=true: outbound "
                               "calls never reach Tollgate (install freeswitch-conf/dialplan/default/90_tollgate.xml,"
                               " then reloadxml)"]


def test_missing_prompts_are_named_by_language(capsys):
    rc, lines = doctor(capsys, NodeConfig(absent=(str(PACKAGED_ROOT / "fr"),)))
    assert rc == 1
    [line] = failures(lines)
    assert "7 of 21 prompt files missing" in line and "fr/enter_pin.wav" in line and "--sound-root" in line


def test_a_park_timeout_shorter_than_the_call_bound_is_named(capsys):
    short = SHIPPED.replace("park_timeout=180:", "park_timeout=60:")
    rc, lines = doctor(capsys, NodeConfig(dialplan={"default": [short]}))
    assert rc == 1
    [line] = failures(lines)
    assert "park_timeout=60:RECOVERY_ON_TIMER_EXPIRE must be longer than Tollgate's call bound (120 s)" in line
    rc, lines = doctor(capsys, NodeConfig(dialplan={"default": [short]}), "--call-bound", "45")
    assert rc == 0, lines


def test_a_missing_module_and_a_wrong_password_are_named(capsys):
    rc, lines = doctor(capsys, NodeConfig(modules=MODULES - {"mod_hash"}))
    assert rc == 1 and len(failures(lines)) == 1 and "module mod_hash is not loaded" in failures(lines)[0]
    rc, lines = doctor(capsys, NodeConfig(), password="wrong")
    assert rc == 1 and "password was refused" in failures(lines)[0]


def test_an_unknown_context_is_named(capsys):
    rc, lines = doctor(capsys, NodeConfig(), "--context", "users_acme")
    assert rc == 1 and "dialplan context 'users_acme' not found" in failures(lines)[0]


def test_socket_mode_checks_the_socket_target(capsys):
    import gevent.server

    listener = gevent.server.StreamServer(("127.0.0.1", free_port()), lambda sock, _addr: sock.close())
    listener.start()
    try:
        conf = SOCKET_DIALPLAN.read_text().replace("127.0.0.1:8084", f"127.0.0.1:{listener.server_port}")
        rc, lines = doctor(capsys, NodeConfig(dialplan={"default": [conf]}), "--mode", "socket")
        assert rc == 0, lines
        assert any(f"target 127.0.0.1:{listener.server_port} accepts connections" in line for line in lines)
    finally:
        listener.stop()
    conf = SOCKET_DIALPLAN.read_text().replace("127.0.0.1:8084", f"127.0.0.1:{free_port()}")
    rc, lines = doctor(capsys, NodeConfig(dialplan={"default": [conf]}), "--mode", "socket")
    assert rc == 1 and "does not answer from here" in failures(lines)[0]
    # The inbound dialplan on a node checked for socket mode: no socket application.
    rc, lines = doctor(capsys, NodeConfig(), "--mode", "socket")
    assert rc == 1 and "has no socket application" in failures(lines)[0]


@pytest.mark.parametrize("value, fragment", [
    ("${caller_id_number}", "which the caller writes"),
    ("${sip_from_user}", "which the caller writes"),
])
def test_a_payer_taken_from_the_caller_id_fails(value, fragment):
    xml = SHIPPED.replace("tollgate_extension=${user_name}", f"tollgate_extension={value}")
    found, _ = analyse_context(_context(xml), "default", "inbound", 120)
    assert [f.text for f in found if f.level == "FAIL" and fragment in f.text]


def _context(xml: str) -> str:
    context = "<context name='default'>" + xml.split("<include>", 1)[1].rsplit("</include>", 1)[0] + "</context>"
    return "\n".join(line for line in context.splitlines() if "X-PRE-PROCESS" not in line)


def test_a_condition_that_ends_the_hunt_with_no_route_fails():
    """The dialplan that ended every internal call on a stock FreeSWITCH."""
    old = SHIPPED.replace('expression="^[^*#]"/>', 'expression="^[*#]" break="on-true"/>')
    found, _ = analyse_context(_context(old), "default", "inbound", 120)
    assert [f.text for f in found if f.level == "FAIL" and "no route" in f.text]
    found, _ = analyse_context(_context(SHIPPED), "default", "inbound", 120)
    assert not [f.text for f in found if f.level == "FAIL"]


BOUND_ACTION = ('<action application="eval" data="${sched_api(+180 tollgate-${uuid} uuid_kill ${uuid} '
                'RECOVERY_ON_TIMER_EXPIRE)}"/>')


def test_socket_mode_without_a_bound_before_the_socket_fails():
    shipped = SOCKET_DIALPLAN.read_text()
    assert BOUND_ACTION in shipped
    found, _ = analyse_context(_context(shipped), "default", "socket", 120)
    assert [f.text for f in found if f.level == "ok" and "bounded by a scheduled uuid_kill after 180 s" in f.text]
    assert not [f.text for f in found if f.level in ("FAIL", "warn")]
    found, _ = analyse_context(_context(shipped.replace(BOUND_ACTION, "")), "default", "socket", 120)
    assert [f.text for f in found if f.level == "FAIL" and "no bound before the socket application" in f.text]
    short = shipped.replace("sched_api(+180 ", "sched_api(+60 ")
    found, _ = analyse_context(_context(short), "default", "socket", 120)
    assert [f.text for f in found if f.level == "FAIL" and "(+60 s) must be longer" in f.text]


def test_an_async_socket_application_is_named_slow_and_needs_park_timeout():
    """`socket ... async full` still works (socket_function parks the call, and
    park_timeout bounds it), at the park loop's pace: doctor says so."""
    shipped = SOCKET_DIALPLAN.read_text()
    old = shipped.replace(BOUND_ACTION, "").replace(' full"/>', ' async full"/>')
    found, _ = analyse_context(_context(old), "default", "socket", 120)
    assert [f.text for f in found if f.level == "warn" and "is async" in f.text and "20 ms" in f.text]
    assert [f.text for f in found if f.level == "FAIL" and "no park_timeout before the socket" in f.text]
    bounded = old.replace('<action application="socket"',
                          '<action application="set" data="park_timeout=180:RECOVERY_ON_TIMER_EXPIRE"/>'
                          '<action application="socket"')
    found, _ = analyse_context(_context(bounded), "default", "socket", 120)
    assert [f.text for f in found if f.level == "ok" and "bounded by park_timeout" in f.text]
