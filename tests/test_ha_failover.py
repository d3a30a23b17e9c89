"""Failover runs on real highly available Redis setups on loopback.

A 3-master, 3-replica Redis Cluster, and a master, a replica and three
Sentinels. On each: 1,000 calls at 50/s through two controller processes,
each serving two simulated FreeSWITCH nodes, and the Redis master that holds
the busiest tenant is SIGKILLed mid-run. Afterwards: no channel left up or
parked, every emergency call bridged, one verdict per decided call, the PIN
failures made just before the kill still counted, and the failover time
(from the kill to the first write the new master accepts) measured.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import gevent
import pytest
import redis

from controller.simulator import Caller, Simulator
from controller.store import keys
from controller.store.audit import settled_verdicts
from controller.store.connection import connect
from policies.pin import hash_pin
from tests.rig import PEPPER, PINS, Rig, decided_uuids, stop_processes, wait
from tests.test_fault_suite import WRONG, scenario

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.faults]

CALLS = int(os.environ.get("TOLLGATE_HA_CALLS", "1000"))
RATE = 50.0


@pytest.fixture(scope="module")
def cluster():
    from controller.testing.ha import ClusterSet

    _need("redis-cli")
    setup = ClusterSet().start()
    yield setup
    setup.stop()


@pytest.fixture(scope="module")
def sentinels():
    from controller.testing.ha import SentinelSet

    _need("redis-sentinel")
    setup = SentinelSet().start()
    yield setup
    setup.stop()


def _need(exe: str) -> None:
    if not shutil.which(exe):
        if os.environ.get("CI"):
            pytest.fail(f"{exe} is not installed (scripts/test.sh installs it)")
        pytest.skip(f"{exe} is not installed")


def _controller(url: str, nodes: list[int], name: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "TOLLGATE_REDIS_URL": url, "TOLLGATE_PEPPER": PEPPER.decode(), "PYTHONUNBUFFERED": "1"}
    esl = [x for port in nodes for x in ("--esl", f"127.0.0.1:{port}")]
    return subprocess.Popen([sys.executable, "-m", "controller", "run", *esl, "--controller-id", name,
                             "--recovery-interval", "0.5", "--heartbeat-interval", "0.3", "--shutdown-grace", "5",
                             "--log-level", "info"], stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)


def _failover_run(url: str, kill_master, tmp_path: Path, capsys, label: str) -> dict:
    _flush(url)
    rig = Rig(url)
    rig.provision()
    # The probe's extension: no other call uses it, it locks after 5 failures,
    # so the 3 the probe makes just before the kill must still be counted after.
    rig.store.admin.put_extension("acme", "1009", create=True, pin_enabled=True)
    rig.store.admin.set_pin("acme", "1009", "probe", hash_pin(PINS["1004"][1], PEPPER))
    node_b = Simulator(scale=0.01).start()
    nodes = [rig.sim, node_b]
    logs = {name: tmp_path / f"{label}-{name}.log" for name in ("A", "B")}
    procs = {name: _controller(url, [rig.sim.port, node_b.port], name, path) for name, path in logs.items()}
    probe_client = connect(url, timeout=0.2, warn=False)
    rng = random.Random(5013)
    calls, figures = [], {}
    try:
        wait(lambda: rig.sim.inbound_clients() == 2 and node_b.inbound_clients() == 2, timeout=30,
             message="both controllers on both nodes")
        t0 = time.monotonic()
        kill_at = CALLS * 2 // 5
        for i in range(CALLS):
            if i == kill_at:
                probe = rig.sim.place_call("0612345678", caller_id="1009", caller=Caller(keys=[WRONG] * 3))
                wait(lambda: probe.state == "hangup", timeout=15, message="the PIN probe to end")
                fails_before = probe_client.get(keys.fails("acme", "1009"))
                killed = time.monotonic()
                kill_master()
                figures["killed_at_call"] = i
            dialed, ext, caller, kind = scenario(rng, i)
            ch = nodes[i % 2].place_call(dialed, caller_id=ext, caller=caller)
            calls.append((ch, kind))
            gevent.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))
            if i >= kill_at and "failover_s" not in figures:
                try:
                    probe_client.set(keys.tenant("acme") + ":probe", "1", ex=60)
                    figures["failover_s"] = round(time.monotonic() - killed, 2)
                except redis.RedisError:
                    pass
        wait(lambda: not rig.sim.live() and not node_b.live(), timeout=120, message="every channel to end")
        if "failover_s" not in figures:
            figures["failover_s"] = round(wait(lambda: _writable(probe_client), 60, "a writable master")
                                          and time.monotonic() - killed, 2)
        time.sleep(3.0)  # spooled and rechecked verdicts go out within a second or two
        verdicts = settled_verdicts(rig.store.audit.read("acme", count=20_000))
        fails_after = probe_client.get(keys.fails("acme", "1009"))
    finally:
        stop_processes(procs.values())
        rig.sim.stop()
        node_b.stop()

    per_uuid = Counter(v["uuid"] for v in verdicts)
    decided = decided_uuids(c for c, _ in calls)
    emergency = [c for c, kind in calls if kind == "emergency"]
    log_text = "".join(p.read_text(errors="replace") for p in logs.values())
    figures.update({
        "redis": label,
        "calls_placed": len(calls),
        "channels_left_up": len(rig.sim.live()) + len(node_b.live()),
        "channels_left_parked": len(rig.sim.parked()) + len(node_b.parked()),
        "emergency_calls": len(emergency),
        "emergency_calls_bridged": sum(c.bridged for c in emergency),
        "audit_verdicts": len(verdicts),
        "decided_calls_without_verdict": len(decided - set(per_uuid)),
        "calls_with_more_than_one_verdict": sum(1 for n in per_uuid.values() if n > 1),
        "pin_failures_before_kill": fails_before,
        "pin_failures_after_failover": fails_after,
        "verdicts_rewritten_after_failover": log_text.count("lost in a Redis failover"),
        "unhandled_exceptions_in_logs": log_text.count("Traceback"),
        "calls_per_node": [sum(1 for c, _ in calls if c in n.finished) for n in nodes],
        "verdicts_by_controller": dict(Counter(v["controller"] for v in verdicts)),
        # Decided as with Redis down: refused (SERVICE_UNAVAILABLE), or toll-free let through.
        "decided_without_the_store": sum(1 for v in verdicts if v.get("reason") in (
            "service_unavailable", "degraded_tollfree", "fail_open")),
        "outcomes": dict(Counter(v["outcome"] for v in verdicts).most_common()),
    })
    if os.environ.get("TOLLGATE_HA_DEBUG"):
        dup = [u for u, n in per_uuid.items() if n > 1]
        t_kill = killed - t0
        Path(f"/tmp/ha_{label}.json").write_text(json.dumps({"t_kill": t_kill, "probe": [probe.uuid, probe.executed, probe.hangup_cause], "dups": [
            [{k: v.get(k) for k in ("controller", "verdict", "reason", "outcome", "ts", "kind")} for v in verdicts if v["uuid"] == u]
            + [line for line in log_text.splitlines() if u in line][:12] for u in dup[:6]]}, indent=1, default=str))
    with capsys.disabled():
        print(f"\n{label} failover figures:\n" + json.dumps(figures, indent=1))
    report = os.environ.get("TOLLGATE_HA_REPORT")
    if report:
        Path(report.replace("{}", label)).write_text(json.dumps(figures, indent=1))
    assert figures["channels_left_up"] == 0 and figures["channels_left_parked"] == 0
    assert figures["emergency_calls_bridged"] == figures["emergency_calls"]
    assert figures["calls_with_more_than_one_verdict"] == 0
    assert figures["decided_calls_without_verdict"] == 0
    assert figures["unhandled_exceptions_in_logs"] == 0
    assert fails_before == "3" and fails_after == "3"  # WAIT kept them on the replica that took over
    return figures


def _writable(r) -> bool:
    try:
        return bool(r.set(keys.tenant("acme") + ":probe", "1", ex=60))
    except redis.RedisError:
        return False


def _flush(url: str) -> None:
    connect(url, timeout=2, warn=False).flushall()


@pytest.mark.parametrize("setup", ["cluster", "sentinels"])
def test_cli_and_api_work_on_the_url(setup, request, monkeypatch, capsys):
    """The same URL serves the command line and the web API (one store layer)."""
    from controller.cli import main
    from tests.webkit import api, make_app, token

    url = request.getfixturevalue(setup).url
    _flush(url)
    monkeypatch.setenv("TOLLGATE_REDIS_URL", url)
    monkeypatch.setenv("TOLLGATE_PEPPER", PEPPER.decode())
    app, store = make_app(url)
    assert main(["check", "acme", "--from", "1001", "--to", "0899123456", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "ALLOW"
    client = api(app, token(store, "alice"))
    assert client.post("/tenants/acme/entries", json={"list": "direction", "first_name": "Karl",
                                                      "last_name": "Weber", "phone": "0612345678"}).status_code == 201
    assert main(["numbers", "list", "acme", "--list", "direction", "--json"]) == 0
    assert "+33612345678" in capsys.readouterr().out
    assert client.get("/tenants/globex").status_code == 404  # another tenant's, on another slot
    assert main(["audit", "acme", "--json"]) == 0
    assert "entry.add" in capsys.readouterr().out


def test_verdicts_a_failover_lost_are_written_again(redis_url):
    """A verdict the old master acknowledged but never passed to the replica
    that took over: its guard is missing on the new master, so it is written
    again from the recent verdicts kept in memory."""
    from controller.store import Store
    from controller.store.audit import encode

    store = Store.open(redis_url, actor="test", warn=False)
    store.audit.replicated = True
    store.audit.write_now("acme", encode("verdict", "acme", {"uuid": "u-lost", "verdict": "DENY"}), [])
    store.audit.write_now("acme", encode("verdict", "acme", {"uuid": "u-kept", "verdict": "ALLOW"}), [])
    # What a failover to a replica that lacked the last write looks like:
    store.r.delete(keys.audit("acme"), keys.verdict("acme", "u-lost"))
    store.audit.failed_write()  # a write failed: the master may have changed
    store.audit.flush()
    uuids = [f["uuid"] for _, f in store.audit.read("acme")]
    assert uuids == ["u-lost"] and store.audit.replayed_after_failover == 1  # u-kept's guard was there
    assert not store.audit.suspect


def test_cluster_master_killed_mid_run(cluster, tmp_path, capsys):
    victim = cluster.master_of(keys.tenant("acme"))
    _failover_run(cluster.url, victim.kill, tmp_path, capsys, "cluster")


def test_sentinel_master_killed_mid_run(sentinels, tmp_path, capsys):
    _failover_run(sentinels.url, sentinels.master.kill, tmp_path, capsys, "sentinel")
