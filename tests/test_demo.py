"""The README's first command: `tollgate demo`, in both modes, call by call."""

import json
import subprocess
import sys

import pytest

EXPECTED = [  # (verdict, reason, how the call ended)
    ("ALLOW", "allowed", "bridged"), ("DENY", "not_authorized", "refused"),
    ("ALLOW", "allowed", "bridged"), ("DENY", "not_authorized", "refused"),
    ("ALLOW", "allowed", "bridged"), ("ALLOW", "pin_ok", "bridged"),
    ("ALLOW", "pin_ok", "bridged"), ("ALLOW", "internal", "bridged"),
    ("ALLOW", "service", "bridged"), ("ALLOW", "allowed", "bridged"),
    ("DENY", "bad_pin", "refused"), ("ALLOW", "emergency", "bridged"),
    ("NONE", "abandoned", "abandoned"), ("ALLOW", "allowed", "bridged"),
    ("DENY", "not_authorized", "refused"),  # 1005 presenting 1001's number
]


@pytest.mark.parametrize("mode", ["inbound", "socket"])
def test_demo_places_every_scripted_call(mode):
    out = subprocess.run([sys.executable, "-m", "controller", "demo", "--json", "--mode", mode],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)
    assert [(r["verdict"], r["reason"], r["outcome"]) for r in rows] == EXPECTED
    assert [r["pin_holder"] for r in rows if r["reason"] == "pin_ok"] == ["Anna", "Ben"]
    refused = [r["cause"] for r in rows if r["outcome"] == "refused"]
    assert refused == ["OUTGOING_CALL_BARRED"] * 4
