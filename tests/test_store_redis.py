"""The store against a real redis-server."""

import time

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.errors import CorruptValue, InvalidInput, NotFound
from controller.store import Store, keys
from controller.store.admission import Admission
from controller.store.counting import bucket_seconds, oldest_bucket, rate_count
from policies.decide import decide
from policies.model import Verdict
from tests.rig import RoundTrips, count_calls

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_url):
    s = Store.open(redis_url)
    s.admin.create_tenant("acme", {"country": "FR", "pin_feature": "on"})
    s.admin.put_extension("acme", "1001", create=True, caller_ids=["06 11 22 33 44"])
    s.admin.create_list("acme", "direction")
    s.admin.add_rule("acme", "premium", "allow", classes=["premium"], lists=["direction"])
    return s


def commands_processed(r) -> int:
    return int(r.info("stats")["total_commands_processed"])


@pytest.mark.parametrize("script", [False, True], ids=["pipeline", "lua"])
def test_both_load_paths_read_the_same_snapshot(store, script):
    store.admin.add_entry("acme", "direction", "Élise", "Dupont", "+33611223344")
    store.admin.set_override("acme", "+881", "premium")
    store.calls.record_pin_failure("acme", "1001", 1, 60)  # locked
    store.limits.add("acme", {"name": "hourly", "max": 3, "window": 3600})
    store.limits.add("acme", {"name": "tenant-day", "scope": "tenant", "max": 50, "window": 86400})
    count_calls(store.r, keys.rate("acme", "hourly", "ext:1001"), [5000.0, 9990.0], 3600)  # one in the window
    at = {"country_hint": "FR", "now": 10000.0}
    reference = store.calls.load("acme", "1001", "0611223344", "1001", claim_uuid="c0", **at)
    if script:
        assert store.calls.enable_script()
    got = store.calls.load("acme", "1001", "0611223344", "1001", claim_uuid="c1", **at)
    again = store.calls.load("acme", "1001", "0611223344", "1001", claim_uuid="c1", **at)
    assert got.claimed and not again.claimed
    assert got.snapshot == reference.snapshot
    assert got.snapshot.locked_seconds > 0 and got.snapshot.destination_is_extension
    assert got.snapshot.caller_auth.lists == {"direction": "+33611223344"}
    assert got.snapshot.counts is None  # the admission checks them; read_counts when a decision needs them
    assert store.calls.read_counts(got.snapshot) == {"hourly|ext:1001": 1, "tenant-day|tenant": 0}


def test_lua_load_is_one_command_on_the_wire(store, monkeypatch):
    assert store.calls.enable_script()
    store.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="warm")
    counter = RoundTrips(monkeypatch)
    loaded = store.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="uuid-9")
    assert counter.sends == 1 and loaded.claimed


def test_decision_state_loads_in_one_round_trip(store, monkeypatch):
    if isinstance(store.r, redis.RedisCluster):
        pytest.skip("INFO commandstats reads one node of a Cluster")
    store.r.ping()  # connect before counting
    before = commands_processed(store.r)
    counter = RoundTrips(monkeypatch)
    loaded = store.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="uuid-1", country_hint="FR")
    assert counter.sends == 1
    monkeypatch.undo()
    # 13 commands in the pipeline (+1 for the INFO that measures it).
    assert commands_processed(store.r) - before - 1 == 13
    assert loaded.claimed and loaded.snapshot.extension.number == "1001"
    assert store.r.ttl(keys.claim("acme", "uuid-1")) > 0
    again = store.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="uuid-1")
    assert not again.claimed


def test_authorization_through_caller_id_of_the_extension(store):
    def verdict():
        return decide(store.calls.load("acme", "1001", "1001", "0899123456").snapshot)

    assert verdict().reason == "not_authorized"
    store.admin.add_entry("acme", "direction", "Élise", "Dupont", "+33611223344")
    assert verdict().verdict is Verdict.ALLOW
    store.admin.update_entry("acme", "direction", "+33611223344", state="disabled")
    assert verdict().reason == "not_authorized"
    store.admin.update_entry("acme", "direction", "+33611223344", state="enabled")
    store.admin.put_extension("acme", "1001", caller_ids=[])
    assert verdict().reason == "not_authorized"


def test_lockout_counts_failures_and_expires(store):
    store.admin.update_tenant("acme", {"lockout_seconds": "10"})
    for i in range(4):
        assert store.calls.record_pin_failure("acme", "1001", 5, 10) == (i + 1, False)
    assert store.calls.record_pin_failure("acme", "1001", 5, 10) == (5, True)
    snap = store.calls.load("acme", "1001", "1001", "0140000000").snapshot
    assert 0 < snap.locked_seconds <= 10
    # Expiry is Redis's own TTL: shorten it and watch the lock go.
    store.r.pexpire(keys.locked("acme", "1001"), 50)
    time.sleep(0.2)
    assert store.calls.load("acme", "1001", "1001", "0140000000").snapshot.locked_seconds == 0
    store.calls.record_pin_failure("acme", "1001", 5, 10)
    assert store.admin.unlock("acme", "1001") is True


def test_every_change_is_audited_with_before_and_after(store):
    store.admin.add_entry("acme", "direction", "Jean", "Martin", "0612345678")
    store.admin.update_entry("acme", "direction", "0612345678", state="disabled")
    store.admin.set_pin("acme", "1001", "alice", "pbkdf2_sha256$1000$x$c2FsdHNhbHQ=$" + "A" * 43 + "=")
    store.admin.move_rule("acme", "premium", 1)
    entries = [f for _, f in store.audit.read("acme", count=100)]
    actions = [f["action"] for f in entries if f["kind"] == "change"]
    assert actions == ["tenant.create", "ext.create", "list.create", "rule.add", "entry.add",
                       "entry.update", "pin.set", "rule.move"]
    update = next(f for f in entries if f.get("action") == "entry.update")
    assert '"state": "enabled"' in update["before"] and '"state": "disabled"' in update["after"]
    pin = next(f for f in entries if f.get("action") == "pin.set")
    assert pin["object"] == "1001/alice" and "pbkdf2" not in str(pin)


def test_corrupt_values_give_a_clear_error(store):
    store.r.hset(keys.tenant("acme"), "pin_tries", "lots")
    with pytest.raises(CorruptValue, match=r"tg:\{acme\}:tenant.*pin_tries"):
        store.calls.load("acme", "1001", "1001", "0140000000")
    store.r.hset(keys.tenant("acme"), "pin_tries", "3")
    store.r.rpush(keys.rules("acme"), "{not json")
    with pytest.raises(CorruptValue, match=r"rules: rule #2"):
        store.admin.rules("acme")


def test_validation_errors_are_one_line(store):
    with pytest.raises(InvalidInput, match="not a phone number"):
        store.admin.add_entry("acme", "direction", "A", "B", "not-a-number")
    with pytest.raises(NotFound, match="no list 'nope'"):
        store.admin.add_entry("acme", "nope", "A", "B", "0612345678")
    with pytest.raises(InvalidInput, match="PIN feature"):
        store.admin.update_tenant("acme", {"pin_feature": "off"}) and store.admin.put_extension(
            "acme", "1001", pin_enabled=True)


def test_audit_spool_keeps_entries_while_redis_is_down(store, redis_server):
    redis_server.stop()
    assert store.audit.append("verdict", "acme", verdict="DENY") is False
    assert len(store.audit.spool) == 1
    redis_server.start()
    assert store.audit.flush() == 1
    assert store.audit.read("acme", count=1)[0][1]["verdict"] == "DENY"


def test_a_spooled_verdict_that_did_reach_redis_is_not_written_twice(store):
    """Redis killed right after EXEC: the transaction is in the append-only file
    but its reply never came, so the controller spooled the verdict. Its guard
    key (written in the same transaction) keeps the replay from duplicating it."""
    from controller.store.audit import encode

    record = {"uuid": "u-dup", "verdict": "ALLOW", "outcome": "bridge_sent"}
    store.calls.record_verdict("acme", "u-dup", record, {"verdict": "ALLOW"})
    store.audit._spool([("acme", encode("verdict", "acme", record), [])])  # as if the reply was lost
    store.audit._spool([("acme", encode("verdict", "acme", {"uuid": "u-new", "verdict": "DENY"}), [])])
    assert store.audit.flush() == 2
    uuids = [f.get("uuid") for _, f in store.audit.read("acme", count=100) if f.get("kind") == "verdict"]
    assert uuids.count("u-dup") == 1 and uuids.count("u-new") == 1
    assert store.audit.replays_skipped == 1
    # the replayed one now has its guard too: a second replay would be skipped as well
    assert store.r.hget(keys.verdict("acme", "u-new"), "audited")
    assert 0 < store.r.ttl(keys.verdict("acme", "u-new")) <= 600


def test_an_alert_is_raised_once_per_window_and_a_suspension_is_lifted_with_a_record(store):
    first = store.alerts.raise_once("acme", "intl-burst", 600, "20 international calls in 10 minutes", 20, True)
    again = store.alerts.raise_once("acme", "intl-burst", 600, "21 international calls in 10 minutes", 21, True)
    assert first["suspended"] == "yes" and again is None
    assert store.alerts.suspension("acme")["alert"] == "intl-burst"
    assert store.calls.load("acme", "1001", "", "0899123456").snapshot.suspended.startswith("alert intl-burst")
    assert [a["count"] for a in store.alerts.list("acme")] == ["20"]
    for n in (1, 2, 3):
        assert store.alerts.record_lockout("acme", 3600) == n
    store.alerts.lift("acme")
    assert not store.alerts.suspension("acme")
    with pytest.raises(NotFound):
        store.alerts.lift("acme")
    actions = [f.get("action") for _, f in store.audit.read("acme", count=100)]
    assert "alert.raise" in actions and actions[-1] == "alert.lift"


@pytest.mark.parametrize("script", [False, True], ids=["in-process", "lua"])
def test_the_last_place_goes_to_one_call_only(store, script):
    """Two calls that both loaded a count of 1 against a limit of 2: the first to
    write its verdict takes the place, the second is told the place is gone."""
    if script:
        assert store.calls.enable_script()
    else:
        store.calls.lane = None
    admit = (("velocity", "hourly", "ext:1001", 2, 3600), ("concurrency", "lines", "tenant", 5, 0))
    count_calls(store.r, keys.rate("acme", "hourly", "ext:1001"), [1000.0], 3600)
    record = {"uuid": "a", "verdict": "ALLOW"}
    admit += (("alert", "burst", "tenant", 2, 600),)
    count_calls(store.r, keys.rate("acme", "burst", "tenant"), [1000.0], 600)
    won = store.calls.record_verdict("acme", "a", record, {"verdict": "ALLOW"}, admit=admit, now=1010.0)
    assert won == Admission(counts=(1, 0, 1))  # each count before this call, the alert's among them
    lost = store.calls.record_verdict("acme", "b", {**record, "uuid": "b"}, {"verdict": "ALLOW"}, admit=admit,
                                      now=1011.0)
    assert lost == Admission(full=(1, 2))
    assert store.r.hget(keys.rate("acme", "hourly", "ext:1001"), "n") == "2"
    assert store.r.hkeys(keys.concurrency("acme", "lines", "tenant")) == ["a"]
    uuids = [f.get("uuid") for _, f in store.audit.read("acme", count=100) if f.get("kind") == "verdict"]
    assert uuids == ["a"]  # nothing of b was written
    assert store.r.exists(keys.verdict("acme", "a")) and not store.r.exists(keys.verdict("acme", "b"))
    store.calls.calls_ended([("acme", "a", "c/lines/tenant;b/day/tenant/2026-11-23", 125)])
    assert store.r.hlen(keys.concurrency("acme", "lines", "tenant")) == 0
    assert store.r.get(keys.budget("acme", "day", "tenant", "2026-11-23")) == "125"


@pytest.mark.parametrize("script", [False, True], ids=["in-process", "lua"])
def test_a_place_whose_end_was_never_seen_refuses_nobody(store, script):
    """Concurrency places are a hash (uuid -> when the place lapses) counted by
    its length: a lapsed place (its call's end never came) counts until the
    count reaches the limit, and is then dropped before anyone is refused."""
    if script:
        assert store.calls.enable_script()
    else:
        store.calls.lane = None
    key = keys.concurrency("acme", "lines", "tenant")
    store.r.hset(key, mapping={"gone-1": "900.000", "gone-2": "950.000", "live": "5000.000", "junk": "x"})
    admit = (("concurrency", "lines", "tenant", 4, 0),)
    record = {"uuid": "a", "verdict": "ALLOW"}
    # 4 held (3 of them lapsed or corrupt) against a limit of 4: swept, then admitted.
    assert store.calls.record_verdict("acme", "a", record, {"verdict": "ALLOW"}, admit=admit, now=1000.0,
                                      span=600) == Admission(counts=(1,))
    assert sorted(store.r.hkeys(key)) == ["a", "live"]
    assert float(store.r.hget(key, "a")) == 1600.0
    # Below the limit a lapsed place is not looked for: it counts until the next sweep.
    store.r.hset(key, "gone-3", "10.000")
    won = store.calls.record_verdict("acme", "b", {**record, "uuid": "b"}, {"verdict": "ALLOW"}, admit=admit,
                                     now=1001.0, span=600)
    assert won == Admission(counts=(3,)) and store.r.hlen(key) == 4
    # At the limit: gone-3 is dropped, and this call takes the place it held.
    third = store.calls.record_verdict("acme", "c", {**record, "uuid": "c"}, {"verdict": "ALLOW"}, admit=admit,
                                       now=1002.0, span=600)
    assert third == Admission(counts=(3,)) and sorted(store.r.hkeys(key)) == ["a", "b", "c", "live"]
    lost = store.calls.record_verdict("acme", "d", {**record, "uuid": "d"}, {"verdict": "ALLOW"}, admit=admit,
                                      now=1003.0, span=600)
    assert lost == Admission(full=(1, 4)) and store.r.hlen(key) == 4


@pytest.mark.parametrize("lane", [False, True], ids=["pipeline", "lane"])
def test_a_batch_of_ends_gives_back_each_place_and_adds_up_each_budget(store, lane):
    """The ends of a batch share one HDEL per places key and one INCRBY per budget
    key: every place of the batch is given back, and each budget (tenant, day)
    gets the sum of its own calls' seconds, nobody else's."""
    if lane:
        assert store.calls.enable_script()
    else:
        store.calls.lane = None
    store.admin.create_tenant("beta", {"country": "FR"})
    lines = {t: keys.concurrency(t, "lines", "tenant") for t in ("acme", "beta")}
    for tenant, uuids in (("acme", ["a", "b", "c", "alive"]), ("beta", ["a", "d"])):
        store.r.hset(lines[tenant], mapping={u: "9999999999.000" for u in uuids})
    spec = "c/lines/tenant;b/day/tenant/{day}"
    store.calls.calls_ended([
        ("acme", "a", spec.format(day="2026-11-23"), 60),
        ("acme", "b", spec.format(day="2026-11-23"), 25),
        ("beta", "a", spec.format(day="2026-11-23"), 7),
        ("acme", "c", spec.format(day="2026-11-22"), 100),  # began before midnight: yesterday's budget
        ("beta", "d", spec.format(day="2026-11-23"), 0),  # never answered: nothing billed
    ])
    assert store.r.hkeys(lines["acme"]) == ["alive"] and store.r.hlen(lines["beta"]) == 0
    assert store.r.get(keys.budget("acme", "day", "tenant", "2026-11-23")) == "85"
    assert store.r.get(keys.budget("acme", "day", "tenant", "2026-11-22")) == "100"
    assert store.r.get(keys.budget("beta", "day", "tenant", "2026-11-23")) == "7"
    assert 0 < store.r.ttl(keys.budget("acme", "day", "tenant", "2026-11-23")) <= 3 * 86400


def test_an_admission_that_fails_writes_nothing_of_the_verdict(store):
    """A count key of the wrong type (corruption) makes the admission script fail
    before it writes anything of the verdict (no entry, no intent, no count
    taken): the error is raised and the entry waits in the spool."""
    assert store.calls.enable_script()
    store.r.set(keys.rate("acme", "hourly", "ext:1001"), "not a hash")
    admit = (("concurrency", "lines", "tenant", 5, 0), ("velocity", "hourly", "ext:1001", 2, 3600))
    with pytest.raises(redis.RedisError, match="WRONGTYPE"):
        store.calls.record_verdict("acme", "c", {"uuid": "c", "verdict": "ALLOW"}, {"verdict": "ALLOW"},
                                   admit=admit, now=1010.0)
    assert not store.r.exists(keys.verdict("acme", "c"))
    assert [f for _, f in store.audit.read("acme", count=100) if f.get("kind") == "verdict"] == []
    assert store.r.hlen(keys.concurrency("acme", "lines", "tenant")) == 0  # refused before taking anything
    assert [f["uuid"] for _, f in store.audit.spool] == ["c"]
    # The next call, with room, goes through on the same connection.
    store.r.delete(keys.rate("acme", "hourly", "ext:1001"))
    assert store.calls.record_verdict("acme", "d", {"uuid": "d", "verdict": "ALLOW"}, {"verdict": "ALLOW"},
                                      admit=admit, now=1011.0).full is None
    assert store.r.exists(keys.verdict("acme", "d"))


def test_a_claim_lost_on_a_fresh_park_reads_nothing(store, redis_url):
    """Every controller on a node gets every park: the losers of the claim stop
    at it (one SET), unless they are taking a call over and need its state."""
    other = Store.open(redis_url, owner="other")
    for s in (store, other):
        s.calls.enable_script()
    other.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="u-0")  # its lane's connection opened
    won = store.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="u-1", stop_if_taken=True)
    assert won.claimed and won.snapshot is not None
    before = commands_processed(store.r)
    lost = other.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="u-1", stop_if_taken=True)
    assert (lost.claimed, lost.snapshot) == (False, None)
    if not isinstance(store.r, redis.RedisCluster):  # INFO commandstats reads one node of a Cluster
        assert commands_processed(store.r) - before - 1 == 2  # the EVALSHA and its SET (+1: the INFO that measures)
    taking_over = other.calls.load("acme", "1001", "1001", "0899123456", claim_uuid="u-1")
    assert not taking_over.claimed and taking_over.snapshot.extension.number == "1001"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([60, 600, 3600]),
       st.lists(st.floats(-30, 400, allow_nan=False), min_size=1, max_size=25))
@example(60, [0, 100, -5, 61])  # a clock behind opens a bucket older than the oldest kept
@example(60, [0.0, 61.0, -1.0])  # a clock behind would miss a bucket the one ahead dropped
def test_a_velocity_count_is_the_same_in_lua_and_in_process_and_never_forgets_a_call(store, window, steps):
    """The admission script and the embedded store's twin (store.counting) keep
    a velocity count alike: at each admission both find every earlier call
    whose bucket is not older than the window (so never fewer than an exact
    window would), however far apart the calls; a clock behind counts as the
    latest clock that filed a call did (it neither misses what that one dropped
    nor files its own call out of the window)."""
    lane = store.calls.lane
    assert store.calls.enable_script()
    for key in (keys.rate("acme", "lua", "tenant"), keys.rate("acme", "py", "tenant")):
        store.r.delete(key)
    now, times, width = 1_800_000_000.0, [], bucket_seconds(window)
    for step in steps:
        now += step
        clock = max([now, *(t // width * width for t in times)])
        expected = sum(1 for t in times if t // width >= oldest_bucket(clock, window))
        exact = sum(1 for t in times if t >= clock - window)
        got = []
        for name, via in (("lua", lane), ("py", None)):
            store.calls.lane = via
            admission = store.calls.record_verdict("acme", f"{name}-{len(times)}", {"verdict": "ALLOW"},
                                                   {"verdict": "ALLOW"}, now=now,
                                                   admit=(("velocity", name, "tenant", 10_000, window),))
            got.append(admission.counts)
        store.calls.lane = lane
        assert got == [(expected,), (expected,)] and expected >= exact
        times.append(clock)
    for name in ("lua", "py"):
        fields = store.r.hgetall(keys.rate("acme", name, "tenant"))
        assert rate_count(fields, now, window) == int(fields["n"])  # the sum it keeps is the buckets'
        assert 0 < store.r.ttl(keys.rate("acme", name, "tenant")) <= window + 2 * bucket_seconds(window) + 60
