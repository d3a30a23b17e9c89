"""The Event Socket reader on the captured FreeSWITCH streams: golden, split, mutated."""

import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from controller.freeswitch import events
from controller.freeswitch.framing import decode_frame, FrameReader, FramingError, parse_event_body, parse_header_block

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "esl"
# The shared captures when they are beside the checkout, else the copy kept here.
FIXTURES = SHARED if SHARED.is_dir() else Path(__file__).resolve().parent / "fixtures" / "esl"
STREAMS = sorted(FIXTURES.glob("*.rx"))


def frames_of(data: bytes, chunks=None):
    reader = FrameReader()
    out = []
    if chunks is None:
        out += reader.feed(data)
    else:
        i = 0
        for size in chunks:
            out += reader.feed(data[i:i + size])
            i += size
        out += reader.feed(data[i:])
    return out, reader.buffered


def typed(frames):
    out = []
    for headers, body in frames:
        if headers.get("Content-Type") == "text/event-plain":
            out.append(events.parse(parse_event_body(body)))
    return out


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.stem)
def test_split_at_every_kind_of_offset_gives_the_same_frames(path):
    data = path.read_bytes()
    whole, rest = frames_of(data)
    assert whole and rest == 0
    rng = random.Random(path.stem)
    for _ in range(20):
        chunks = [rng.choice([1, 2, 3, 7, 64, 1000, 4096]) for _ in range(len(data) // 40 + 1)]
        assert frames_of(data, chunks)[0] == whole
    assert frames_of(data, [1] * len(data))[0] == whole


def test_golden_stream_park_pin_bridge():
    data = (FIXTURES / "02-inbound-park-pin-bridge.rx").read_bytes()
    frames, _ = frames_of(data)
    kinds = [h.get("Content-Type") for h, _ in frames]
    assert kinds[0] == "auth/request" and "api/response" in kinds
    parsed = [e for e in typed(frames) if e is not None]
    park = next(e for e in parsed if isinstance(e, events.ChannelPark) and e.managed)
    # A loopback leg that nobody authenticated: its caller ID (1001) names no extension.
    assert (park.tenant, park.dialed, park.extension, park.caller_id) == ("acme", "0899123456", "", "1001")
    pagd = next(e for e in parsed if isinstance(e, events.ExecuteComplete) and e.application == "play_and_get_digits")
    assert pagd.app_uuid == "d9898954-ee39-4f5d-9437-4ca583ae46fa"  # the Event-UUID we sent
    assert pagd.read_result == "success" and pagd.digits.reveal() == "1234"
    assert "1234" not in repr(pagd) and "1234" not in str(pagd.digits)
    assert any(isinstance(e, events.Bridge) for e in parsed)


def test_values_are_kept_exactly_and_decoded():
    data = (FIXTURES / "02-inbound-park-pin-bridge.rx").read_bytes()
    bodies = [parse_event_body(b) for h, b in frames_of(data)[0] if h.get("Content-Type") == "text/event-plain"]
    datas = {b.get("Application-Data") for b in bodies}
    assert "4 8 3 5000 # tone_stream://%(300,0,440) tone_stream://%(150,0,300) tollgate_pin_input ^\\d{4,8}$ 3000" in datas
    assert "{origination_caller_id_number=33140000000}loopback/0899123456/carrier" in datas


def test_disconnect_notices_and_api_bodies():
    frames, _ = frames_of((FIXTURES / "08-inbound-freeswitch-shutdown.rx").read_bytes())
    assert frames[-1][0]["Content-Type"] == "text/disconnect-notice"
    assert frames[-1][1] == b"The system is being shut down.\n"
    frames, _ = frames_of((FIXTURES / "05-inbound-api-replies.rx").read_bytes())
    bodies = [b.decode() for h, b in frames if h.get("Content-Type") == "api/response"]
    assert bodies[:4] == ["true", "false", "true", "_undef_"]
    assert "-ERR No such channel!\n" in bodies
    frames, _ = frames_of((FIXTURES / "07-outbound-socket-session.rx").read_bytes())
    connect = frames[0][0]
    assert connect["Content-Type"] == "command/reply" and connect["Event-Name"] == "CHANNEL_DATA"
    kind, decoded, text = decode_frame(*frames[0])  # the channel's values decoded as they are read
    assert kind == "reply" and text == "+OK\n"
    assert decoded["Reply-Text"] == "+OK\n" and decoded["variable_socket_host"] == "127.0.0.1"
    assert events.channel_data(decoded).uuid == "d0260827-7bda-4b64-8775-90866c1edec7"


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.choice(["flip", "delete", "insert", "truncate", "dup", "length"])
        if not b:
            break
        i = rng.randrange(len(b))
        if op == "flip":
            b[i] = rng.randrange(256)
        elif op == "delete":
            del b[i:i + rng.randint(1, 50)]
        elif op == "insert":
            b[i:i] = rng.choice([b"\n", b"\n\n", b": ", b"%", b"%zz", b"Content-Length: 999999999\n",
                                 b"Content-Length: -5\n", b"\x00\xff", "é".encode()])
        elif op == "truncate":
            del b[i:]
        elif op == "dup":
            b[i:i] = b[max(0, i - 200):i]
        else:
            b[i:i] = b"Content-Length: " + str(rng.randint(0, 10**8)).encode() + b"\n"
    return bytes(b)


def test_fuzz_mutated_captures_never_break_the_reader():
    """Bounded run: every mutation parses, or fails with FramingError, nothing else."""
    rng = random.Random(20261121)
    corpus = [p.read_bytes() for p in STREAMS]
    outcomes = {"parsed": 0, "framing_error": 0, "malformed_event": 0}
    for _ in range(600):
        data = mutate(rng.choice(corpus), rng)
        try:
            frames, _ = frames_of(data, [rng.choice([1, 13, 512, 8192]) for _ in range(50)])
        except FramingError:
            outcomes["framing_error"] += 1
            continue
        outcomes["parsed"] += 1
        for headers, body in frames:
            if headers.get("Content-Type") == "text/event-plain":
                try:
                    events.parse(parse_event_body(body))
                except events.MalformedEvent:
                    outcomes["malformed_event"] += 1
    assert outcomes["parsed"] > 100 and outcomes["framing_error"] > 0


HEADER_NAMES = st.sampled_from(["Event-Name", "Unique-ID", "Content-Type", "variable_tollgate_managed",
                                "variable_tollgate_tenant", "variable_tollgate_dialed", "Application",
                                "Application-UUID", "Hangup-Cause", "variable_read_result",
                                "variable_tollgate_pin_input", "Answer-State", "Caller-Caller-ID-Number"])
EVENT_NAMES = st.sampled_from(["CHANNEL_PARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP", "CHANNEL_BRIDGE",
                               "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE", "DTMF", "HEARTBEAT", ""])


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.one_of(HEADER_NAMES, st.text(max_size=20)), st.text(max_size=60), max_size=12),
       EVENT_NAMES)
def test_event_parser_takes_any_headers(headers, name):
    headers = {**headers, "Event-Name": name} if name else headers
    try:
        ev = events.parse(headers)
    except events.MalformedEvent as exc:
        assert "pin" not in str(exc).lower()
        return
    assert ev is None or isinstance(ev, events.Event)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_frame_reader_takes_any_bytes(data):
    try:
        frames_of(data, [7] * 300)
    except FramingError:
        pass


def test_a_real_unauthenticated_sip_call_names_no_extension():
    """Captured from FreeSWITCH 1.10 (SIPp, no digest auth): the From user is
    whatever the caller wrote ("sipp"); no sip_authorized, no user_name. The
    park must carry no extension, whatever the caller ID says."""
    data = (FIXTURES / "06-inbound-sip-park.rx").read_bytes()
    frames, _ = frames_of(data)
    bodies = [parse_event_body(b) for h, b in frames if h.get("Content-Type") == "text/event-plain"]
    marked = [h for h in bodies if h.get("variable_tollgate_managed") == "true"]
    assert marked
    for headers in marked:  # the channel as a recovery scan would read it
        channel = events.channel_data(headers)
        assert channel.extension == "" and channel.caller_id == "sipp"
        assert headers.get("variable_sip_from_user") == "sipp" and "variable_sip_authorized" not in headers


def test_extension_comes_from_what_freeswitch_authenticated():
    base = {"Event-Name": "CHANNEL_PARK", "Unique-ID": "u1", "variable_tollgate_managed": "true",
            "Caller-Caller-ID-Number": "+33612345678", "variable_sip_from_user": "1003"}
    assert events.parse(base).extension == ""
    # sofia's digest authentication: sip_authorized and the directory user
    assert events.parse({**base, "variable_sip_authorized": "true", "variable_user_name": "1005"}).extension == "1005"
    # a user_name without sip_authorized is not sofia's word for it
    assert events.parse({**base, "variable_user_name": "1005"}).extension == ""
    # the dialplan's tollgate_extension (set from ${user_name}) wins
    assert events.parse({**base, "variable_tollgate_extension": "1004", "variable_sip_authorized": "true",
                         "variable_user_name": "1004"}).extension == "1004"
    assert events.parse({**base, "variable_tollgate_source": "trunk1"}).source == "trunk1"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=6), st.sampled_from(["%3A", "%3b", "%2F", "%40", "%25", "%C3%A9", "%E2%82%AC",
                                                                  "%", "%4", "%zz", "%C3", "%FF", "%7E", "%0A"])),
                max_size=12))
def test_the_fast_unquote_is_urllibs(parts):
    from urllib.parse import unquote

    from controller.freeswitch.framing import unquote_value

    value = "".join(parts)
    assert unquote_value(value) == unquote(value)


def test_a_big_block_is_indexed_once_and_reads_the_same():
    """Socket mode's connect reply carries the whole channel (some 300 headers,
    20 KB on the real switch): LazyHeaders indexes such a block once instead of
    searching it per lookup; every value, present, empty or absent, reads as a
    full decode gives it."""
    from controller.freeswitch.framing import LazyHeaders

    lines = [f"variable_x_{i}: v%20{i}%3A%40host%3B{i}" for i in range(400)] + ["Empty-One:", "Plain: as is"]
    block = "Event-Name: CHANNEL_DATA\n" + "\n".join(lines)
    assert len(block) > LazyHeaders.INDEX_FROM
    lazy, full = LazyHeaders(block), parse_header_block(block, decode=True)
    for key in ("Event-Name", "variable_x_0", "variable_x_399", "Empty-One", "Plain", "Not-There"):
        assert lazy.get(key) == full.get(key), key
    assert lazy["variable_x_7"] == "v 7:@host;7" and "Not-There" not in lazy
    assert dict(lazy) == full


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "A-B", "A-Bc", "variable_a", "variable_ab", "X"]),
                          st.sampled_from(["", "v", "v%20w", "a: b", "A-B: x"])), min_size=1, max_size=8,
                unique_by=lambda kv: kv[0]))
def test_a_small_block_read_by_search_reads_as_a_full_decode(pairs):
    """Below INDEX_FROM a lookup searches the text once: a name that is the
    start of another, an empty value (also as the block's last line), a value
    that looks like a header, and an absent name all read as a full decode."""
    from controller.freeswitch.framing import LazyHeaders

    block = "\n".join(f"{k}: {v}" if v else f"{k}:" for k, v in pairs)
    lazy, full = LazyHeaders(block), parse_header_block(block, decode=True)
    for key in ("A", "A-B", "A-Bc", "variable_a", "variable_ab", "X", "B", "variable"):
        assert lazy.get(key) == full.get(key), (key, block)
