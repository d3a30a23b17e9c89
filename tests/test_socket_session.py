"""Socket mode's session, which reads its own socket (no reader greenlet), over
real TCP against a FreeSWITCH side that replays the captured socket session."""

from pathlib import Path

import gevent
import gevent.socket as socket
import pytest

from controller.errors import NotConnected
from controller.freeswitch.esl_socket import SocketSession
from controller.call.session import CallSession

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "esl"
FIXTURES = SHARED if SHARED.is_dir() else Path(__file__).resolve().parent / "fixtures" / "esl"
CAPTURE = FIXTURES / "07-outbound-socket-session.rx"


def raw_frames(data: bytes) -> list[bytes]:
    """The capture cut into frames, byte for byte as FreeSWITCH wrote them."""
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\n\n", pos)
        if end < 0:
            break
        length = 0
        for line in data[pos:end].split(b"\n"):
            if line.startswith(b"Content-Length: "):
                length = int(line.split(b": ")[1])
        out.append(data[pos:end + 2 + length])
        pos = end + 2 + length
    return out


def is_reply(frame: bytes) -> bool:
    return b"Content-Type: command/reply" in frame or b"Content-Type: api/response" in frame


class FreeSwitchSide:
    """Connects to the controller's side as the `socket` application does. For each
    command it reads, it writes the captured frames up to that command's reply
    and the events that followed it (in small pieces, as TCP may deliver them)."""

    def __init__(self, frames: list[bytes], reply: bool = True, close_at_end: bool = True):
        self.frames, self.reply, self.close_at_end = list(frames), reply, close_at_end
        self.commands: list[str] = []
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.fs = socket.create_connection(listener.getsockname())
        self.controller_side, _ = listener.accept()
        listener.close()
        self.greenlet = gevent.spawn(self.serve)

    def serve(self) -> None:
        buf = b""
        while self.frames:
            data = self.fs.recv(65536)
            if not data:
                return
            buf += data
            while b"\n\n" in buf:
                command, buf = buf.split(b"\n\n", 1)
                self.commands.append(command.decode())
                if not self.reply:
                    continue
                replied = False
                while self.frames and not (replied and is_reply(self.frames[0])):
                    frame = self.frames.pop(0)  # the reply, then the events that followed it
                    replied = replied or is_reply(frame)
                    for i in range(0, len(frame), 97):
                        self.fs.sendall(frame[i:i + 97])
                if self.commands[-1].startswith("sendmsg") and "hangup" in self.commands[-1]:
                    for frame in self.frames:  # the call's last events, then the end
                        self.fs.sendall(frame)
                    self.frames = []
        if self.close_at_end:
            self.fs.close()

    def close(self) -> None:
        self.greenlet.kill()
        self.fs.close()


OK = b"Content-Type: command/reply\nReply-Text: +OK\n\n"


def session(frames=(OK,), timeout: float = 1.0, **fs_options):
    """A FreeSWITCH side with these frames, our session on the other end, and the
    reasons the session reports itself lost."""
    fs = FreeSwitchSide(list(frames), **fs_options)
    sock = SocketSession(fs.controller_side, timeout=timeout)
    lost: list[str] = []
    sock._on_lost = lost.append  # what start() would set, without its handshake
    return fs, sock, lost


def test_the_captured_session_from_connect_to_disconnect(monkeypatch):
    from controller.freeswitch import commands

    # The capture (an async session) predates the subscription's `nixevent`: the
    # replay answers each command with the captured reply in its position.
    monkeypatch.setattr(commands, "session_events", lambda: ["myevents"])
    fs = FreeSwitchSide(raw_frames(CAPTURE.read_bytes()))
    sock = SocketSession(fs.controller_side, timeout=2)
    seen, lost = [], []
    session = CallSession("", sock, None, pump=sock.pump)
    channel = sock.start(lambda h: (seen.append(h.get("Event-Name") or h.get("Content-Type")),
                                    session.deliver(h)), lost.append)
    assert channel["Unique-ID"] and channel["Channel-Caller-ID-Number"] == "1005"
    assert fs.commands == ["connect"] and not sock.sync  # the capture's session is async
    # A call that will read its events subscribes first (an allowed call nobody
    # counts, in a static session, never does).
    sock.send_many(sock.follow_commands())
    assert fs.commands == ["connect", "myevents", "linger 10"]  # bounded: never plain `linger` (-1)
    assert sock.follow_commands() == []  # once
    assert sock.send("sendmsg\ncall-command: execute\nexecute-app-name: answer") == "+OK"
    # Waiting for an event reads the socket: the mailbox pumps it.
    while True:
        got = session.mailbox.get(2)
        assert got is not None, "the answer's completion never came"
        if got.get("Event-Name") == "CHANNEL_EXECUTE_COMPLETE":
            break
    assert sock.send("sendmsg\ncall-command: execute\nexecute-app-name: play_and_get_digits") == "+OK"
    assert sock.send("api uuid_getvar x y") != ""  # an api/response body, in order with the replies
    assert sock.send("sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING") == "+OK"
    # The last event read, we close: FreeSWITCH would keep the lingering session
    # (and its channel) until we do.
    assert sock.drain(channel["Unique-ID"], 5) == "complete"
    sock.close()
    assert sock.closed and len(lost) == 1
    assert seen[0] == "CHANNEL_PARK" and seen.count("DTMF") == 5
    # The linger notice is noted, not passed on as a loss (the last events follow it).
    assert seen[-1] == "CHANNEL_HANGUP_COMPLETE" and sock.down_at is not None
    fs.close()


HANGUP = b"Content-Length: 58\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_HANGUP\nUnique-ID: u1\nHangup-Cause: X\n\n"
COMPLETE = (b"Content-Length: 101\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_HANGUP_COMPLETE\n"
            b"Unique-ID: u1\nHangup-Cause: NORMAL_CLEARING\nvariable_billsec: 7\n\n")


def test_the_linger_notice_before_the_last_event_does_not_cut_the_wait_for_it():
    """On the real switch the linger notice comes at the hangup, before
    CHANNEL_HANGUP_COMPLETE (fixture 12): a counted call waits for that event's
    billed seconds, and must get them, not an estimate."""
    from controller.freeswitch.events import parse

    fs, sock, _ = session([], close_at_end=False)
    call = CallSession("u1", sock, None, pump=sock.pump)
    sock._on_event = lambda h: (lambda e: e is not None and call.deliver(e))(parse(h))
    fs.fs.sendall(HANGUP + LINGER_NOTICE + COMPLETE)
    end = call.wait_hangup_complete(2.0)
    assert end is not None and end.billsec == 7
    fs.close()


API_FALSE = b"Content-Type: api/response\nContent-Length: 5\n\nfalse"
LINGER_NOTICE = (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: u1\n"
                 b"Content-Disposition: linger\nChannel-Name: sofia/internal/1001@acme\nLinger-Time: 10\n"
                 b"Content-Length: 0\n\n")


def test_a_silent_session_is_asked_about_and_let_go_when_its_channel_is_gone():
    """A node that never closes and sends nothing more: after `check_every` seconds
    of silence the session asks FreeSWITCH; a channel it no longer has is let go."""
    fs, sock, _ = session([API_FALSE], close_at_end=False)
    started = gevent.get_hub().loop.now()
    assert sock.drain("u1", bound=30, check_every=0.2) == "channel gone"
    assert fs.commands == ["api uuid_exists u1"]
    assert gevent.get_hub().loop.now() - started < 2
    fs.close()


def test_a_node_that_stops_answering_does_not_hold_the_session():
    fs, sock, _ = session([], timeout=0.2, reply=False, close_at_end=False)
    assert sock.drain("u1", bound=30, check_every=0.2) == "channel gone"
    assert sock.closed
    fs.close()


def test_after_the_linger_notice_the_last_event_is_waited_for_a_bounded_time():
    fs, sock, _ = session([], close_at_end=False)
    fs.fs.sendall(LINGER_NOTICE)
    assert sock.drain("u1", bound=30, check_every=10, after_down=0.2) == "no final event"
    assert not fs.commands  # nothing asked: the channel is known to be down
    fs.close()


def test_a_long_call_is_followed_within_the_overall_bound_only():
    fs, sock, _ = session([], close_at_end=False)
    assert sock.drain("u1", bound=0.3, check_every=10) == "bound"
    fs.close()


def test_no_reply_in_time_drops_the_session():
    fs, sock, lost = session(timeout=0.2, reply=False)
    with pytest.raises(NotConnected, match="no reply to 'connect' in time"):
        sock.send("connect")
    assert sock.closed and lost == ["command reply timed out"]
    with pytest.raises(NotConnected):
        sock.send("myevents")
    fs.close()


def test_a_corrupt_frame_ends_the_session_not_the_process():
    fs, sock, lost = session(close_at_end=False)
    assert sock.send("connect") == "+OK"
    fs.fs.sendall(b"Content-Length: 12x\nContent-Type: text/event-plain\n\n")
    assert sock.pump(1) is False
    assert lost == ["bad frame"]
    fs.close()


def test_freeswitch_going_away_reaches_a_waiting_call():
    fs, sock, _ = session(close_at_end=False)
    call = CallSession("u1", sock, None, pump=sock.pump)
    sock._on_lost = lambda reason: call.deliver(("lost", reason))
    assert sock.send("connect") == "+OK"
    gevent.spawn_later(0.05, fs.fs.close)
    assert call.mailbox.get(2) == ("lost", "socket closed")
    assert call.mailbox.get(0.05) is None  # closed: waits as if nothing came, no spin
    fs.close()


def test_an_ended_call_is_freed_at_once_not_left_to_the_garbage_collector():
    """The session's handlers hold the call's session (as Controller._socket_call
    wires them), whose mailbox reads through this session: a cycle, unless the
    session forgets its handlers when it ends."""
    import gc
    import weakref

    def wire(sock: SocketSession) -> weakref.ref:
        call = CallSession("u1", sock, None, pump=sock.pump)
        sock._on_lost = lambda reason: call.deliver(("lost", reason))
        sock._on_event = lambda headers: call.deliver(headers)
        return weakref.ref(call)

    fs, sock, _ = session(close_at_end=False)
    alive = wire(sock)
    assert sock.send("connect") == "+OK"
    gc.disable()
    try:
        sock.close()
        del sock
        assert alive() is None  # freed as its last reference went, no collection needed
    finally:
        gc.enable()
        fs.close()


def test_a_reply_nobody_asked_for_does_not_shift_the_next_one(caplog):
    fs, sock, _ = session([b"Content-Type: command/reply\nReply-Text: +OK second\n\n"], close_at_end=False)
    fs.fs.sendall(b"Content-Type: command/reply\nReply-Text: +OK stray\n\n")
    sock.pump(0.2)
    assert "no command waiting" in caplog.text
    assert sock.send("linger") == "+OK second"
    fs.close()


def test_socket_mode_leaves_freeswitch_nothing_once_its_calls_are_over(redis_url):
    """Issue 29: with plain `linger` FreeSWITCH keeps every session, and its
    channel, until the client closes; the controller waited for FreeSWITCH to
    close (a day). The simulator lingers as FreeSWITCH does: one second after
    the last call, no channel and no session is left on either side."""
    import time

    from controller.simulator import Caller
    from tests.rig import PINS, Rig, wait

    rig = Rig(redis_url, mode="socket")
    try:
        rig.provision()
        ctl = rig.controller()
        calls = [rig.call("0140000000", caller_id="1002"), rig.call("0899123456", caller_id="1002"),
                 rig.call("0140000000", caller_id="1003", caller=Caller(keys=[PINS["1003"][1]])),
                 rig.call("0140000000", caller_id="1004", caller=Caller(hangup_at="prompt", hangup_delay=0.1))]
        rig.finish(*calls)
        last = time.monotonic()
        wait(lambda: rig.sim.api("show channels count").strip() == "0 total.", timeout=1.0,
             message="no channel left in FreeSWITCH")
        wait(lambda: not ctl.dispatcher.calls and not [c for c in rig.sim.connections if c.channel is not None],
             timeout=1.0 - (time.monotonic() - last) + 0.5, message="no session left on either side")
    finally:
        rig.close()
