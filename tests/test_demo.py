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


def test_the_demo_then_serves_the_web_page_with_a_one_time_login():
    """The README's demo command also starts the web administration on the
    demo's store, and prints its address and one-time login links."""
    import http.cookiejar
    import re
    import signal
    import urllib.parse
    import urllib.request

    from controller.testing import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "controller", "demo", "--web-listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C stops the demo"):
                break
        text = "".join(lines)
        assert f"Web administration: http://127.0.0.1:{port}/" in text, text[-2000:]
        link = re.search(r"One-time login \(provider staff.*?(http://\S+)", text).group(1)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(link, timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        opener.open(urllib.request.Request(link, data=urllib.parse.urlencode({"csrf_token": token}).encode()),
                    timeout=10).read()
        page = opener.open(f"http://127.0.0.1:{port}/t/acme/numbers", timeout=10).read().decode()
        assert "Dupont" in page and "direction" in page
        # the link worked once; a second use is refused
        again = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = again.open(link, timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        try:
            again.open(urllib.request.Request(link, data=urllib.parse.urlencode({"csrf_token": token}).encode()),
                       timeout=10)
            raise AssertionError("a one-time link worked twice")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
