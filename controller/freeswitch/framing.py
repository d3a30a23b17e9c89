"""Event Socket framing, client side: bytes in, (headers, body) frames out.

Replaces greenswitch's line-by-line reader (see esl.py for why). Pure: no
sockets, no gevent, so it is tested on the captured streams split at every
awkward offset and fuzzed with mutations.

A frame is a header block ending with an empty line, then `Content-Length`
bytes of body when that header is present. The body of `text/event-plain` is
itself a header block with URL-encoded values (and maybe a body of its own,
e.g. BACKGROUND_JOB). Values are kept as sent: never stripped or split.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Iterator
from urllib.parse import unquote

MAX_BODY = 16 * 1024 * 1024  # FreeSWITCH never sends more; a bigger length is corruption
MAX_HEADER_BLOCK = 256 * 1024


# %XX -> character for ASCII, both cases of hex digit.
_ASCII_ESCAPES = {f"{i:02X}": chr(i) for i in range(128)} | {f"{i:02x}": chr(i) for i in range(128)}


def unquote_value(value: str) -> str:
    """urllib's unquote, faster for what FreeSWITCH sends most: ASCII escapes
    (';', '/', ':', '@', ' '). A UTF-8 escape or a stray '%' goes to urllib's
    (the same result either way: tests/test_framing.py compares them)."""
    if "%" not in value:
        return value
    parts = value.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        char = _ASCII_ESCAPES.get(part[:2])
        if char is None:
            return unquote(value)
        out.append(char)
        out.append(part[2:])
    return "".join(out)


class FramingError(ValueError):
    """The stream cannot be parsed any further; the connection must be dropped."""


def parse_header_block(text: str, decode: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":"):  # "Name:" with an empty value
                headers[line[:-1]] = ""
            continue  # not a header line: skipped, the rest is still usable
        if decode and "%" in value:
            value = unquote_value(value)
        headers[key] = value
    return headers


class LazyHeaders(Mapping):
    """An event's headers, decoded only when asked for.

    An event has ~90 headers and the call flow reads at most eight, and most
    events (those of calls nobody here handles any more) are only asked for
    their Unique-ID: finding `\nName: ` in the text is far cheaper than
    decoding everything. Iterating decodes the whole block once.
    """

    __slots__ = ("_text", "_all", "_raw")

    # Above this size a block is indexed once (split into lines, values left
    # encoded) rather than searched per lookup: socket mode's connect reply
    # carries the whole channel, some 300 headers, and the call reads twenty.
    INDEX_FROM = 8192

    def __init__(self, block: str):
        self._text = "\n" + block
        self._all: dict[str, str] | None = None
        self._raw: dict[str, str] | None = None

    def get(self, key: str, default=None):
        if self._all is not None:
            return self._all.get(key, default)
        if len(self._text) > self.INDEX_FROM:
            if self._raw is None:
                self._raw = parse_header_block(self._text[1:], decode=False)
            value = self._raw.get(key, _MISSING)
            if value is _MISSING:
                return default
            return unquote_value(value) if "%" in value else value
        # One pass over the text for a header that is not there (most of those a
        # call asks for): "Name:" then a space (a value) or a line break (empty).
        text, needle = self._text, "\n" + key + ":"
        start = text.find(needle)
        while start >= 0:
            start += len(needle)
            after = text[start:start + 1]
            if after == " ":
                end = text.find("\n", start + 1)
                value = text[start + 1:end] if end >= 0 else text[start + 1:]
                return unquote_value(value) if "%" in value else value
            if after in ("\n", ""):
                return ""
            start = text.find(needle, start)
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def _decoded(self) -> dict[str, str]:
        if self._all is None:
            self._all = parse_header_block(self._text[1:], decode=True)
        return self._all

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __contains__(self, key) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __repr__(self) -> str:
        return f"LazyHeaders(Event-Name={self.get('Event-Name')!r}, Unique-ID={self.get('Unique-ID')!r})"


_MISSING = object()


def parse_event_body(body: bytes) -> Mapping[str, str]:
    text = body.decode("utf-8", "replace")
    block, sep, rest = text.partition("\n\n")
    headers = LazyHeaders(block)
    if sep and rest and "Content-Length" in headers:
        full = dict(headers)
        full["_body"] = rest
        return full
    return headers


class FrameReader:
    def __init__(self) -> None:
        self._buf = b""
        self._pending: dict[str, str] | None = None  # headers waiting for their body
        self._need = 0

    def feed(self, data: bytes) -> list[tuple[dict[str, str], bytes]]:
        # One bytes object and a moving offset: no reshuffling of the buffer
        # per frame when a read brings many events at once.
        buf = self._buf + data if self._buf else data
        pos = 0
        frames = []
        while True:
            if self._pending is None:
                end = buf.find(b"\n\n", pos)
                if end < 0:
                    if len(buf) - pos > MAX_HEADER_BLOCK:
                        raise FramingError("header block too long")
                    break
                block = buf[pos:end].decode("utf-8", "replace").lstrip("\n")
                pos = end + 2
                if not block:
                    continue
                if block.startswith("Event-Name: ") or "\nEvent-Name: " in block:
                    # Socket mode's connect reply: the whole channel (about 300
                    # URL-encoded headers) in the frame's own header block, of
                    # which the call reads some twenty: looked up, and decoded,
                    # when asked for (decode_frame).
                    headers = LazyHeaders(block)
                else:
                    headers = parse_header_block(block, decode=False)
                length = headers.get("Content-Length")
                if length is None:
                    frames.append((headers, b""))
                    continue
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise FramingError(f"bad Content-Length {length[:20]!r}")
                self._pending, self._need = headers, int(length)
            if len(buf) - pos < self._need:
                break
            frames.append((self._pending, buf[pos:pos + self._need]))
            pos += self._need
            self._pending, self._need = None, 0
        self._buf = buf[pos:]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buf)


def decode_frame(headers: dict, body: bytes) -> tuple[str, Mapping, str]:
    """A frame as (kind, headers, text); kind is event, reply, auth, disconnect,
    rejected, or "" for types never asked for (log/data, event json/xml)."""
    ctype = headers.get("Content-Type", "")
    if ctype == "text/event-plain":
        return "event", parse_event_body(body), ""
    if ctype == "command/reply":
        # Socket mode's connect reply (the channel, URL-encoded) comes from
        # FrameReader as LazyHeaders, which decode what is read.
        return "reply", headers, headers.get("Reply-Text", "")
    if ctype == "api/response":
        return "reply", headers, body.decode("utf-8", "replace")
    if ctype == "auth/request":
        return "auth", headers, ""
    if ctype == "text/disconnect-notice":
        return "disconnect", headers, body.decode("utf-8", "replace")
    if ctype == "text/rude-rejection":
        return "rejected", headers, ""
    return "", headers, ""


def set_nodelay(sock) -> None:
    # Commands are small writes answered by small writes: without this, Nagle's
    # algorithm and delayed ACKs add up to 40 ms to a round trip. FreeSWITCH
    # sets it on its side of the Event Socket; greenswitch does not on ours.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
