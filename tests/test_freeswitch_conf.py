"""freeswitch-conf/: well-formed XML, and the dialplan's logic on sample destinations.

The walker implements the parts of FreeSWITCH's XML dialplan these files use,
as mod_dialplan_xml does: X-PRE-PROCESS set / $${var}, extensions in order with
continue="true", conditions with every break value and anti-actions, field
values from channel variables and ${user_exists(...)}, and $1 substitution in
actions. The real-FreeSWITCH tier (tests/realfs) plays the same on a switch.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.ops.doctor import ends_hunt_without_route

CONF = Path(__file__).resolve().parent.parent / "freeswitch-conf"
XML_FILES = sorted(CONF.rglob("*.xml"))
USERS = {"1000", "1001", "1002"}  # the domain's own extensions in these samples


def test_there_is_configuration_to_check():
    names = {p.relative_to(CONF).as_posix() for p in XML_FILES}
    assert {"autoload_configs/event_socket.conf.xml", "dialplan/default/90_tollgate.xml",
            "socket-mode/dialplan/default/90_tollgate.xml", "dialplan/tollgate_allowed.xml"} <= names


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.relative_to(CONF).as_posix())
def test_every_file_is_well_formed(path):
    ET.parse(path)


def test_event_socket_is_loopback_with_acl_and_no_default_password():
    params = {p.get("name"): p.get("value") for p in ET.parse(CONF / "autoload_configs/event_socket.conf.xml")
              .getroot().iter("param")}
    assert params["listen-ip"] == "127.0.0.1"
    assert params["apply-inbound-acl"] == "loopback.auto"
    assert params["password"] != "ClueCon" and "CHANGE_ME" in params["password"]


class Dialplan:
    def __init__(self, path: Path):
        root = ET.parse(path).getroot()
        self.globals = {}
        for el in root.iter("X-PRE-PROCESS"):
            if el.get("cmd") == "set":
                k, _, v = el.get("data").partition("=")
                self.globals[k] = v
        self.extensions = list(root.iter("extension"))

    def pre(self, text: str) -> str:
        return re.sub(r"\$\$\{(\w+)\}", lambda m: self.globals[m.group(1)], text)

    def field(self, name: str, chan: dict) -> str:
        if not name.startswith("${"):
            return chan.get(name, "")

        def expand(text):
            m = re.fullmatch(r"\$\{user_exists\(id (.+) (.+)\)\}", text)
            if m:
                return "true" if expand(m.group(1)) in USERS else "false"
            return re.sub(r"\$\{(\w+)\}", lambda v: chan.get(v.group(1), ""), text)

        return expand(name)

    def route(self, chan: dict):
        """As mod_dialplan_xml's dialplan_hunt and parse_exten do: extensions in
        order; in each, conditions in order, a passing one adding its actions and a
        failing one its anti-actions; break="on-false" (default) stops at a failure,
        "on-true" at a pass, "always" at either, "never" at neither; the extension
        is matched when the last condition looked at passed, and a matched one ends
        the hunt unless continue="true".

        Returns None when no extension took the call (the rest of the dialplan
        gets it), NO_ROUTE when one ended the hunt with no action (FreeSWITCH:
        "No Route, Aborting"), else (last matched extension's name, actions)."""
        actions, name = [], None
        for ext in self.extensions:
            proceed, added = False, []
            for cond in ext.findall("condition"):
                value = self.field(cond.get("field"), chan)
                m = re.search(self.pre(cond.get("expression")), value)
                proceed = m is not None
                brk = cond.get("break", "on-false")
                for a in cond.findall("action" if m else "anti-action"):
                    data = self.pre(a.get("data", ""))
                    if m:
                        data = re.sub(r"\$(\d)", lambda g: m.group(int(g.group(1))) or "", data)
                    added.append((a.get("application"), data))
                if brk == "always" or (brk == "on-true" and m) or (brk == "on-false" and not m):
                    break
            actions += added
            if proceed:
                name = ext.get("name")
                if ext.get("continue") != "true":
                    return (name, actions) if actions else NO_ROUTE
        return (name, actions) if actions else None


NO_ROUTE = "NO_ROUTE"


def _conditions_that_end_matched_without_action(path: Path) -> list[str]:
    """The pattern that ended every internal call on a stock FreeSWITCH (the
    doctor's own check, on a file)."""
    return ends_hunt_without_route(list(ET.parse(path).getroot().iter("extension")))


@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.relative_to(CONF).as_posix())
def test_no_condition_ends_the_hunt_with_no_route(path):
    assert _conditions_that_end_matched_without_action(path) == []


def test_the_check_finds_the_pattern_that_broke():
    broken = ET.fromstring(
        '<include><extension name="x"><condition field="destination_number" expression="^[*#]"'
        ' break="on-true"/><condition field="destination_number" expression="^"><action'
        ' application="park"/></condition></extension></include>')
    import tempfile
    with tempfile.NamedTemporaryFile("wb", suffix=".xml") as f:
        ET.ElementTree(broken).write(f)
        f.flush()
        assert _conditions_that_end_matched_without_action(Path(f.name))
        dp = Dialplan(Path(f.name))
        assert dp.route(chan("*98")) == NO_ROUTE  # the walker sees what FreeSWITCH saw


def chan(dest, **extra):
    """A registered phone's channel, as sofia leaves it after digest authentication."""
    return {"destination_number": dest, "domain_name": "acme.example", "user_name": "1001",
            "sip_authorized": "true", "caller_id_number": "1001", **extra}


@pytest.mark.parametrize("path,last_app", [
    ("dialplan/default/90_tollgate.xml", "park"),
    ("socket-mode/dialplan/default/90_tollgate.xml", "hangup"),
])
def test_dialplan_sends_only_outside_calls_to_tollgate(path, last_app):
    dp = Dialplan(CONF / path)
    # Internal extension and feature codes go on to the rest of the dialplan, as if
    # the file were absent (not "no route": the stock dialplan serves them after it).
    for dest in ("1002", "*97", "*98", "#21", "**1002"):
        assert dp.route(chan(dest)) is None, dest
    for dest in ("0140000000", "0899123456", "+442079460000", "3949"):
        name, actions = dp.route(chan(dest))
        assert name == "tollgate-outbound"
        sets = dict(a[1].split("=", 1) for a in actions if a[0] == "set")
        assert sets["tollgate_managed"] == "true" and sets["tollgate_dialed"] == dest
        assert sets["tollgate_tenant"] == "${domain_name}"
        assert sets["tollgate_extension"] == "${user_name}"  # the authenticated user, never a caller ID
        assert actions[-1][0] == last_app
        if last_app == "hangup":
            # Static (no `async`): each command runs as it is read, no park (issue 32).
            assert actions[-2] == ("socket", "127.0.0.1:8084 full")
            # With no park, FreeSWITCH's scheduler bounds the call whatever the
            # controller does; the handover cancels the group (commands.cancel_bound).
            assert actions[-3] == ("eval", "${sched_api(+180 tollgate-${uuid} uuid_kill ${uuid} "
                                           "RECOVERY_ON_TIMER_EXPIRE)}")
        else:
            assert "park_timeout" in sets
            # The mark right before the park: the controller's filter lets every
            # event of a marked channel through, so nothing may run after it.
            assert actions[-2:] == [("set", "tollgate_managed=true"), ("park", "")]
    # Emergency: straight to the carrier, unless the operator turns the bypass off.
    name, actions = dp.route(chan("112"))
    assert name == "tollgate-emergency-bypass" and actions[-1] == ("bridge", "sofia/gateway/carrier/112")
    name, _ = dp.route(chan("112", tollgate_emergency_bypass="false"))
    assert name == "tollgate-outbound"
    # Bypass off and not a number Tollgate takes: passed on, never "no route".
    assert dp.route(chan("*98", tollgate_emergency_bypass="false")) is None
    assert dp.route(chan("1002", tollgate_emergency_bypass="false")) is None
    # A call sofia did not authenticate (a trunk, a public profile) still goes to
    # Tollgate, but names no extension: whatever its caller ID, it is nobody.
    unauthenticated = chan("0899123456", sip_authorized="", user_name="", caller_id_number="1001")
    name, actions = dp.route(unauthenticated)
    assert name == "tollgate-outbound" and actions[-1][0] == last_app
    assert not [a for a in actions if a[1].startswith("tollgate_extension")]
    assert not [a for a in actions if "caller_id" in a[1] or "sip_from" in a[1]]
    # Letters, SIP URIs: not ours (the stock dialplan's sip_uri / enum handle or reject them).
    assert dp.route(chan("sip:bob@example.com")) is None


def test_allowed_context_bridges_only_allowed_calls():
    dp = Dialplan(CONF / "dialplan/tollgate_allowed.xml")
    name, actions = dp.route(chan("+33899123456", tollgate_verdict="ALLOW"))
    assert actions[-1] == ("bridge", "sofia/gateway/carrier/+33899123456")
    for verdict in ("DENY", ""):
        name, actions = dp.route(chan("+33899123456", tollgate_verdict=verdict))
        assert actions == [("hangup", "OUTGOING_CALL_BARRED")]
