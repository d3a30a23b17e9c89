"""Socket mode's listener: one greenlet per connection, bounded, and stopped
whatever its calls are doing."""

import socket

import gevent
import gevent.event
import pytest

from controller.freeswitch.socket_server import SocketServer


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=2)


@pytest.fixture
def served():
    servers = []

    def make(on_session, host="127.0.0.1", **kw):
        srv = SocketServer(host, 0, on_session, **kw)
        srv.serve()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop(timeout=0.5)


def test_each_connection_is_a_session_of_its_own(served):
    seen = []

    def on_session(s):
        seen.append(s.sock.recv(10))

    srv = served(on_session)
    clients = [_connect(srv.bound_port) for _ in range(5)]
    for i, c in enumerate(clients):
        c.sendall(b"call%d" % i)
    with gevent.Timeout(2):
        while len(seen) < 5:
            gevent.sleep(0.01)
    assert sorted(seen) == [b"call%d" % i for i in range(5)]
    with gevent.Timeout(2):
        while srv.running:
            gevent.sleep(0.01)
    for c in clients:
        assert c.recv(10) == b"", "closed by the server once its session returned"


def test_at_capacity_a_connection_waits_until_a_call_ends(served):
    release = gevent.event.Event()
    started = []

    def on_session(s):
        started.append(s)
        release.wait()

    srv = served(on_session, max_connections=2)
    clients = [_connect(srv.bound_port) for _ in range(3)]
    gevent.sleep(0.2)
    assert len(started) == 2 and len(srv.running) == 2, "the third waits in the listen queue"
    release.set()
    with gevent.Timeout(2):
        while len(started) < 3:
            gevent.sleep(0.01)
    for c in clients:
        c.close()


def test_a_session_that_fails_does_not_stop_the_server(served, caplog):
    calls = []

    def on_session(s):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in one call")

    srv = served(on_session)
    _connect(srv.bound_port)
    with gevent.Timeout(2):
        while srv.running or not calls:
            gevent.sleep(0.01)
    assert "socket session failed" in caplog.text
    _connect(srv.bound_port)
    with gevent.Timeout(2):
        while len(calls) < 2:
            gevent.sleep(0.01)


def test_stop_ends_the_calls_still_running_after_its_timeout():
    ended = []

    def on_session(s):
        try:
            gevent.sleep(60)
        finally:
            ended.append(1)

    srv = SocketServer("127.0.0.1", 0, on_session)
    srv.serve()
    port = srv.bound_port
    c = _connect(port)
    gevent.sleep(0.1)
    with gevent.Timeout(5):
        srv.stop(timeout=0.2)
    assert ended == [1] and not srv.running
    assert srv.bound_port is None
    with pytest.raises(OSError):
        _connect(port)
    c.close()


def test_an_ipv6_address_is_listened_on_as_ipv6(served):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    seen = []
    srv = served(lambda s: seen.append(s.sock.recv(10)), host="[::1]")
    c = socket.create_connection(("::1", srv.bound_port), timeout=2)
    c.sendall(b"v6")
    with gevent.Timeout(2):
        while not seen:
            gevent.sleep(0.01)
    assert seen == [b"v6"]
    c.close()
