"""The ends of counted calls on their own Event Socket connection (controller.call.ends):
read in batches, the ends before a close still counted, a refused or dropped
connection made again while the controller keeps deciding calls."""

import logging

import gevent
import pytest

from controller.call.ends import EndsFeed
from controller.simulator import Caller
from controller.simulator.wire import disconnect_notice, event_plain
from tests.rig import Rig, wait


def _end(uuid: str, counted: str = "", billsec: str = "42") -> bytes:
    headers = [("Event-Name", "CHANNEL_HANGUP_COMPLETE"), ("Unique-ID", uuid),
               ("variable_tollgate_tenant", "acme"), ("variable_billsec", billsec)]
    if counted:
        headers.append(("variable_tollgate_counted", counted))
    return event_plain(headers)


def test_a_batch_gives_each_counted_end_once_and_stops_at_a_disconnect_notice():
    got = []
    feed = EndsFeed("127.0.0.1", 1, "x", "c1", got.extend)
    first = _end("u1", "c/lines/tenant") + _end("u2")
    stream = (first + _end("u3", "b/day/tenant/2026-11-23", billsec="-5")
              + disconnect_notice("Disconnected, goodbye.") + _end("u4", "c/lines/tenant"))
    cut = len(first) + 40  # a read that ends inside a frame: the rest comes with the next
    assert feed._handle(stream[:cut]) is False
    assert feed._handle(stream[cut:]) is True  # the notice: the connection is over
    assert [(e.uuid, e.tenant, e.counted, e.billsec) for e in got] == [
        ("u1", "acme", "c/lines/tenant", 42), ("u3", "acme", "b/day/tenant/2026-11-23", 0)]
    assert feed.ends_read == 2


def test_a_batch_whose_handler_fails_is_logged_and_the_feed_goes_on(caplog):
    def broken(_ends):
        raise RuntimeError("boom")

    feed = EndsFeed("127.0.0.1", 1, "x", "c1", broken)
    feed._handle(_end("u1", "c/lines/tenant"))
    assert "the end of 1 counted calls not handled: RuntimeError" in caplog.text


@pytest.mark.redis
def test_a_refused_password_is_retried_with_backoff(redis_url, caplog):
    rig = Rig(redis_url)
    try:
        feed = EndsFeed("127.0.0.1", rig.sim.port, "wrong", "c1", lambda ends: None, timeout=2.0, base=0.05, cap=0.1)
        g = gevent.spawn(feed.run)
        wait(lambda: feed.reconnects >= 2, message="two attempts")
        assert not feed.up.is_set()
        assert "ends connection to 127.0.0.1" in caplog.text and "refused the password" in caplog.text
        feed.stop()
        g.join(timeout=2)
        assert g.dead
    finally:
        rig.close()


@pytest.mark.redis
@pytest.mark.e2e
def test_the_ends_connection_comes_back_after_a_drop_and_places_are_given_back(redis_url, caplog):
    caplog.set_level(logging.INFO)
    rig = Rig(redis_url)
    try:
        rig.provision()
        ctl = rig.controller("c1")
        rig.store.limits.add("acme", {"name": "lines", "kind": "concurrency", "scope": "tenant", "max": 50})
        assert rig.sim.ends_clients() == 1
        assert "tollgate_esl_ends_connected 1.0" in ctl.metrics.render().decode()
        feed = ctl.feeds[0]
        assert rig.sim.drop_connections() == 2  # the park connection and the ends one
        wait(lambda: feed.reconnects >= 1 and feed.up.is_set() and rig.sim.inbound_clients() == 1,
             message="both connections back")
        assert ctl.readiness()["ends_connections"] == {f"127.0.0.1:{rig.sim.port}": True}
        calls = [rig.call(f"014000002{i}", caller_id="1001", caller=Caller(talk_seconds=0.2)) for i in range(3)]
        rig.finish(*calls, timeout=15)
        assert all(c.bridged for c in calls)
        wait(lambda: feed.ends_read == 3, message="the three ends read")
        wait(lambda: rig.store.r.hlen("tg:{acme}:place:lines:tenant") == 0, message="places given back")
        rig.assert_clean(caplog)
    finally:
        rig.close()


def test_the_ends_connection_asks_freeswitch_for_its_owners_ends_only():
    from controller.freeswitch import commands

    assert commands.subscribe_ends() == "event plain CHANNEL_HANGUP_COMPLETE"
    assert commands.filter_ends("pbx-1:4242") == "filter variable_tollgate_managed ended-pbx-1:4242"
    assert commands.filter_ends("a b/c") == "filter variable_tollgate_managed ended-a-b-c"  # one word
    assert commands.filter_managed() == "filter variable_tollgate_managed true"
    with pytest.raises(commands.UnsafeCommand):
        commands.auth("ClueCon\n\napi uuid_kill")


class _FakeSwitch:
    """Just enough of mod_event_socket for the ends connection: auth, three +OK
    replies, then whatever the test pushes."""

    def __init__(self):
        from gevent.server import StreamServer

        self.conn = None
        self.server = StreamServer(("127.0.0.1", 0), self._serve)
        self.server.start()

    def _serve(self, sock, _addr):
        sock.sendall(b"Content-Type: auth/request\n\n")
        buf = b""
        for _ in range(3):  # auth, event, filter
            while b"\n\n" not in buf:
                buf += sock.recv(4096)
            buf = buf.split(b"\n\n", 1)[1]
            sock.sendall(b"Content-Type: command/reply\nReply-Text: +OK\n\n")
        self.conn = sock
        gevent.sleep(60)

    def close(self):
        self.server.stop()


def test_an_idle_ends_connection_is_not_read_and_the_ends_of_a_window_share_one_batch():
    fs = _FakeSwitch()
    batches = []
    feed = EndsFeed("127.0.0.1", fs.server.server_port, "x", "c1", batches.append, window=0.1)
    reads = []
    drain = feed._drain
    feed._drain = lambda sock: reads.append(1) or drain(sock)
    g = gevent.spawn(feed.run)
    try:
        wait(lambda: feed.up.is_set() and fs.conn is not None, message="the ends connection up")
        gevent.sleep(0.5)
        assert reads == []  # nothing came: nothing read (it used to poll every window)
        fs.conn.sendall(_end("u1", "c/lines/tenant"))
        gevent.sleep(0.03)
        fs.conn.sendall(_end("u2", "c/lines/tenant"))
        wait(lambda: batches, message="the batch")
        gevent.sleep(0.2)
        assert [[e.uuid for e in b] for b in batches] == [["u1", "u2"]] and len(reads) == 1
        feed.stop()  # while it waits for the next byte
        g.join(timeout=2)
        assert g.dead
    finally:
        g.kill()
        fs.close()
