"""The simulator replays what a real FreeSWITCH 1.10.12 did with a static (sync)
socket session (tests/fixtures/esl/14-*, captured by
`python -m tests.realfs.capture 14`): `socket HOST:PORT full`, no `async`;
connect, myevents, linger 10, then multiset, playback and hangup in one write.
The listener runs each sendmsg in the channel's thread and replies when it
returns, sends no event while input is pending, so the three +OK come first
(the second and third when the playback is over), then every event, then the
linger notice; CHANNEL_HANGUP_COMPLETE never comes while the session lingers
(the channel's hangup waits for the socket application to return). Also 15
(an execute's argument as the message's body) and 16 (a session we close once
its handover is acknowledged: all of it still runs)."""

from __future__ import annotations

import contextlib
import re
import socket as pysocket
import time
from pathlib import Path

import gevent
import gevent.event
import gevent.socket

from controller.freeswitch import commands
from controller.freeswitch.esl_socket import unacknowledged
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


@contextlib.contextmanager
def static_session(on_frame, follow: bool = True):
    """A call on the simulator whose dialplan runs `socket HOST:PORT full`, its
    session taken here: `connect` and (`follow`) `myevents`, `linger 10`
    answered; every frame FreeSWITCH sends goes to on_frame(kind, headers,
    text, at). Yields the simulator, the channel and the session's socket."""
    sim = Simulator(scale=0.05).start()
    server = gevent.socket.socket()
    server.setsockopt(pysocket.SOL_SOCKET, pysocket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    t0 = time.perf_counter()
    lingering, connected = gevent.event.Event(), gevent.event.Event()
    try:
        ch = sim.place_call("0140000000", mode="socket", socket_address=server.getsockname(), socket_args="full")
        sock, _ = server.accept()
        reader = FrameReader()

        def read():
            while data := sock.recv(65536):
                for headers, body in reader.feed(data):
                    kind, h, text = decode_frame(headers, body)
                    if kind == "reply":
                        connected.set()
                        if text.startswith("+OK will linger"):
                            lingering.set()
                    on_frame(kind, h, text, time.perf_counter() - t0)

        g = gevent.spawn(read)
        sock.sendall(commands.wire(["connect", "myevents", commands.linger()] if follow else ["connect"]))
        wait((lingering if follow else connected).is_set, message="the session's replies")
        try:
            yield sim, ch, sock
        finally:
            g.kill()
            sock.close()
    finally:
        server.close()
        sim.stop()


def simulated() -> tuple[list[tuple[float, str]], float]:
    frames: list[tuple[float, str]] = []
    with static_session(lambda kind, h, text, at: frames.append((at, token(kind, h, text)))) as (sim, ch, sock):
        msgs = [commands.execute("multiset", "tollgate_verdict=allow tollgate_static=yes", commands.new_event_uuid()),
                commands.execute("playback", PLAYBACK, commands.new_event_uuid()),
                commands.execute("hangup", "NORMAL_CLEARING", commands.new_event_uuid())]
        sock.sendall(commands.wire([m.replace("event-lock: true\n", "") for m in msgs]))
        wait(lambda: any(t == "notice linger" for _x, t in frames), message="the linger notice")
        gevent.sleep(0.3)
        sock.sendall(b"exit\n\n")
        wait(lambda: any(t == "notice disconnect" for _x, t in frames), message="the goodbye")
        wait(lambda: ch.ended_at, message="the channel's end")
        playback = ch.prompt_length(PLAYBACK) * sim.scale
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


BODY_NAME = "15-static-socket-session-argument-as-body"
BODY_ARG = "^^|tollgate_verdict=ALLOW|tollgate_reason=allowed|tollgate_class=national|tollgate_body=yes"


def _executes(events: list) -> dict:
    """Application -> its first CHANNEL_EXECUTE's headers."""
    out: dict = {}
    for h in events:
        if h.get("Event-Name") == "CHANNEL_EXECUTE":
            out.setdefault(h.get("Application"), h)
    return out


def body_session_on_the_simulator() -> list:
    events: list = []

    def keep(kind, h, _text, _at):
        if kind == "event":
            events.append(dict(h))

    with static_session(keep) as (_sim, ch, sock):
        sock.sendall(commands.wire([commands.execute("multiset", BODY_ARG, None, lock=False),
                                    commands.execute("playback", PLAYBACK, commands.new_event_uuid(), lock=False),
                                    commands.execute("hangup", "NORMAL_CLEARING", None, lock=False)]))
        wait(lambda: "hangup" in _executes(events), message="the hangup's CHANNEL_EXECUTE")
        sock.sendall(b"exit\n\n")
        wait(lambda: ch.ended_at, message="the channel's end")
    return events


def test_a_long_argument_goes_as_the_body_and_both_switches_run_it():
    # What the real switch did (fixture 15): the body of a sendmsg without
    # execute-app-arg, content-type text/plain, is the application's argument;
    # no Event-UUID sent, FreeSWITCH makes up the Application-UUID.
    reader, real = FrameReader(), []
    for headers, body in reader.feed((FIXTURES / f"{BODY_NAME}.rx").read_bytes()):
        kind, h, _text = decode_frame(headers, body)
        if kind == "event":
            real.append(dict(h))
    transcript = (FIXTURES / f"{BODY_NAME}.transcript").read_text()
    sent = "".join(part.split("\n<<< ")[0] for part in transcript.split(">>> SENT")[1:])
    assert "content-length: %d\n\n%s" % (len(BODY_ARG), BODY_ARG) in sent and "execute-app-arg: ^^" not in sent
    for events in (real, body_session_on_the_simulator()):
        runs = _executes(events)
        assert runs["multiset"]["Application-Data"] == BODY_ARG
        assert runs["multiset"].get("Application-UUID", "") not in sent
        assert runs["playback"]["variable_tollgate_body"] == "yes"
        assert runs["playback"]["variable_tollgate_reason"] == "allowed"
        assert runs["hangup"]["Application-Data"] == "NORMAL_CLEARING"


def test_commands_put_only_a_long_argument_in_the_body():
    short = commands.execute("hangup", "${originate_disposition}", None, lock=False)
    assert "execute-app-arg: ${originate_disposition}" in short and "content-length" not in short
    long = commands.execute("bridge", "{origination_caller_id_number=1002}sofia/gateway/carrier/+33140000000",
                            "e1", lock=False)
    head, sep, body = long.partition("\n\n")
    assert sep and body == "{origination_caller_id_number=1002}sofia/gateway/carrier/+33140000000"
    assert f"content-length: {len(body.encode())}" in head and "Event-UUID: e1" in head
    # UTF-8: the length is in bytes
    accented = commands.execute("multiset", "tollgate_rule=Numéros autorisés du siège social", None)
    assert f"content-length: {len('tollgate_rule=Numéros autorisés du siège social'.encode())}" in accented
    # On the wire a command with a body is not followed by a blank line of ours.
    assert commands.wire([long, "exit"]) == (long + "exit\n\n").encode()
    assert commands.wire(["myevents"]) == b"myevents\n\n"


RELEASED = "16-static-socket-session-released-after-handover"
HANDED_OVER = ("multiset", "playback", "playback", "hangup")


def _released_handover(uuid: str, playbacks: int) -> list[str]:
    """The capture's handover, with `playbacks` playbacks (the capture has two)."""
    return [commands.cancel_bound(uuid),
            commands.execute("multiset", BODY_ARG, None, lock=False),
            *[commands.execute("playback", "tone_stream://%(200,0,660)", None, lock=False)] * playbacks,
            commands.execute("hangup", "USER_BUSY", None, lock=False)]


def test_a_static_session_closed_after_its_handover_still_runs_all_of_it():
    # What the real switch did (fixture 16): the client closed as soon as every
    # byte was acknowledged, before most replies; the listener ran the rest of
    # what it had been sent, and the hangup's own cause ended the call, not the
    # dialplan's NORMAL_TEMPORARY_FAILURE after `socket`.
    session = (FIXTURES / f"{RELEASED}.transcript").read_text()
    closed_at = session.index(">>> CLOSED")
    assert "USER_BUSY" in session[:closed_at] and "Reply-Text" not in session[closed_at:]
    reader, real = FrameReader(), []
    for headers, body in reader.feed((FIXTURES / f"{RELEASED}-events.rx").read_bytes()):
        kind, h, _text = decode_frame(headers, body)
        if kind == "event":
            real.append(dict(h))
    done = [h["Application"] for h in real
            if h.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE" and h.get("Application") in HANDED_OVER]
    assert done == list(HANDED_OVER)
    assert {h.get("Hangup-Cause") for h in real if h.get("Event-Name", "").startswith("CHANNEL_HANGUP")} == {"USER_BUSY"}
    # The simulator, the same way (closed as soon as all is acknowledged, here
    # before any reply): every reply it cannot send dropped, every command run.
    # Three playbacks: the writes of their replies fail from the second on, while
    # a command is still to be read.
    runs: list[str] = []
    with static_session(lambda *_frame: None, follow=False) as (sim, ch, sock):
        run = ch._app
        ch._app = lambda app, *rest: (runs.append(app), run(app, *rest))[1]
        sock.sendall(commands.wire(_released_handover(ch.uuid, playbacks=3)))
        wait(lambda: unacknowledged(sock) == 0, message="every byte acknowledged")
        sock.close()
        wait(lambda: ch.ended_at, message="the channel's end")
    assert [a for a in runs if a in HANDED_OVER] == ["multiset", "playback", "playback", "playback", "hangup"]
    assert ch.hangup_cause == "USER_BUSY"
