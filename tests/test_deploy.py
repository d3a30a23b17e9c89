"""What an operator installs: the systemd units (checked by systemd-analyze),
the container definition and the example configuration file."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def _analyzer():
    found = shutil.which("systemd-analyze")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (scripts/test.sh installs systemd)")
        pytest.skip("systemd-analyze is not installed")
    return found


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_the_units_pass_systemd_analyze_verify(unit, tmp_path):
    text = unit.read_text()
    for needed in ("User=tollgate", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes",
                   "PrivateTmp=yes", "CapabilityBoundingSet=", "Restart=always"):
        assert re.search(rf"^{re.escape(needed)}$", text, re.M), needed
    assert re.search(r"^ExecStart=/opt/tollgate/bin/tollgate (run|web)$", text, re.M)
    # verify wants the program to exist: point it at this checkout's
    local = tmp_path / unit.name
    local.write_text(text.replace("/opt/tollgate/bin/tollgate", str(ROOT / ".venv" / "bin" / "tollgate")
                                  if (ROOT / ".venv" / "bin" / "tollgate").exists() else shutil.which("true")))
    out = subprocess.run([_analyzer(), "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr  # not even a warning
    # and it does catch a mistake
    broken = tmp_path / ("broken-" + unit.name)
    broken.write_text(local.read_text().replace("ProtectSystem=strict", "ProtectSystem=strictly"))
    out = subprocess.run([_analyzer(), "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Failed to parse protect system value" in out.stderr


def test_the_dockerfile_copies_what_exists_and_runs_as_its_own_user():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for part in source.split():
            assert (ROOT / part).exists(), part
    assert re.search(r"^USER tollgate$", text, re.M) and 'ENTRYPOINT ["tollgate"]' in text


def test_the_example_configuration_is_valid():
    out = subprocess.run([sys.executable, "-m", "controller", "--config", str(ROOT / "deploy" /
                          "tollgate.toml.example"), "config", "show"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'metrics_address = "127.0.0.1:9184"' in out.stdout
