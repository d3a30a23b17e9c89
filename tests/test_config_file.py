"""The TOML configuration file: read, checked at start, shown, round-tripped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
import urllib.request

from controller.testing import free_port


def tg(*args, env=None):
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_the_file_round_trips_through_config_show(tmp_path):
    first = tmp_path / "tollgate.toml"
    first.write_text('redis_url = "redis://10.0.0.9:6379/2"\npepper_file = "/etc/tollgate/pepper"\n'
                     '[run]\nmode = "socket"\nesl_host = "10.0.0.5"\nesl_port = 8022\ncall_bound = 60.0\n'
                     'esl_password = "s3cret-pass"\nesl_nodes = ["10.0.0.5:8021", "10.0.0.6:8021"]\n[web]\nlisten = "0.0.0.0:8443"\ntrust_proxy = true\n')
    shown = tg("--config", str(first), "config", "show")
    assert shown.returncode == 0, shown.stderr
    data = tomllib.loads(shown.stdout)
    assert data["redis_url"] == "redis://10.0.0.9:6379/2" and data["pepper_file"] == "/etc/tollgate/pepper"
    assert (data["run"]["mode"], data["run"]["esl_host"], data["run"]["esl_port"], data["run"]["call_bound"]) == \
        ("socket", "10.0.0.5", 8022, 60.0)
    assert data["run"]["max_calls"] == 20000  # the defaults are shown too
    assert data["run"]["esl_nodes"] == ["10.0.0.5:8021", "10.0.0.6:8021"]
    assert data["web"] == {**data["web"], "listen": "0.0.0.0:8443", "trust_proxy": True}
    assert "s3cret-pass" not in shown.stdout  # a password is never printed
    second = tmp_path / "again.toml"
    second.write_text(shown.stdout)
    again = tg("--config", str(second), "config", "show")
    assert again.stdout == shown.stdout
    # the environment wins over the file, a flag over both
    env = tg("--config", str(first), "config", "show", env={"TOLLGATE_ESL_HOST": "10.0.0.6"})
    assert tomllib.loads(env.stdout)["run"]["esl_host"] == "10.0.0.6"
    flag = tg("--config", str(first), "--redis-url", "redis://h:1/0", "config", "show")
    assert tomllib.loads(flag.stdout)["redis_url"] == "redis://h:1/0"


def test_a_bad_file_stops_the_command_with_one_line(tmp_path):
    cases = {
        "[run]\nesl_prot = 8021\n": "[run] has no setting 'esl_prot'",
        "[run]\nesl_port = \"eighty\"\n": "[run] esl_port = 'eighty'",
        "[run]\nmode = \"outbound\"\n": "[run] mode = 'outbound'",
        "[runn]\nmode = \"socket\"\n": "no table [runn]",
        "redis_uri = \"redis://x\"\n": "has no setting 'redis_uri'",
        "[web\nlisten = 1\n": "not valid TOML",
        "[run]\nesl_host = [\"a\", \"b\"]\n": "esl_host must be a single value",
        "[run]\nesl_nodes = \"10.0.0.5:8021\"\n": "esl_nodes must be a list of values",
    }
    for text, expected in cases.items():
        path = tmp_path / "bad.toml"
        path.write_text(text)
        out = tg("--config", str(path), "tenant", "list")
        assert out.returncode != 0 and expected in out.stderr, (text, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    missing = tg("--config", str(tmp_path / "nowhere.toml"), "tenant", "list")
    assert missing.returncode != 0 and "nowhere.toml" in missing.stderr


def test_tollgate_web_takes_its_address_from_the_file(tmp_path):
    port = free_port()
    path = tmp_path / "tollgate.toml"
    path.write_text(f'[web]\nlisten = "127.0.0.1:{port}"\ninsecure_cookies = true\n')
    proc = subprocess.Popen([sys.executable, "-m", "controller", "web"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TOLLGATE_CONFIG": str(path)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "tollgate web did not start"
                time.sleep(0.2)
        assert 'name="username"' in body
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
