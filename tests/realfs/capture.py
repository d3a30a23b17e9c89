"""Captures Event Socket traffic from the real test bed into tests/fixtures/esl/:
`python -m tests.realfs.capture` (needs a FreeSWITCH 1.10 binary).

The same two files per scenario as shared/fixtures/esl: NAME.rx, every byte
FreeSWITCH sent on the connection, and NAME.transcript, the same annotated
with what the client wrote (`>>> SENT`) and what each recv() returned
(`<<< N bytes`). Scenarios: a bridge with a queued hangup without and with
event-lock, a playback followed by a queued command without and with it, and a
socket-mode session (connect, myevents, linger 10, an event-locked execute,
the hangup by uuid_kill, the linger notice, our close), and a static (sync)
socket session (`socket HOST:PORT full`, no `async`: three sendmsg in one
write, each run by the listener in the channel's own thread), with the time
each recv() came at.

`python -m tests.realfs.capture 14` captures only the static session (short:
one FreeSWITCH, one call); `15` only a static session's execute whose argument
is the message's body and that carries no Event-UUID; `16` only a static
session closed by us as soon as its handover is acknowledged, and the
channel's events seen by an observer; `17` only an inbound call of the stock
dialplan seen without and with the filter that drops the mark's own
CHANNEL_EXECUTE_COMPLETE.
"""

from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from controller.freeswitch import commands  # noqa: E402
from controller.freeswitch.esl_socket import unacknowledged  # noqa: E402
from controller.freeswitch.framing import FrameReader, decode_frame  # noqa: E402
from tests.realfs import bed  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "esl"


class Recorder:
    """A raw Event Socket client that keeps every byte and every write."""

    def __init__(self, sock: socket.socket, timed: bool = False):
        self.sock = sock
        self.timed = timed  # the transcript says when each write and recv() happened
        self.t0 = time.monotonic()
        self.rx = bytearray()
        self.transcript: list[str] = []
        self.frames = FrameReader()
        self.events: list[dict] = []
        self.replies: list[str] = []

    def at(self) -> str:
        return f" at +{(time.monotonic() - self.t0) * 1000:.1f} ms" if self.timed else ""

    def send(self, text: str) -> None:
        self.send_together([text])

    def send_together(self, texts: list[str]) -> None:
        """Commands in one write (commands.wire), noted as one in the transcript."""
        self.transcript.append(f">>> SENT{self.at()}\n" + "\n\n".join(texts) + "\n")
        self.sock.sendall(commands.wire(texts))

    def read_until(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            if predicate():
                return True
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return predicate()
            self.rx += data
            self.transcript.append(f"<<< {len(data)} bytes{self.at()}\n" + data.decode("utf-8", "replace"))
            for headers, body in self.frames.feed(data):
                kind, h, text = decode_frame(headers, body)
                if kind == "event":
                    self.events.append(dict(h))
                elif kind == "reply":
                    self.replies.append(text)
                elif kind == "disconnect":
                    self.events.append({"Event-Name": "DISCONNECT", **dict(h)})
        return predicate()

    def save(self, name: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}.rx").write_bytes(bytes(self.rx))
        (OUT / f"{name}.transcript").write_text("".join(self.transcript))
        print(f"wrote {OUT / name}.rx ({len(self.rx)} bytes, {len(self.events)} events)")


def inbound(fs: bed.FreeSwitch, mark_filter: bool = False) -> Recorder:
    r = Recorder(socket.create_connection(("127.0.0.1", fs.ports.esl)))
    r.read_until(lambda: b"auth/request" in r.rx)
    r.send(commands.auth(fs.esl_password))
    r.read_until(lambda: r.replies)
    r.send(commands.subscribe())
    r.send(commands.filter_managed())
    if mark_filter:
        r.send(commands.filter_mark_executed())
    r.read_until(lambda: len(r.replies) >= 3 + mark_filter)
    return r


MARK = "17-inbound-park-mark"


def mark_filtered(fs: bed.FreeSwitch) -> None:
    """One call of the stock dialplan seen by two inbound connections with the
    controller's subscription and mark filter: one without the negative filter
    on the mark's own execution (`-unfiltered`), one with it (`-filtered`, as
    the controller connects since issue 32's fifth session). The first gets the
    CHANNEL_EXECUTE_COMPLETE of `set tollgate_managed=true` before the
    CHANNEL_PARK; the second gets the CHANNEL_PARK first. The call is then
    killed, and both read to its CHANNEL_HANGUP_COMPLETE."""
    plain, filtered = inbound(fs), inbound(fs, mark_filter=True)
    place(fs, "0140000000")
    uuid = parked_uuid(filtered)
    parked_uuid(plain)
    filtered.send(commands.uuid_kill(uuid, "NORMAL_CLEARING"))
    for r in (plain, filtered):
        r.read_until(done(r, uuid), 10)
        r.sock.close()
    plain.save(MARK + "-unfiltered")
    filtered.save(MARK + "-filtered")


def place(fs: bed.FreeSwitch, dialed: str) -> None:
    api = fs.connect(lambda _h: None)
    api.send(f"bgapi originate {{ignore_early_media=true,originate_timeout=30}}sofia/gateway/ext1002/{dialed} &park()")
    api.close()


def parked_uuid(r: Recorder) -> str:
    r.read_until(lambda: any(e.get("Event-Name") == "CHANNEL_PARK" for e in r.events), 15)
    return next(e["Unique-ID"] for e in r.events if e.get("Event-Name") == "CHANNEL_PARK")


def done(r: Recorder, uuid: str):
    return lambda: any(e.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == uuid
                       for e in r.events)


def sequence(fs: bed.FreeSwitch, name: str, steps: list[tuple[str, str]], lock: bool) -> None:
    """A parked call, then `steps` queued in one write, with or without event-lock."""
    r = inbound(fs)
    place(fs, "0140000000")
    uuid = parked_uuid(r)
    msgs = []
    for app, arg in steps:
        msg = commands.execute(app, arg, commands.new_event_uuid(), uuid)
        msgs.append(msg if lock else msg.replace("event-lock: true\n", ""))
    r.send_together(msgs)
    if not r.read_until(done(r, uuid), 20):
        r.send(commands.uuid_kill(uuid, "NORMAL_CLEARING"))
        r.read_until(done(r, uuid), 10)
    r.sock.close()
    r.save(name)


def _socket_session_opened(fs: bed.FreeSwitch, timed: bool, follow: bool = True):
    """Listen where the bed's dialplan connects, place a call, take its session:
    `connect`, and (`follow`) `myevents` and `linger`, answered. (listener,
    socket, Recorder, uuid)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", fs.ports.socket))
    listener.listen(1)
    place(fs, "0140000000")
    sock, _ = listener.accept()
    r = Recorder(sock, timed=timed)
    r.send("connect")
    r.read_until(lambda: b"Content-Type: command/reply" in r.rx)
    uuid = FrameReader().feed(bytes(r.rx))[0][0]["Unique-ID"]
    if follow:
        r.send("myevents")
        r.send(commands.linger())
        r.read_until(lambda: len(r.replies) >= 2)
    return listener, sock, r, uuid


def socket_session(fs: bed.FreeSwitch) -> None:
    listener, sock, r, uuid = _socket_session_opened(fs, timed=False)
    r.send(commands.execute("playback", "tone_stream://%(2000,0,440)", commands.new_event_uuid()))
    r.read_until(lambda: any(e.get("Event-Name") == "CHANNEL_EXECUTE" for e in r.events), 5)
    gevent.sleep(0.3)
    r.send(commands.hangup_channel(uuid, "NORMAL_CLEARING"))  # pre-empts the locked playback
    r.read_until(done(r, uuid), 10)
    r.read_until(lambda: any(e.get("Content-Disposition") == "linger" for e in r.events), 3)
    r.send("exit")
    r.read_until(lambda: False, 1)
    sock.close()
    listener.close()
    r.save("12-socket-session-linger-10-uuid-kill")


STATIC = "14-static-socket-session-three-sendmsg-one-write"


def static_socket_session(fs: bed.FreeSwitch) -> None:
    """`socket HOST:PORT full` without `async`: mod_event_socket's listener_run
    runs in the channel's thread and each sendmsg is run at once
    (switch_ivr_parse_event), its +OK sent when the application returns."""
    listener, sock, r, uuid = _socket_session_opened(fs, timed=True)
    msgs = [commands.execute("multiset", "tollgate_verdict=allow tollgate_static=yes", commands.new_event_uuid(),
                             lock=False),
            commands.execute("playback", "tone_stream://%(500,0,440)", commands.new_event_uuid(), lock=False),
            commands.execute("hangup", "NORMAL_CLEARING", commands.new_event_uuid(), lock=False)]
    r.send_together(msgs)
    # Does CHANNEL_HANGUP_COMPLETE come while the session lingers? (The channel's
    # thread is the listener's: its hangup state waits for the socket application.)
    _linger_then_exit(r, sock, listener, done(r, uuid), STATIC)


def _linger_then_exit(r: Recorder, sock, listener, then, name: str) -> None:
    """The linger notice, what `then` waits for (1.5 s at most), our `exit` and
    FreeSWITCH's goodbye; the session saved as `name`."""
    r.read_until(lambda: any(e.get("Content-Disposition") == "linger" for e in r.events), 10)
    r.read_until(then, 1.5)
    r.send("exit")
    r.read_until(lambda: False, 1)
    sock.close()
    listener.close()
    r.save(name)


BODY = "15-static-socket-session-argument-as-body"
# Longer than commands.BODY_FROM: sent as the sendmsg's body.
BODY_ARG = "^^|tollgate_verdict=ALLOW|tollgate_reason=allowed|tollgate_class=national|tollgate_body=yes"


def static_body_session(fs: bed.FreeSwitch) -> None:
    """A static session's execute whose argument is the message's body
    (`content-type: text/plain`, no execute-app-arg) and that carries no
    Event-UUID, as a handover nobody follows is sent: FreeSWITCH reads the body
    in one recv and runs the application with it (switch_ivr_parse_event)."""
    listener, sock, r, _uuid = _socket_session_opened(fs, timed=True)
    msgs = [commands.execute("multiset", BODY_ARG, None, lock=False),
            commands.execute("playback", "tone_stream://%(200,0,440)", commands.new_event_uuid(), lock=False),
            commands.execute("hangup", "NORMAL_CLEARING", None, lock=False)]
    assert "content-length" in msgs[0] and "execute-app-arg" not in msgs[0]
    r.send_together(msgs)
    _linger_then_exit(r, sock, listener, lambda: any(e.get("Event-Name") == "CHANNEL_HANGUP" for e in r.events),
                      BODY)


RELEASED = "16-static-socket-session-released-after-handover"


def static_released_session(fs: bed.FreeSwitch) -> None:
    """A handover nobody follows, then our close as soon as FreeSWITCH has
    acknowledged every byte of it (SocketSession.release): the session without
    myevents or linger, the dialplan's scheduled bound cancelled, a multiset, two
    playbacks and a hangup with a cause of its own in one write. What the
    listener was sent runs after our close all the same (the replies it cannot
    send are dropped): the playbacks, then the hangup with USER_BUSY, not the
    NORMAL_TEMPORARY_FAILURE of the dialplan's action after `socket`. Two files: the session's, which ends at our close,
    and an observer's (an inbound connection with Tollgate's subscription and
    filter), with the channel's events up to CHANNEL_HANGUP_COMPLETE."""
    observer = inbound(fs)
    observer.timed = True
    observer.t0 = time.monotonic()
    listener, sock, r, uuid = _socket_session_opened(fs, timed=True, follow=False)
    r.t0 = observer.t0
    msgs = [commands.cancel_bound(uuid),
            commands.execute("multiset", BODY_ARG, None, lock=False),
            commands.execute("playback", "tone_stream://%(300,0,440)", None, lock=False),
            commands.execute("playback", "tone_stream://%(200,0,660)", None, lock=False),
            commands.execute("hangup", "USER_BUSY", None, lock=False)]  # as tests/test_fixtures_static.py's
    r.send_together(msgs)
    r.read_until(lambda: unacknowledged(sock) == 0 and r.replies, 5)
    r.transcript.append(f">>> CLOSED{r.at()} (every byte acknowledged: TIOCOUTQ 0)\n")
    sock.close()
    listener.close()
    observer.read_until(done(observer, uuid), 10)
    observer.sock.close()
    hangup = next(e for e in observer.events if e.get("Event-Name") == "CHANNEL_HANGUP")
    assert hangup.get("Hangup-Cause") == "USER_BUSY", hangup.get("Hangup-Cause")
    r.save(RELEASED)
    observer.save(RELEASED + "-events")


@contextlib.contextmanager
def switch(work: Path, name: str, mode: str):
    """A FreeSWITCH of the test bed in work/name, configured for `mode`, up for the block."""
    fs = bed.FreeSwitch(work / name, mode)
    (work / name).mkdir()
    fs.configure()
    fs.start()
    try:
        yield fs
    finally:
        fs.stop()


def static_only(work: Path, capture: str = "all") -> None:
    with switch(work, "static", "socket") as fs:
        # The bed's socket-mode dialplan is freeswitch-conf's, static since issue 32.
        assert ' full"/>' in (fs.conf / "dialplan" / "default" / "90_tollgate.xml").read_text()
        if capture in ("14", "all"):
            static_socket_session(fs)
        if capture in ("15", "all"):
            static_body_session(fs)
        if capture in ("16", "all"):
            static_released_session(fs)


def main() -> int:
    why = bed.why_not_runnable()
    if why:
        print(f"capture: {why}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tollgate-capture-"))
    if sys.argv[1:] in (["14"], ["15"], ["16"]):
        static_only(work, sys.argv[1])
        return 0
    if sys.argv[1:] == ["17"]:
        with switch(work, "inbound", "inbound") as fs:
            mark_filtered(fs)
        return 0
    with switch(work, "inbound", "inbound") as fs:
        bridge = [("set", "hangup_after_bridge=true"), ("bridge", "sofia/gateway/carrier/+33140000000"),
                  commands.hangup_if_bridge_fails()]
        sequence(fs, "11-bridge-then-queued-hangup-no-event-lock", bridge, lock=False)
        sequence(fs, "11-bridge-then-queued-hangup-event-lock", bridge, lock=True)
        after_playback = [("playback", "tone_stream://%(1000,0,440)"), ("set", "after_playback=yes"),
                          ("hangup", "NORMAL_CLEARING")]
        sequence(fs, "13-playback-then-queued-set-no-event-lock", after_playback, lock=False)
        sequence(fs, "13-playback-then-queued-set-event-lock", after_playback, lock=True)
        mark_filtered(fs)
    with switch(work, "socket", "socket") as fs:
        socket_session(fs)
    static_only(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
