"""The audit spool on disk: what waits for Redis survives the controller.

Entries the audit could not write (Redis unreachable) wait in memory
(`Audit.spool`) and, with this file, on disk too: appended as JSON lines and
fsynced before the controller goes on, so a controller SIGKILLed (or a host
that loses power) while Redis is down still has them at its next start, which
writes them (`Audit.attach`). A verdict already in the stream is recognized by
its guard key and not written twice (`Audit._drain`).

The file only grows while Redis is away. Once what it holds has been written,
it is emptied (or rewritten with what still waits: a new file renamed over the
old one, so that a crash at any moment leaves one whole file). A torn last
line (killed during a write) is skipped at the next start; the entries before
it are not.

One controller per file: `<state dir>/audit-spool.<controller id>.jsonl`,
held with an exclusive lock on a lock file beside it for the life of the
process (a second controller with the same id and state directory is refused
at start: both would replay and empty one file). Entries hold what the audit
holds (numbers, names, reasons), never a PIN; the directory is private to
the user (0700), the files 0600.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re

from controller.errors import ConfigError

log = logging.getLogger("tollgate.spool")


class SpoolFile:
    def __init__(self, directory: str, controller_id: str):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", controller_id) or "default"
        self.path = os.path.join(directory, f"audit-spool.{name}.jsonl")
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._lock = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"state directory {directory}: {exc.strerror} (set --state-dir or "
                              f"TOLLGATE_STATE_DIR to a directory this user may write)") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise ConfigError(f"{self.path} is in use by another controller: give each controller its own "
                              f"--controller-id or --state-dir") from None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.entries = 0  # entries in the file (written or not)

    def read(self) -> list[tuple[str, dict[str, str]]]:
        """What the file holds: (tenant, fields) in order; unreadable lines skipped."""
        found, skipped = [], 0
        with open(self.path, "rb") as fh:
            for line in fh:
                try:
                    item = json.loads(line)
                    tenant, fields = item["tenant"], item["fields"]
                    if not isinstance(tenant, str) or not isinstance(fields, dict):
                        raise TypeError("not an entry")
                    found.append((tenant, {str(k): str(v) for k, v in fields.items()}))
                except (ValueError, KeyError, TypeError):
                    skipped += 1
        if skipped:
            log.warning("%s: %d unreadable line(s) skipped (a write cut short by a crash?)", self.path, skipped)
        self.entries = len(found) + skipped
        return found

    def append(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Add entries and wait until the disk has them (fsync)."""
        if not entries:
            return
        _write_all(self._fd, _lines(entries))
        os.fsync(self._fd)
        self.entries += len(entries)

    def replace(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Keep only `entries` (those still waiting): empty the file, or write
        them to a new one renamed over it."""
        if not entries:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        else:
            tmp = self.path + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, _lines(entries))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            _fsync_dir(os.path.dirname(self.path))
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.entries = len(entries)

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock)  # releases the lock


def _lines(entries) -> bytes:
    return b"".join(json.dumps({"tenant": t, "fields": f}, ensure_ascii=False, separators=(",", ":"))
                    .encode() + b"\n" for t, f in entries)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: str) -> None:
    """The rename itself must reach the disk, or a crash could bring the old file back."""
    fd = os.open(path or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
