"""The audit spool on disk (issue 26, part 4): verdicts spooled while Redis is
unreachable survive a SIGKILLed controller and are written once after its
next start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from controller.errors import ConfigError
from controller.store import Store
from controller.store.audit import encode
from controller.store.spool_file import SpoolFile

pytestmark = pytest.mark.redis

# A controller's last moments, in a process of its own: Redis is down, three
# entries are spooled (a degraded verdict, a verdict whose write failed, an
# operator change), then SIGKILL: no shutdown, no flush.
DYING = textwrap.dedent("""
    import os, signal, sys
    from controller.store import Store
    from controller.store.spool_file import SpoolFile
    url, state = sys.argv[1], sys.argv[2]
    store = Store.open(url, actor="test", warn=False, check=False)
    store.audit.attach(SpoolFile(state, "A"))
    store.calls.spool("acme", {"uuid": "u-degraded", "verdict": "DENY", "reason": "service_unavailable"})
    try:
        store.calls.record_verdict("acme", "u-failed", {"uuid": "u-failed", "verdict": "ALLOW"}, {"verdict": "ALLOW"})
    except Exception:
        pass
    store.audit.append("change", "acme", actor="cli:test", action="entry.add", object="direction/1001")
    assert len(store.audit.spool) == 3
    os.kill(os.getpid(), signal.SIGKILL)
""")


def stream(store) -> list[dict]:
    return [f for _, f in store.audit.read("acme", 100)]


def test_a_controller_killed_while_redis_is_down_loses_no_entry(redis_server, redis_url, tmp_path):
    state = str(tmp_path / "state")
    redis_server.kill()
    proc = subprocess.run([sys.executable, "-c", DYING, redis_url, state], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    redis_server.start()
    store = Store.open(redis_url, actor="test", warn=False)
    assert stream(store) == []
    journal = SpoolFile(state, "A")
    assert store.audit.attach(journal) == 3
    store.audit.flush()
    got = stream(store)
    assert [f.get("uuid") or f.get("action") for f in got] == ["u-degraded", "u-failed", "entry.add"]
    assert journal.entries == 0 and os.path.getsize(journal.path) == 0  # written: gone from the file
    journal.close()


def test_a_replayed_verdict_that_reached_redis_is_not_written_twice(redis_url, tmp_path):
    store = Store.open(redis_url, actor="test", warn=False)
    store.calls.record_verdict("acme", "u-dup", {"uuid": "u-dup", "verdict": "ALLOW"}, {"verdict": "ALLOW"})
    # Killed after its write reached Redis, before the file was emptied.
    journal = SpoolFile(str(tmp_path), "A")
    journal.append([("acme", encode("verdict", "acme", {"uuid": "u-dup", "verdict": "ALLOW"})),
                    ("acme", encode("verdict", "acme", {"uuid": "u-new", "verdict": "DENY"}))])
    journal.close()
    store.audit.attach(SpoolFile(str(tmp_path), "A"))
    store.audit.flush()
    assert [f["uuid"] for f in stream(store)] == ["u-dup", "u-new"]
    assert store.audit.replays_skipped == 1


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_next_ones_are_kept(tmp_path):
    good = json.dumps({"tenant": "acme", "fields": {"kind": "verdict", "uuid": "u1"}})
    path = tmp_path / "audit-spool.A.jsonl"
    path.write_text(good + "\n" + good.replace("u1", "u2") + "\n" + good[:25])
    store = Store.open(None, warn=False)
    journal = SpoolFile(str(tmp_path), "A")
    assert store.audit.attach(journal) == 2
    store.audit.keep("acme", {"kind": "verdict", "uuid": "u3"})
    journal.close()
    assert [f["uuid"] for _, f in SpoolFile(str(tmp_path), "A").read()] == ["u1", "u2", "u3"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_one_file_per_controller_and_a_clear_error_otherwise(tmp_path):
    first = SpoolFile(str(tmp_path), "A")
    with pytest.raises(ConfigError, match="in use by another controller"):
        SpoolFile(str(tmp_path), "A")
    SpoolFile(str(tmp_path), "B").close()
    first.close()
    SpoolFile(str(tmp_path), "A").close()  # the lock goes with its holder
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(ConfigError, match="state directory .*--state-dir"):
            SpoolFile(str(tmp_path / "ro" / "state"), "A")


def test_tollgate_run_refuses_a_state_dir_it_cannot_use(redis_url, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env = {**os.environ, "TOLLGATE_REDIS_URL": redis_url, "TOLLGATE_PEPPER": "p" * 32,
           "TOLLGATE_STATE_DIR": str(blocker / "state")}
    out = subprocess.run([sys.executable, "-m", "controller", "run", "--esl-port", "1"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "state directory" in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("tollgate: error: ") and out.stderr.count("\n") == 1, out.stderr
