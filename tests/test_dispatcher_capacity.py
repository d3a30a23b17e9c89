"""The dispatcher's bound on calls in progress, and its shutdown."""

import gevent
import gevent.event

from controller.call.dispatcher import Dispatcher
from controller.freeswitch import commands
from controller.freeswitch.events import ChannelPark


class _Transport:
    node = ""

    def __init__(self):
        self.sent = []

    def send(self, data, timeout=None):
        self.sent.append(data)
        return "+OK"


def _park(uuid: str) -> ChannelPark:
    return ChannelPark(uuid=uuid, tenant="acme", extension="1001", caller_id="1001", dialed="0140000000",
                       managed=True)


def test_past_max_calls_a_park_is_refused_and_a_place_comes_back_when_a_call_ends(monkeypatch):
    release = gevent.event.Event()
    ran = []

    class Flow:
        def __init__(self, session, park, svc, **kw):
            self.park = park

        def run(self):
            ran.append(self.park.uuid)
            release.wait()

    monkeypatch.setattr("controller.call.dispatcher.CallFlow", Flow)
    d = Dispatcher(svc=None, max_calls=2)
    t = _Transport()
    assert d.start(_park("a"), t, "a") is not None
    assert d.start(_park("b"), t, "b") is not None
    assert d.start(_park("c"), t, "c") is None and d.rejected == 1
    gevent.sleep(0.05)
    assert t.sent == [commands.hangup_channel("c", "NORMAL_TEMPORARY_FAILURE")]
    assert ran == ["a", "b"] and set(d.calls) == {"a", "b"}
    release.set()
    gevent.sleep(0.05)
    assert not d.running and not d.calls
    assert d.start(_park("d"), t, "d") is not None


def test_kill_all_ends_the_calls_still_running(monkeypatch):
    ended = []

    class Flow:
        def __init__(self, session, park, svc, **kw):
            self.park = park

        def run(self):
            try:
                gevent.sleep(60)
            finally:
                ended.append(self.park.uuid)

    monkeypatch.setattr("controller.call.dispatcher.CallFlow", Flow)
    done = []
    d = Dispatcher(svc=None, max_calls=10)
    d.start(_park("a"), _Transport(), "a", on_done=lambda: done.append("a"))
    gevent.sleep(0.01)
    with gevent.Timeout(3):
        d.kill_all(timeout=2)
    assert ended == ["a"] and done == ["a"] and not d.running and not d.calls


def test_a_flow_that_raises_is_logged_and_its_call_forgotten(monkeypatch, caplog):
    class Flow:
        def __init__(self, session, park, svc, **kw):
            pass

        def run(self):
            raise RuntimeError("a bug")

    monkeypatch.setattr("controller.call.dispatcher.CallFlow", Flow)
    d = Dispatcher(svc=None, max_calls=10)
    d.start(_park("a"), _Transport(), "a")
    gevent.sleep(0.05)
    assert "call flow failed" in caplog.text and not d.calls and not d.running
