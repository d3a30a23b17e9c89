"""freeswitch-conf/: well-formed XML, and the dialplan's logic on sample destinations.

The walker implements the parts of FreeSWITCH's XML dialplan these files use:
X-PRE-PROCESS set / $${var}, extensions in order, conditions with
break="on-false" (default) / "on-true", field values from channel variables
and ${user_exists(...)}, and $1 substitution in actions.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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

    def route(self, chan: dict) -> tuple[str, list[tuple[str, str]]] | None:
        for ext in self.extensions:
            actions, matched = [], True
            for cond in ext.findall("condition"):
                value = self.field(cond.get("field"), chan)
                m = re.search(self.pre(cond.get("expression")), value)
                brk = cond.get("break", "on-false")
                if m:
                    for a in cond.findall("action"):
                        data = re.sub(r"\$(\d)", lambda g: m.group(int(g.group(1))), self.pre(a.get("data", "")))
                        actions.append((a.get("application"), data))
                    if brk == "on-true":
                        matched = False
                        break
                elif brk == "on-false":
                    matched = False
                    break
            if matched and actions:
                return ext.get("name"), actions
        return None


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
    # Internal extension and a voicemail feature code stay in the dialplan.
    assert dp.route(chan("1002")) is None
    assert dp.route(chan("*97")) is None
    assert dp.route(chan("#21")) is None
    for dest in ("0140000000", "0899123456", "+442079460000", "3949"):
        name, actions = dp.route(chan(dest))
        assert name == "tollgate-outbound"
        sets = dict(a[1].split("=", 1) for a in actions if a[0] == "set")
        assert sets["tollgate_managed"] == "true" and sets["tollgate_dialed"] == dest
        assert sets["tollgate_tenant"] == "${domain_name}"
        assert sets["tollgate_extension"] == "${user_name}"  # the authenticated user, never a caller ID
        assert actions[-1][0] == last_app
        if last_app == "hangup":
            assert actions[-2] == ("socket", "127.0.0.1:8084 async full")
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
