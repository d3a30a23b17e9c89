"""The simulator replays what a real FreeSWITCH 1.10.12 did with a static (sync)
socket session (tests/fixtures/esl/14-*, captured by
`python -m tests.realfs.capture 14`): `socket HOST:PORT full`, no `async`;
connect, myevents, linger 10, then multiset, playback and hangup in one write.
The listener runs each sendmsg in the channel's thread and replies when it
returns, sends no event while input is pending, so the three +OK come first
(the second and third when the playback is over), then every event, then the
linger notice; CHANNEL_HANGUP_COMPLETE never comes while the session lingers
(the channel's hangup waits for the socket application to return)."""

from __future__ import annotations

import re
import socket as pysocket
import time
from pathlib import Path

import gevent
import gevent.socket

from controller.freeswitch import commands
from controller.freeswitch.framing import FrameReader, decode_frame
from controller.simulator import Simulator
from tests.rig import wait

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "esl"
NAME = "14-static-socket-session-three-sendmsg-one-write"
OURS = {"multiset", "playback", "hangup"}
PLAYBACK = "tone_stream://%(500,0,440)"


def token(kind: str, h, text: str) -> str | None:
    """What the comparison keeps of a frame: replies, our applications' events,
    the hangup events and the notices (not the events of the dialplan that ran
    before the socket application, nor CHANNEL_STATE or PROGRESS_MEDIA, whose
    place among the others depends on FreeSWITCH's threads)."""
    if kind == "reply":
        return "reply " + text.strip()
    if kind == "disconnect":
        return "notice " + (h.get("Content-Disposition") or "")
    name = h.get("Event-Name", "")
    if name in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE") and h.get("Application") in OURS:
        return f"{name} {h.get('Application')}"
    if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
        return name
    return None


def after_linger(frames: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """From the reply to our sendmsg on (the connect, myevents and linger replies cut)."""
    i = [n for n, (_t, tok) in enumerate(frames) if tok and tok.startswith("reply +OK will linger")][0]
    return [f for f in frames[i + 1:] if f[1]]


def captured() -> list[tuple[float, str]]:
    """(ms since our first write, token) from the transcript's timed recv()s."""
    raw = (FIXTURES / f"{NAME}.transcript").read_bytes()
    marker = re.compile(rb"<<< (\d+) bytes at \+([\d.]+) ms\n")
    reader, out, at = FrameReader(), [], 0
    while (m := marker.search(raw, at)) is not None:
        n = int(m.group(1))
        chunk = raw[m.end():m.end() + n]  # a recv() of n bytes, cut wherever it fell
        at = m.end() + n
        for headers, body in reader.feed(chunk):
            out.append((float(m.group(2)) / 1000, token(*decode_frame(headers, body))))
    return after_linger(out)


def simulated() -> tuple[list[tuple[float, str]], float]:
    sim = Simulator(scale=0.05).start()
    server = gevent.socket.socket()
    server.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    frames: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    try:
        ch = sim.place_call("0140000000", mode="socket", socket_address=server.getsockname(), socket_args="full")
        sock, _ = server.accept()
        reader = FrameReader()

        def read():
            while data := sock.recv(65536):
                for headers, body in reader.feed(data):
                    frames.append((time.perf_counter() - t0, token(*decode_frame(headers, body))))

        g = gevent.spawn(read)
        for line in ("connect", "myevents", commands.linger()):
            sock.sendall((line + "\n\n").encode())
        wait(lambda: any(t and t.startswith("reply +OK will linger") for _x, t in frames), message="linger's reply")
        msgs = [commands.execute("multiset", "tollgate_verdict=allow tollgate_static=yes", commands.new_event_uuid()),
                commands.execute("playback", PLAYBACK, commands.new_event_uuid()),
                commands.execute("hangup", "NORMAL_CLEARING", commands.new_event_uuid())]
        sock.sendall("".join(m.replace("event-lock: true\n", "") + "\n\n" for m in msgs).encode())
        wait(lambda: any(t == "notice linger" for _x, t in frames), message="the linger notice")
        gevent.sleep(0.3)
        sock.sendall(b"exit\n\n")
        wait(lambda: any(t == "notice disconnect" for _x, t in frames), message="the goodbye")
        wait(lambda: ch.ended_at, message="the channel's end")
        g.kill()
        sock.close()
        playback = ch.prompt_length(PLAYBACK) * sim.scale
    finally:
        server.close()
        sim.stop()
    return after_linger(frames), playback


def test_the_simulator_runs_a_static_session_as_the_real_switch_did():
    real = captured()
    sim, playback = simulated()
    assert [t for _x, t in sim] == [t for _x, t in real]
    # What the capture shows, said plainly: three +OK first, the events after,
    # no CHANNEL_HANGUP_COMPLETE while the session lingers.
    tokens = [t for _x, t in real]
    assert tokens[:3] == ["reply +OK"] * 3
    assert "CHANNEL_HANGUP_COMPLETE" not in tokens
    assert tokens[-3:] == ["notice linger", "reply +OK bye", "notice disconnect"]
    # The playback's +OK when it returned (500 ms on the switch), the hangup's right behind it.
    (r1, _), (r2, _), (r3, _) = real[:3]
    assert r2 - r1 >= 0.45 and r3 - r2 < 0.05
    (s1, _), (s2, _), (s3, _) = sim[:3]
    assert s2 - s1 >= playback * 0.9 and s3 - s2 < 0.05
