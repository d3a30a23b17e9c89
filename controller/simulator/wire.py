"""Event Socket framing, server side, as FreeSWITCH writes it."""

from __future__ import annotations

import re

# switch_url_encode's unsafe set (mod_event_socket encodes header values with it).
_UNSAFE = frozenset('\r\n "#%&+:;<=>?@[\\]^`{|}')


_ESCAPE = {ch: f"%{ord(ch):02X}" for ch in _UNSAFE}
_FIND_UNSAFE = re.compile("[" + re.escape("".join(sorted(_UNSAFE))) + "]")


def fs_encode(value: str) -> str:
    if value.isascii():
        # This runs for every header of every event, and most values need no
        # escaping: one C-speed scan decides (str.translate to multi-character
        # replacements would look every character up in a dict).
        if _FIND_UNSAFE.search(value) is None:
            return value
        return _FIND_UNSAFE.sub(lambda m: _ESCAPE[m.group()], value)
    out = []
    for ch in value:
        if ch.isascii():
            out.append(_ESCAPE.get(ch, ch))
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


_LINES: dict[tuple[str, str], str] = {}  # (name, value) -> its encoded line
_LINES_MAX = 100_000


def event_plain(headers) -> bytes:
    """A `text/event-plain` frame: header block, then a body of encoded headers."""
    # Most headers of most events repeat (the channel's own, its variables, the
    # switch's): each distinct line is encoded once. Bounded: cleared when full.
    lines = _LINES
    parts = []
    for pair in headers:
        line = lines.get(pair)
        if line is None:
            if len(lines) >= _LINES_MAX:
                lines.clear()
            line = lines[pair] = f"{pair[0]}: {fs_encode(pair[1])}\n"
        parts.append(line)
    parts.append("\n")
    body = "".join(parts)
    raw = body.encode("utf-8")
    return b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(raw) + raw


def command_reply(text: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"{k}: {v}" for k, v in (extra or [])]
    lines += ["Content-Type: command/reply", f"Reply-Text: {text}"]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def api_response(body: str) -> bytes:
    raw = body.encode("utf-8")
    return b"Content-Type: api/response\nContent-Length: %d\n\n" % len(raw) + raw


def auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def disconnect_notice(text: str, session_uuid: str | None = None) -> bytes:
    """mod_event_socket's send_disconnect: a socket application's session (one
    with a channel) says which, and that this is the disconnect (not a linger)."""
    raw = text.encode("utf-8")
    if session_uuid:
        return (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: %s\n"
                b"Content-Disposition: disconnect\nContent-Length: %d\n\n" % (session_uuid.encode(), len(raw)) + raw)
    return b"Content-Type: text/disconnect-notice\nContent-Length: %d\n\n" % len(raw) + raw


def linger_notice(uuid: str, channel_name: str, linger_time: int = -1) -> bytes:
    return ("Content-Type: text/disconnect-notice\n"
            f"Controlled-Session-UUID: {uuid}\n"
            "Content-Disposition: linger\n"
            f"Channel-Name: {channel_name}\n"
            f"Linger-Time: {linger_time}\n"
            "Content-Length: 0\n\n").encode("utf-8")


class Command(tuple):
    """A client's command, (first line, headers, body), and the size of its
    header block as sent (its lines and the blank line that ends it): what
    mod_event_socket reads one byte at a time (Connection.take)."""

    header_bytes = 0


class CommandReader:
    """Reads client commands: a first line, optional `Name: value` lines, a blank line,
    and a body when a Content-Length header says so (sendmsg may carry one)."""

    def __init__(self, rfile):
        self.rfile = rfile

    def read(self) -> "Command | None":
        lines = []
        size = 0
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return None
            size += len(raw)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "":
                if lines:
                    break
                continue
            lines.append(line)
        headers = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip()
        body = ""
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > 0:
            body = self.rfile.read(int(length)).decode("utf-8", "replace")
        cmd = Command((lines[0].strip(), headers, body))
        cmd.header_bytes = size
        return cmd
