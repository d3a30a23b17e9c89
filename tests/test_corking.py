"""Calls that write in the same turn of the event loop share one write: Redis
loads (one pipelined round trip) and Event Socket commands (one sendall)."""

import gevent
import pytest
import redis

from controller.errors import NotConnected
from controller.freeswitch.esl import InboundConnection
from controller.simulator import Simulator
from controller.store.lane import Lane
from tests.rig import RoundTrips

pytestmark = pytest.mark.redis


SCRIPT = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
def lane_and_sha(plain_redis_url):
    r = redis.Redis.from_url(plain_redis_url, decode_responses=True, socket_timeout=1)
    yield Lane(r, size=4, wait=0.5), r.script_load(SCRIPT)
    r.close()


def test_loads_of_one_turn_share_one_round_trip(lane_and_sha, monkeypatch):
    lane, sha = lane_and_sha
    lane.script(sha, SCRIPT, ["warm"], ["up"])  # the connection's own handshake is not counted
    counter = RoundTrips(monkeypatch)
    calls = [gevent.spawn(lane.script, sha, SCRIPT, [f"k{i}"], [f"v{i}"]) for i in range(20)]
    gevent.joinall(calls, raise_error=True)
    assert [c.value for c in calls] == [[f"k{i}", f"v{i}"] for i in range(20)]
    assert counter.sends == 1
    assert lane.script(sha, SCRIPT, ["alone"], ["x"]) == ["alone", "x"] and counter.sends == 2


def test_a_call_alone_writes_without_giving_the_loop_a_turn_first(lane_and_sha, monkeypatch):
    """The yield that lets others join is taken only when someone is due to run."""
    import controller.store.lane as lane_module
    from controller.turns import others_due

    lane, sha = lane_and_sha
    lane.script(sha, SCRIPT, ["warm"], ["up"])
    yields = []
    real_sleep = gevent.sleep
    monkeypatch.setattr(lane_module.gevent, "sleep", lambda s=0: (yields.append(s), real_sleep(s)))
    assert not others_due()
    assert lane.script(sha, SCRIPT, ["alone"], ["x"]) == ["alone", "x"]
    assert yields == []
    later = gevent.spawn(lambda: None)  # due in this turn: now a yield can bring it in
    assert others_due()
    assert lane.script(sha, SCRIPT, ["joined"], ["y"]) == ["joined", "y"]
    assert yields == [0] and later.dead


def test_a_failed_shared_round_trip_fails_every_call_in_it(plain_redis_url, monkeypatch):
    r = redis.Redis(port=1, socket_connect_timeout=0.2, socket_timeout=0.2)  # nothing listens there
    lane = Lane(r, size=4, wait=0.5)
    calls = [gevent.spawn(lane.script, "0" * 40, SCRIPT, ["k"], ["v"]) for _ in range(5)]
    gevent.joinall(calls)
    assert all(isinstance(c.exception, redis.ConnectionError) for c in calls)
    assert lane._cork == []


def test_an_interrupted_first_caller_does_not_strand_the_others(lane_and_sha):
    lane, sha = lane_and_sha
    first = gevent.spawn(lane.script, sha, SCRIPT, ["first"], ["1"])
    others = [gevent.spawn(lane.script, sha, SCRIPT, [f"k{i}"], ["v"]) for i in range(3)]
    gevent.sleep(0)  # all four are in; the first yields once before its write
    first.kill()  # e.g. its call's watchdog
    gevent.joinall(others, timeout=2)
    assert all(c.ready() and isinstance(c.exception, redis.ConnectionError) for c in others)
    assert lane.script(sha, SCRIPT, ["after"], ["ok"]) == ["after", "ok"], "the next turn works"


@pytest.fixture
def esl():
    sim = Simulator().start()
    conn = InboundConnection("127.0.0.1", sim.port, "ClueCon", on_event=lambda h: None, timeout=2)
    conn.open()
    yield sim, conn
    conn.close()
    sim.stop()


def test_event_socket_commands_of_one_turn_share_one_write(esl, monkeypatch):
    sim, conn = esl
    proto = conn.wire.proto
    writes = []
    cls = type(proto.sock)
    original = cls.sendall

    def counting(sock, data, *args):
        if sock is proto.sock:  # the simulator's sockets are of the same class
            writes.append(data)
        return original(sock, data, *args)

    monkeypatch.setattr(cls, "sendall", counting)
    chans = [sim.place_call("0140000000", managed=False) for _ in range(10)]
    gevent.sleep(0.05)
    asks = [gevent.spawn(conn.send_many, [f"api uuid_exists {c.uuid}", "api uuid_exists nope"]) for c in chans]
    gevent.joinall(asks, raise_error=True)
    assert [a.value for a in asks] == [["true", "false"]] * 10, "each call got its own replies, in order"
    assert len(writes) == 1 and writes[0].count(b"api uuid_exists") == 20


def test_an_event_socket_writer_alone_writes_without_giving_the_loop_a_turn_first(esl, monkeypatch):
    from greenlet import getcurrent

    import controller.freeswitch.esl as esl_module

    sim, conn = esl
    conn.send("api status")
    me, real_sleep, yields = getcurrent(), gevent.sleep, []
    monkeypatch.setattr(esl_module.gevent, "sleep",
                        lambda s=0: (yields.append(s) if getcurrent() is me else None, real_sleep(s)))
    assert conn.send("api uuid_exists nope") == "false"
    assert yields == []
    gevent.spawn(lambda: None)  # someone due in this turn: the writer waits for it
    assert conn.send("api uuid_exists nope") == "false"
    assert yields == [0]


def test_a_dropped_connection_fails_the_waiting_writers(esl):
    sim, conn = esl
    asks = [gevent.spawn(conn.send, "api status") for _ in range(5)]
    sim.drop_connections()
    gevent.joinall(asks, timeout=5)
    assert all(a.ready() for a in asks)
    assert all(a.successful() or isinstance(a.exception, NotConnected) for a in asks)
    with pytest.raises(NotConnected):
        conn.send("api status")



def test_the_lane_packs_as_redis_py_does_and_refuses_what_it_refuses(lane_and_sha, monkeypatch):
    """The lane packs with hiredis directly: the same bytes as redis-py's own
    serializer, a value Redis cannot take (None) a DataError as from redis-py,
    and the lane still serves the next call."""
    from controller.store.lane import pack

    lane, _ = lane_and_sha
    conn = redis.Connection()
    commands = [("HSET", "tg:{t}:x", "name", "Élise ✓", "n", 42, "f", 2.5, "b", b"\x00raw"), ("EXPIRE", "k", 60)]
    packed = pack(conn, commands)
    assert b"".join(packed) == b"".join(conn.pack_commands(commands))
    monkeypatch.setattr("controller.store.lane._pack_one", None)  # without hiredis: redis-py's serializer
    assert b"".join(pack(conn, commands)) == b"".join(packed)
    monkeypatch.undo()
    with pytest.raises(redis.DataError):
        lane.roundtrip([("SET", "k", None)])
    assert lane.roundtrip([("SET", "tg:{t}:lane", "Élise"), ("GET", "tg:{t}:lane")]) == ["OK", "Élise"]
