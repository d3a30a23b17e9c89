"""The benchmark's quick mode: it must keep working. Nothing here asserts speed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] and report["command"].endswith("--quick")
    for mode in ("inbound", "socket"):
        fixed = report[mode]["fixed_200"]
        assert fixed["bridge_commands"] == fixed["placed"] > 0, fixed
        assert fixed["latency_ms"]["n"] == fixed["placed"]
        assert report[mode]["pin_dialogs"]["in_prompt"] == report[mode]["pin_dialogs"]["placed"]
        assert report[mode]["pin_dialogs_with_noise"]["in_prompt"] > 0
    summary = report["summary"]
    for key in ("p99_ms_at_200_per_s", "setup_p50_ms_at_200_per_s", "socket_mode_setup_p50_ms_at_200_per_s",
                "redis_round_trips_per_no_pin_call", "kib_per_pin_dialog",
                "cpu_ratio_to_floor", "max_no_pin_calls_per_s_p99_under_10ms"):
        assert summary[key] is not None, key
    ab = report["inbound"]["controls_ab"]
    for side in ("without", "with"):  # every call of every pair bridged, with the controls too
        assert ab[side]["bridged"] == ab[side]["placed"] > 0, ab
        assert len(ab[side]["p50_ms"]) == ab["rounds"] == 2
    assert ab["with_events_per_call"] > 0  # the end of a counted call is followed
    assert report["floor"]["fixed_200"]["bridge_commands"] == report["floor"]["fixed_200"]["placed"]
