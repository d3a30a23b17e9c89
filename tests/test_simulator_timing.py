"""The simulator keeps the real switch's clocks (issue 32), so what is slower on
FreeSWITCH 1.10 is slower on the simulator too:

- the park loop (switch_ivr_park): without media it sleeps 20 ms
  (`switch_yield(20000)`), then runs ONE queued message, then the rest of the
  queue (switch_ivr_parse_all_events): a message sent to a parked channel runs
  at the loop's next tick, never before, and messages sent together at the same
  tick; with media a queued message breaks read_frame at once;
- an Event Socket listener (mod_event_socket's read_packet): its events go out
  when its thread wakes, at the 20 ms timeout of its poll or right after a
  command of the client's has been handled; replies are not delayed;
- the socket application without `async` (static): the listener runs in the
  channel's thread, each sendmsg runs there and then and its +OK is sent when
  the application returns; meanwhile nothing is read and no event is sent;
- a listener reads a command's header block one byte per recv() (and a
  sched_yield() after each), its body in one recv(): a long argument costs
  time as a header and next to none as the body.
"""

from __future__ import annotations

import socket as pysocket
import time

import gevent
import gevent.socket
import pytest

from controller.freeswitch import commands
from controller.freeswitch.esl import InboundConnection
from controller.freeswitch.framing import FrameReader, decode_frame
from controller.simulator import Caller, Simulator
from tests.rig import wait

PACE = 0.020


@pytest.fixture
def sim():
    s = Simulator(scale=0.05).start()
    yield s
    s.stop()


def stamp_runs(ch) -> list[tuple[str, float]]:
    """(application, perf_counter) each time the channel starts one."""
    stamps: list[tuple[str, float]] = []
    run = ch._app

    def stamped(app, *rest):
        stamps.append((app, time.perf_counter()))
        return run(app, *rest)

    ch._app = stamped
    return stamps


def just_after_a_tick(start: float, pace: float = PACE, after: float = 0.003) -> float:
    """Sleep until `after` seconds past a tick of a clock that started at `start`
    (perf_counter); returns that tick's time."""
    now = time.perf_counter()
    k = int((now - start) / pace) + 1
    tick = start + k * pace
    gevent.sleep(tick + after - now)
    return tick


def sets(ch, n: int) -> list[str]:
    return [commands.execute("set", f"v{i}=x", commands.new_event_uuid(), ch.uuid).replace("event-lock: true\n", "")
            for i in range(n)]


def test_a_message_to_a_parked_channel_waits_for_the_park_loops_next_tick(sim):
    esl = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda _h: None, subscribe_filter=False)
    esl.open()
    try:
        ch = sim.place_call("0140000000")
        wait(lambda: ch.parked and ch.t_park_start, message="the park")
        stamps = stamp_runs(ch)
        tick = just_after_a_tick(ch.t_park_start)
        sent = time.perf_counter()
        esl.send_many(sets(ch, 3))  # one write
        wait(lambda: len(stamps) == 3, message="the three sets")
    finally:
        esl.close()
    next_tick = tick + PACE
    assert sent < next_tick - 0.010  # sent well before the next tick...
    assert all(t >= next_tick - 0.002 for _app, t in stamps), [round((t - sent) * 1000, 1) for _a, t in stamps]
    # ... and all three ran at that same tick, one after another
    assert stamps[-1][1] - stamps[0][1] < PACE / 2


def test_with_media_a_queued_message_runs_at_once(sim):
    esl = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda _h: None, subscribe_filter=False)
    esl.open()
    try:
        ch = sim.place_call("0140000000")
        wait(lambda: ch.parked and ch.t_park_start, message="the park")
        esl.send(commands.execute("answer", None, commands.new_event_uuid(), ch.uuid))
        wait(lambda: ch.state == "answered", message="the answer")
        stamps = stamp_runs(ch)
        gevent.sleep(0.050)
        just_after_a_tick(ch.t_park_start)
        sent = time.perf_counter()
        esl.send_many(sets(ch, 1))
        wait(lambda: stamps, message="the set")
    finally:
        esl.close()
    assert stamps[0][1] - sent < 0.012  # read_frame broken at once, not the next tick


def test_park_pace_zero_runs_at_once():
    sim = Simulator(scale=0.05, park_pace=0, event_pace=0).start()
    esl = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda _h: None, subscribe_filter=False)
    esl.open()
    try:
        ch = sim.place_call("0140000000")
        wait(lambda: ch.parked and ch.t_park_start, message="the park")
        stamps = stamp_runs(ch)
        just_after_a_tick(ch.t_park_start)
        sent = time.perf_counter()
        esl.send_many(sets(ch, 1))
        wait(lambda: stamps, message="the set")
    finally:
        esl.close()
        sim.stop()
    assert stamps[0][1] - sent < 0.012


class RawClient:
    """A raw Event Socket client: every frame with the time it arrived."""

    def __init__(self, sock):
        self.sock = sock
        self.frames: list[tuple[float, str, dict, str]] = []  # (perf_counter, kind, headers, text)
        self.reader = gevent.spawn(self._read)

    def _read(self):
        frames = FrameReader()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            for headers, body in frames.feed(data):
                kind, h, text = decode_frame(headers, body)
                self.frames.append((now, kind, dict(h), text))

    def send(self, text: str) -> float:
        t = time.perf_counter()
        self.sock.sendall((text + "\n\n").encode())
        return t

    def events(self, name: str | None = None):
        return [f for f in self.frames if f[1] == "event" and (name is None or f[2].get("Event-Name") == name)]

    def replies(self):
        return [f for f in self.frames if f[1] == "reply"]

    def close(self):
        self.sock.close()
        self.reader.kill()


def inbound_client(sim) -> RawClient:
    c = RawClient(gevent.socket.create_connection(("127.0.0.1", sim.port)))
    wait(lambda: c.frames, message="auth/request")
    c.send("auth ClueCon")
    c.send("event plain ALL")
    wait(lambda: len(c.replies()) == 2, message="the replies")
    return c


def conn_t0(sim) -> float:
    """The server side's clock of the one inbound client, in perf_counter."""
    conn = next(iter(sim.inbound))
    return conn.t0 - time.monotonic() + time.perf_counter()


def test_events_go_out_on_the_listeners_tick(sim):
    c = inbound_client(sim)
    try:
        t0 = conn_t0(sim)
        tick = just_after_a_tick(t0)
        placed = time.perf_counter()
        ch = sim.place_call("0140000000")
        wait(lambda: c.events("CHANNEL_PARK"), message="the park")
        park = c.events("CHANNEL_PARK")[0][0]
    finally:
        c.close()
    assert placed < tick + PACE - 0.010
    # Not at once: at the connection's next tick (the park itself was queued at once).
    assert park >= tick + PACE - 0.002, round((park - placed) * 1000, 1)
    assert ch.t_park is not None and ch.t_park >= tick + PACE - 0.002  # stamped when written


def test_a_command_flushes_the_events_behind_its_reply(sim):
    c = inbound_client(sim)
    try:
        t0 = conn_t0(sim)
        just_after_a_tick(t0)
        sim.place_call("0140000000")  # its events wait for the listener's wake...
        gevent.sleep(0.002)
        assert not c.events("CHANNEL_PARK")
        sent = c.send("api status")  # ... which a command brings at once
        wait(lambda: c.events("CHANNEL_PARK"), message="the park")
        replies = c.replies()
        reply_at = replies[2][0]
        park = c.events("CHANNEL_PARK")[0][0]
        first = c.frames[c.frames.index(replies[1]) + 1]
    finally:
        c.close()
    assert reply_at - sent < 0.010 and park - sent < 0.010
    assert first is replies[2]  # the reply first, then the event queue


def test_a_header_block_is_read_a_byte_at_a_time_and_a_body_at_once():
    cost = 10e-6  # per header byte, well above the real 1.35 µs so the wait shows
    sim = Simulator(scale=0.05, header_byte_cost=cost).start()
    c = inbound_client(sim)
    try:
        ch = sim.place_call("0140000000")
        wait(lambda: ch.parked, message="the park")
        as_header = (f"sendmsg {ch.uuid}\ncall-command: execute\nexecute-app-name: set\n"
                     f"execute-app-arg: v={'x' * 3000}")
        as_body = commands.execute("set", f"w={'y' * 3000}", None, ch.uuid, lock=False)
        assert "content-length: 3002" in as_body  # commands.execute sends it as the body
        timings = []
        for text, header_bytes in ((as_header, len(as_header) + 2), (as_body, as_body.index("\n\n") + 2)):
            before, replies = sim.read_seconds, len(c.replies())
            sent = c.send(text) if text is as_header else _send_raw(c, text)
            wait(lambda: len(c.replies()) > replies, message="the reply")
            timings.append((sim.read_seconds - before, c.replies()[-1][0] - sent, header_bytes))
        wait(lambda: ch.vars.get("w") == "y" * 3000, message="the second set, run from its body")
        assert ch.vars.get("v") == "x" * 3000
    finally:
        c.close()
        sim.stop()
    (charged_h, took_h, bytes_h), (charged_b, _took_b, bytes_b) = timings
    assert charged_h == pytest.approx(bytes_h * cost) and bytes_h > 3000
    assert charged_b == pytest.approx(bytes_b * cost) and bytes_b < 150
    assert took_h >= charged_h - 0.001  # the reply waited for the header block to be read


def _send_raw(c: "RawClient", text: str) -> float:
    """A command that ends with its body: no blank line after it (commands.wire)."""
    t = time.perf_counter()
    c.sock.sendall(commands.wire([text]))
    return t


@pytest.fixture
def listener():
    listening = SocketListener()
    yield listening
    listening.close()


class SocketListener:
    """The controller's end of socket mode, raw: one session, frames timed."""

    def __init__(self):
        self.server = gevent.socket.socket()
        self.server.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.address = self.server.getsockname()

    def accept(self) -> RawClient:
        sock, _ = self.server.accept()
        return RawClient(sock)

    def close(self):
        self.server.close()


def static_session(sim, listener, socket_args="full", **kw):
    ch = sim.place_call("0140000000", mode="socket", socket_address=listener.address, socket_args=socket_args, **kw)
    c = listener.accept()
    c.send("connect")
    wait(lambda: c.replies(), message="the connect reply")
    c.send("myevents")
    c.send("linger 10")
    wait(lambda: len(c.replies()) == 3, message="myevents, linger")
    return ch, c


def own(app, arg, lock=False, headers=""):
    msg = commands.execute(app, arg, commands.new_event_uuid())
    msg = msg if lock else msg.replace("event-lock: true\n", "")
    return msg + headers


def test_the_connect_reply_says_the_mode(sim, listener):
    for args, mode in (("full", "static"), ("async full", "async")):
        ch, c = static_session(sim, listener, socket_args=args)
        assert c.replies()[0][2]["Socket-Mode"] == mode
        c.close()
        wait(lambda: ch.state == "hangup", message="the end")


def test_static_runs_each_sendmsg_at_once_and_replies_when_it_returns(sim, listener):
    ch, c = static_session(sim, listener)
    before = len(c.frames)
    sent = time.perf_counter()
    c.sock.sendall("".join(m + "\n\n" for m in [
        own("multiset", "a=1 b=2"), own("playback", "tone_stream://%(500,0,440)"),
        own("hangup", "NORMAL_CLEARING")]).encode())
    wait(lambda: any(f[1] == "disconnect" for f in c.frames), message="the linger notice")
    frames = c.frames[before:]
    gevent.sleep(0.1)
    assert ch.state == "hangup" and ch.hangup_cause == "NORMAL_CLEARING"
    assert not c.events("CHANNEL_HANGUP_COMPLETE")  # the channel's thread is the listener's
    c.send("exit")
    wait(lambda: ch.ended_at, message="the channel's end")
    kinds = [(f[1], f[2].get("Event-Name", "")) for f in frames]
    # Three +OK first: with input pending the listener sends no event...
    assert kinds[:3] == [("reply", "")] * 3, kinds
    replies = [f for f in frames if f[1] == "reply"]
    # ... and the playback's +OK came when it returned (1 s * scale), not at once.
    assert replies[1][0] - replies[0][0] >= 1.0 * sim.scale - 0.005
    assert replies[0][0] - sent < 0.015
    events = [k[1] for k in kinds if k[0] == "event"]
    assert events[:2] == ["CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"]
    assert "CHANNEL_HANGUP" in events and "CHANNEL_PARK" not in events
    assert kinds[-1][0] == "disconnect"
    assert [a for a, _d in ch.runs[-3:]] == ["multiset", "playback", "hangup"]


def test_static_a_command_waits_behind_a_running_application(sim, listener):
    ch, c = static_session(sim, listener)
    c.send(own("sleep", "2000"))
    wait(lambda: ch.application == "sleep", message="the sleep")
    asked = c.send("api uuid_exists " + ch.uuid)
    wait(lambda: len(c.replies()) == 5, message="the api reply")
    answered = c.replies()[4][0]
    assert answered - asked >= 2.0 * sim.scale - 0.03  # read only once the sleep returned
    c.close()
    wait(lambda: ch.ended_at, message="the end")
    # The client went away: the socket application returns, the dialplan hangs up.
    assert ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"


def test_static_an_async_header_queues_instead(sim, listener):
    ch, c = static_session(sim, listener)
    c.send(own("set", "queued=yes", headers="\nasync: true"))
    wait(lambda: len(c.replies()) == 4, message="the +OK")
    gevent.sleep(0.1)
    assert "queued" not in ch.vars  # nobody parses the queue: no park in static mode
    c.send(own("sleep", "200"))  # an application that parses events runs it
    wait(lambda: ch.vars.get("queued") == "yes", message="the queued set")
    c.close()


def test_static_park_timeout_plays_no_part(sim, listener):
    ch, c = static_session(sim, listener, variables={"park_timeout": "1:RECOVERY_ON_TIMER_EXPIRE"})
    gevent.sleep(2 * sim.scale + 0.3)
    assert ch.state != "hangup"
    c.close()
    wait(lambda: ch.ended_at, message="the end")


def test_a_hangup_from_elsewhere_reaches_a_static_session(sim, listener):
    ch, c = static_session(sim, listener)
    sim.api(f"uuid_kill {ch.uuid} NORMAL_CLEARING")
    wait(lambda: any(f[1] == "disconnect" for f in c.frames), message="the linger notice")
    assert c.events("CHANNEL_HANGUP")
    c.close()
    wait(lambda: ch.ended_at, message="the end")
    assert ch.hangup_cause == "NORMAL_CLEARING"


def test_sched_cancel_cancels_sched_hangup(sim):
    esl = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda _h: None, subscribe_filter=False)
    esl.open()
    try:
        ch = sim.place_call("0140000000", caller=Caller())
        wait(lambda: ch.parked, message="the park")
        esl.send_many([commands.execute("sched_hangup", "+2 ALLOTTED_TIMEOUT", commands.new_event_uuid(), ch.uuid),
                       commands.execute("sched_cancel", None, commands.new_event_uuid(), ch.uuid)])
        wait(lambda: ch.runs and ch.runs[-1][0] == "sched_cancel", message="the cancel")
        gevent.sleep(2 * sim.scale + 0.2)
        assert ch.state != "hangup"
        esl.send(commands.execute("sched_hangup", "+1 ALLOTTED_TIMEOUT", commands.new_event_uuid(), ch.uuid))
        wait(lambda: ch.state == "hangup", message="the scheduled hangup")
        assert ch.hangup_cause == "ALLOTTED_TIMEOUT"
    finally:
        esl.close()


def test_the_modelled_setup_delay_is_measured_apart_from_the_controllers_time(sim):
    """benchmarks.load: latency_ms from CHANNEL_PARK written to the bridge command
    read (the controller's time); setup_ms from the park's start to the bridge
    running (what the caller waits, the switch's paces included)."""
    bridged = []
    esl = InboundConnection("127.0.0.1", sim.port, "ClueCon", lambda h: bridged.append(h.get("Unique-ID"))
                            if h.get("Event-Name") == "CHANNEL_PARK" else None)
    esl.open()
    try:
        ch = sim.place_call("0140000000", caller=Caller(talk_seconds=0.1))
        wait(lambda: ch.uuid in bridged, message="the park, read")
        esl.send(commands.execute("bridge", "sofia/gateway/carrier/+33140000000", commands.new_event_uuid(), ch.uuid))
        wait(lambda: ch.t_bridge_run, message="the bridge")
    finally:
        esl.close()
    response = ch.t_bridge - ch.t_park
    setup = ch.t_bridge_run - ch.t_park_start
    # The park went out on the listener's tick and the bridge ran on the park loop's
    # (never before its first, a tick after the park's start): the caller waits
    # those on top of the controller's response.
    assert ch.t_park >= ch.t_park_start and ch.t_bridge_run >= ch.t_bridge
    assert setup >= response and setup >= PACE - 0.002
