"""The simulator's channel keeps FreeSWITCH 1.10's private event queue (shared
fixtures' README, switch_ivr.c and switch_core_session.c): every `sendmsg` is
queued; an application that parses events while it runs (bridge, playback,
play_and_get_digits, sleep) runs what is queued behind it *nested*, unless the
running one came with `event-lock: true`; a queued call-command hangup waits
like any execute; `uuid_kill` pre-empts. And socket sessions linger as
mod_event_socket's do: the channel stays until the client closes."""

from __future__ import annotations

import gevent
import pytest

from controller.freeswitch import commands
from controller.freeswitch.esl import InboundConnection
from controller.simulator import Caller, Simulator
from tests.rig import wait


@pytest.fixture
def sim():
    s = Simulator(scale=0.05).start()
    yield s
    s.stop()


@pytest.fixture
def esl(sim):
    conn = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda _h: None, subscribe_filter=False)
    conn.open()
    yield conn
    conn.close()


def parked(sim):
    ch = sim.place_call("0140000000", caller=Caller(talk_seconds=1))
    wait(lambda: ch.parked, message="the call parked")
    return ch


def execute(ch, app, arg, lock):
    """A sendmsg execute as commands.execute builds it, with or without the lock."""
    msg = commands.execute(app, arg, commands.new_event_uuid(), ch.uuid)
    return msg if lock else msg.replace("event-lock: true\n", "")


@pytest.mark.parametrize("lock", [False, True])
def test_a_hangup_queued_behind_a_bridge_runs_inside_it_unless_event_locked(sim, esl, lock):
    """What every bridged call met on FreeSWITCH 1.10.12: `hangup
    ${originate_disposition}` queued behind the bridge ran at depth 2, inside the
    originate, and cancelled it."""
    ch = parked(sim)
    esl.send_many([execute(ch, "set", "hangup_after_bridge=true", lock),
                   execute(ch, "bridge", "sofia/gateway/carrier/+33140000000", lock),
                   execute(ch, "hangup", "${originate_disposition}", lock)])
    wait(lambda: ch.state == "hangup", message="the call's end")
    if lock:
        assert ch.outcome == "bridged"
        assert all(depth == 0 for _app, depth in ch.runs)
    else:
        assert ch.outcome != "bridged"
        assert ("hangup", 1) in ch.runs  # nested in the bridge, as FreeSWITCH logs "[depth=2]"


@pytest.mark.parametrize("lock", [False, True])
def test_a_command_queued_behind_a_playback_waits_only_when_locked(sim, esl, lock):
    ch = parked(sim)
    esl.send_many([execute(ch, "playback", "tone_stream://%(1000,0,440)", lock),
                   execute(ch, "set", "after_playback=yes", lock)])
    wait(lambda: ch.vars.get("after_playback") == "yes", message="the set ran")
    assert ch.runs[-1] == ("set", 0 if lock else 1)


def test_a_queued_hangup_waits_for_a_locked_application_and_uuid_kill_does_not(sim, esl):
    ch = parked(sim)
    esl.send(execute(ch, "sleep", "5000", lock=True))
    wait(lambda: ch.application == "sleep", message="the sleep runs")
    esl.send(f"sendmsg {ch.uuid}\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING")
    gevent.sleep(0.1)
    assert ch.state != "hangup"  # held back: the lock is the sleep's until it returns
    esl.send(commands.hangup_channel(ch.uuid, "RECOVERY_ON_TIMER_EXPIRE"))
    wait(lambda: ch.state == "hangup", timeout=2, message="uuid_kill's hangup")
    assert ch.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"


def test_park_timeout_ends_a_call_nobody_takes(sim):
    ch = sim.place_call("0140000000", variables={"park_timeout": "4:RECOVERY_ON_TIMER_EXPIRE"})
    wait(lambda: ch.state == "hangup", timeout=4 * 0.05 + 2, message="the park's end")
    assert ch.hangup_cause == "RECOVERY_ON_TIMER_EXPIRE"


class SocketController:
    """The client end of one socket-application session, held by the test."""

    def __init__(self, sim, linger: str | None):
        import gevent.socket as socket

        from controller.freeswitch.esl_socket import SocketSession

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.sessions: list = []
        self.readers: list = []
        self.linger = linger
        self.greenlet = gevent.spawn(self._accept)
        self.address = self.listener.getsockname()

    def _accept(self):
        from controller.freeswitch.esl_socket import SocketSession

        while True:
            sock, _ = self.listener.accept()
            s = SocketSession(sock, timeout=2)
            s._on_event, s._on_lost = (lambda _h: None), (lambda _r: None)
            s.send("connect")
            s.send("myevents")
            if self.linger is not None:
                s.send(self.linger)
            self.sessions.append(s)
            self.readers.append(gevent.spawn(self._read, s))

    @staticmethod
    def _read(s):
        while not s.closed and s.pump(0.05):
            pass

    def stop(self):
        self.greenlet.kill()
        self.listener.close()


@pytest.mark.parametrize("linger", [None, "linger", "linger 1"])
def test_a_lingering_socket_session_keeps_its_channel_until_the_client_closes(sim, esl, linger):
    client = SocketController(sim, linger)
    try:
        ch = sim.place_call("0140000000", mode="socket", socket_address=client.address)
        wait(lambda: client.sessions, message="the socket session")
        session = client.sessions[0]
        wait(lambda: ch.application == "socket" or ch.parked, message="the session runs")
        esl.send(commands.uuid_kill(ch.uuid, "NORMAL_CLEARING"))
        wait(lambda: ch.state == "hangup", message="the hangup")
        gevent.sleep(0.3)
        count = esl.api("api show channels count").strip()
        if linger is None:
            assert count == "0 total." and session.closed  # no linger: FreeSWITCH closes at once
            return
        assert count == "1 total."  # CS_DESTROY, still held for the client
        assert sim.live() == [ch]
        if linger == "linger 1":
            wait(lambda: not sim.live(), timeout=3, message="the linger time's end")
        else:
            gevent.sleep(0.5)
            assert sim.live() == [ch]  # plain `linger` is -1: forever, until we close
            gevent.killall(client.readers)
            session.close()
            wait(lambda: not sim.live(), message="the channel let go once the client closed")
        assert esl.api("api show channels count").strip() == "0 total."
    finally:
        client.stop()


def _socket_dialplan_bound() -> list[tuple[str, str]]:
    """The applications freeswitch-conf's socket-mode dialplan runs right before
    `socket`, other than `set` (the simulator's place_call sets those): the bound."""
    import xml.etree.ElementTree as ET
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "freeswitch-conf/socket-mode/dialplan/default/90_tollgate.xml"
    found = []
    for action in ET.parse(path).getroot().iter("action"):
        if action.get("application") == "socket":
            break
        if action.get("application") not in ("set", "multiset", "bridge", "hangup"):
            found.append((action.get("application"), action.get("data", "")))
    return found


@pytest.mark.parametrize("controller", ["silent", "speechless", "gone"])
def test_socket_mode_has_a_bound_freeswitch_keeps_whatever_the_controller_does(sim, controller):
    """Issue 31: a controller that stopped (accepts, never speaks), that connected
    and then went quiet, or that died mid-call: FreeSWITCH ends the call. The
    static socket application gives up on a controller that never says `connect`
    (mod_event_socket's 25 s) and the dialplan hangs up; one that connected and
    went quiet meets the dialplan's bound (issue 32: a scheduled uuid_kill, no
    park in a static session), with the cause inbound mode's park_timeout gives."""
    import gevent.socket as socket

    sim.connect_wait = 0.3
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held = []

    def serve():
        sock, _ = listener.accept()
        held.append(sock)
        if controller != "silent":
            sock.sendall(b"connect\n\n")
        if controller == "gone":
            gevent.sleep(0.1)
            sock.close()

    g = gevent.spawn(serve)
    try:
        ch = sim.place_call("0140000000", mode="socket", socket_address=listener.getsockname(),
                            before_socket=_socket_dialplan_bound())
        wait(lambda: ch.state == "hangup", timeout=180 * sim.scale + 3, message="FreeSWITCH's own bound")
        expected = "RECOVERY_ON_TIMER_EXPIRE" if controller == "speechless" else "NORMAL_TEMPORARY_FAILURE"
        assert ch.hangup_cause == expected  # otherwise the session ended and the dialplan's `hangup` ran
    finally:
        g.kill()
        listener.close()
        for sock in held:
            sock.close()
