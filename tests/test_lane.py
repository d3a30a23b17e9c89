"""The hot path's direct Redis connections (controller.store.lane) against a real redis-server."""

import gevent
import pytest
import redis
from redis.exceptions import ResponseError

from controller.store import Store
from controller.store import lane as lane_module
from controller.store.lane import Lane

pytestmark = pytest.mark.redis


@pytest.fixture
def r(plain_redis_url):
    client = redis.Redis.from_url(plain_redis_url, decode_responses=True, socket_timeout=1)
    yield client
    client.close()


def test_an_error_reply_keeps_the_connection_in_step(r):
    lane = Lane(r, size=2, wait=0.5)
    r.set("lane:text", "not a number")
    replies = lane.roundtrip([("INCR", "lane:text"), ("SET", "lane:n", "1"), ("INCR", "lane:n")])
    assert isinstance(replies[0], ResponseError) and replies[1:] == ["OK", 2]
    assert lane.roundtrip([("GET", "lane:n")]) == ["2"]
    assert len(lane._idle) == 1, "one connection served both round trips"


def test_a_transaction_reports_its_error(r):
    lane = Lane(r, size=2, wait=0.5)
    with pytest.raises(ResponseError):
        lane.transaction([("SET", "lane:t", "1"), ("INCRBY", "lane:t")])  # wrong arity: EXECABORT
    assert r.get("lane:t") is None, "nothing of an aborted transaction is applied"
    assert lane.transaction([("SET", "lane:t", "1"), ("INCR", "lane:t")]) == ["OK", 2]


def test_the_load_script_survives_a_flushed_script_cache(plain_redis_url, r):
    store = Store.open(plain_redis_url)
    store.admin.create_tenant("acme", {"country": "FR"})
    assert store.calls.enable_script()
    first = store.calls.load("acme", "1001", "1001", "0140000000", claim_uuid="u1")
    r.script_flush()  # what a Redis restart does to the cache
    again = store.calls.load("acme", "1001", "1001", "0140000000", claim_uuid="u2")
    assert first.claimed and again.claimed and again.snapshot.settings == first.snapshot.settings


def test_a_connection_the_server_closed_while_idle_is_replaced(r, monkeypatch):
    lane = Lane(r, size=2, wait=0.5)
    assert lane.roundtrip([("CLIENT", "SETNAME", "lane-test")]) == ["OK"]
    killed = r.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    gevent.sleep(0.05)
    monkeypatch.setattr(lane_module, "IDLE_CHECK", 0.0)  # every reuse is checked
    assert lane.roundtrip([("PING",)]) == ["PONG"]


def test_without_the_idle_check_a_dead_connection_would_fail_the_call(r, monkeypatch):
    """The check above is what saves the call: here it is off, and the same
    sequence costs one failed command."""
    lane = Lane(r, size=2, wait=0.5)
    lane.roundtrip([("PING",)])
    r.client_kill_filter(_type="normal", skipme=True)
    gevent.sleep(0.05)
    monkeypatch.setattr(lane_module, "IDLE_CHECK", 1e9)
    with pytest.raises(redis.ConnectionError):
        lane.roundtrip([("PING",)])
    assert lane.roundtrip([("PING",)]) == ["PONG"], "the failed connection was dropped, a new one made"


def test_no_free_connection_in_time_is_a_redis_error(r):
    lane = Lane(r, size=1, wait=0.1)
    holder = gevent.spawn(lane.roundtrip, [("BLPOP", "lane:never", "0.4")])
    gevent.sleep(0.02)
    with pytest.raises(redis.ConnectionError, match="no free Redis connection"):
        lane.roundtrip([("PING",)])
    assert holder.get(timeout=2) == [None]
    assert lane.roundtrip([("PING",)]) == ["PONG"]
