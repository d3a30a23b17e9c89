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

from urllib.parse import unquote

MAX_BODY = 16 * 1024 * 1024  # FreeSWITCH never sends more; a bigger length is corruption
MAX_HEADER_BLOCK = 256 * 1024


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
            value = unquote(value)
        headers[key] = value
    return headers


def parse_event_body(body: bytes) -> dict[str, str]:
    text = body.decode("utf-8", "replace")
    block, sep, rest = text.partition("\n\n")
    headers = parse_header_block(block, decode=True)
    if sep and rest and "Content-Length" in headers:
        headers["_body"] = rest
    return headers


class FrameReader:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: dict[str, str] | None = None  # headers waiting for their body
        self._need = 0

    def feed(self, data: bytes) -> list[tuple[dict[str, str], bytes]]:
        self._buf += data
        frames = []
        while True:
            if self._pending is None:
                end = self._buf.find(b"\n\n")
                if end < 0:
                    if len(self._buf) > MAX_HEADER_BLOCK:
                        raise FramingError("header block too long")
                    return frames
                block = bytes(self._buf[:end]).decode("utf-8", "replace").lstrip("\n")
                del self._buf[:end + 2]
                if not block:
                    continue
                headers = parse_header_block(block, decode=False)
                length = headers.get("Content-Length")
                if length is None:
                    frames.append((headers, b""))
                    continue
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise FramingError(f"bad Content-Length {length[:20]!r}")
                self._pending, self._need = headers, int(length)
            if len(self._buf) < self._need:
                return frames
            body = bytes(self._buf[:self._need])
            del self._buf[:self._need]
            frames.append((self._pending, body))
            self._pending, self._need = None, 0

    @property
    def buffered(self) -> int:
        return len(self._buf)
