"""Operations: metrics against the calls placed, readiness, live calls, review, JSON logs."""

import io
import json
import logging
import time
import urllib.error
import urllib.request

import pytest

from controller.cli import main
from controller.ops.logs import JsonFormatter
from controller.simulator import Caller
from controller.store import keys
from tests.rig import PINS, wait

pytestmark = [pytest.mark.redis, pytest.mark.e2e]
PIN = PINS["1003"][1]


def get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_the_calls_placed(rig, caplog):
    ctl = rig.controller("c1", metrics_address=("127.0.0.1", 0))
    port = ctl.health.port
    calls = [rig.call("0140000000", caller_id="1001") for _ in range(3)]
    calls += [rig.call("0899123456", caller_id="1002") for _ in range(2)]
    calls += [rig.call("0140000000", caller_id="1003", caller=Caller(keys=["11112222", PIN]))]
    rig.finish(*calls)
    wait(lambda: len(rig.verdicts()) == 6, message="verdicts")
    status, text = get(port, "/metrics")
    assert status == 200
    assert sample(text, "tollgate_verdicts_total", verdict="ALLOW", **{"class": "national"}) == 4
    assert sample(text, "tollgate_verdicts_total", verdict="DENY", reason="not_authorized") == 2
    assert sample(text, "tollgate_pin_attempts_total", tenant="acme") == 2
    assert sample(text, "tollgate_pin_failures_total", tenant="acme") == 1
    assert sample(text, "tollgate_decision_seconds_count") == 5
    assert sample(text, "tollgate_pin_dialog_seconds_count") == 1
    assert sample(text, "tollgate_esl_connected") == 1
    assert sample(text, "tollgate_call_outcomes_total", outcome="bridge_sent") == 4
    assert PIN not in text and "11112222" not in text
    rig.assert_clean(caplog, (PIN, "11112222"))


def test_readiness_follows_redis_and_the_event_socket(rig, redis_server):
    ctl = rig.controller("c1", metrics_address=("127.0.0.1", 0))
    port = ctl.health.port
    assert get(port, "/healthz")[0] == 200
    status, body = get(port, "/readyz")
    node = f"127.0.0.1:{rig.sim.port}"
    assert status == 200 and json.loads(body) == {"ready": True, "event_socket": True, "redis": True,
                                                  "nodes": {node: True}, "ends_connections": {node: True}}
    redis_server.stop()
    status, body = get(port, "/readyz")
    assert status == 503 and json.loads(body)["redis"] is False
    redis_server.start()
    wait(lambda: get(port, "/readyz")[0] == 200, message="ready after Redis is back")
    rig.sim.server.stop()  # FreeSWITCH goes away entirely
    rig.sim.drop_connections()
    wait(lambda: get(port, "/readyz")[0] == 503, message="not ready without the Event Socket")
    assert json.loads(get(port, "/readyz")[1])["event_socket"] is False
    assert json.loads(get(port, "/readyz")[1])["nodes"] == {node: False}
    wait(lambda: json.loads(get(port, "/readyz")[1])["ends_connections"] == {node: False}, message="ends down")
    rig.sim.start()  # a new listener on the same port
    wait(lambda: get(port, "/readyz")[0] == 200, timeout=15, message="ready after reconnect")
    assert sample(get(port, "/metrics")[1], "tollgate_esl_reconnects_total") >= 1


def test_tollgate_calls_shows_a_call_in_its_pin_prompt(rig, capsys, monkeypatch):
    rig.controller("c1")
    ch = rig.call("0140000000", caller_id="1003", caller=Caller(keys=["", "", ""]))
    wait(lambda: "play_and_get_digits" in [a for a, _, _ in ch.executed], message="prompt")
    monkeypatch.setenv("TOLLGATE_REDIS_URL", rig.redis_url)
    assert main(["calls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["uuid"], r["tenant"], r["extension"], r["dialed"], r["state"]) for r in rows] == [
        (ch.uuid, "acme", "1003", "0140000000", "pin_prompt")]
    assert float(rows[0]["seconds"]) >= 0 and rows[0]["owner"] == "c1"
    assert rows[0]["node"] == f"127.0.0.1:{rig.sim.port}"
    rig.finish(ch)
    wait(lambda: not rig.store.calls.calls(), message="call state removed")


def test_numbers_review_lists_entries_unused_for_n_days(rig, capsys, monkeypatch):
    monkeypatch.setenv("TOLLGATE_REDIS_URL", rig.redis_url)
    old = f"{time.time() - 200 * 86400:.0f}"
    rig.store.r.hset(keys.entry("acme", "direction", "1001"), mapping={"created": old, "last_used": old})
    rig.store.r.hset(keys.entry("acme", "direction", "1002"), mapping={"created": old, "last_used": ""})
    rig.store.admin.add_entry("acme", "direction", "New", "Person", "1004")
    assert main(["numbers", "review", "acme", "--days", "90", "--json"]) == 0
    stale = json.loads(capsys.readouterr().out)
    assert sorted(r["phone"] for r in stale) == ["1001", "1002"]


def test_audit_filters(rig, capsys, monkeypatch):
    rig.controller("c1")
    a = rig.call("0899123456", caller_id="1002")
    b = rig.call("0140000000", caller_id="1001")
    rig.finish(a, b)
    wait(lambda: len(rig.verdicts()) == 2, message="verdicts")
    monkeypatch.setenv("TOLLGATE_REDIS_URL", rig.redis_url)
    assert main(["audit", "acme", "--verdict", "DENY", "--since", "1h", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["uuid"] for r in rows] == [a.uuid]
    assert main(["audit", "acme", "--extension", "1001", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert b.uuid in [r.get("uuid") for r in rows] and a.uuid not in [r.get("uuid") for r in rows]


def test_json_log_lines_carry_the_call_id():
    from controller.call.services import CallLog

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tollgate.test-json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    CallLog(logger, {"call": "abc-123"}).info("decided %s", "ALLOW")
    line = json.loads(stream.getvalue())
    assert line["call"] == "abc-123" and line["msg"] == "[abc-123] decided ALLOW" and line["level"] == "info"
    logger.removeHandler(handler)
