"""PIN hashing and verification (SPEC §4).

A stored PIN is `pbkdf2_sha256$<iterations>$<pepper id>$<salt>$<digest>`:
PBKDF2-HMAC-SHA256 over pepper + PIN with a per-PIN random salt. The pepper
never goes to Redis (it comes from the environment or a file), so a copy of
Redis alone does not allow brute-forcing the small PIN space offline. The
pepper id (a short fingerprint) says which pepper a hash needs, so a pepper
can be rotated and a mismatch is reported instead of silently failing.

No function here ever puts a PIN in an exception message or a return value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Mapping

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 60_000
MIN_ITERATIONS = 1_000


class PinFormatError(ValueError):
    """A PIN that does not meet the format rules; the message never holds the PIN."""


def pepper_id(pepper: bytes) -> str:
    return hashlib.sha256(b"tollgate-pepper-id:" + pepper).hexdigest()[:8]


def validate_pin(pin: str, min_length: int = 4, max_length: int = 12) -> None:
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        raise PinFormatError("a PIN is made of digits only")
    if not min_length <= len(pin) <= max_length:
        raise PinFormatError(f"a PIN has {min_length} to {max_length} digits")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(pin: str, pepper: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", pepper + pin.encode("ascii"), salt, iterations)


def hash_pin(pin: str, pepper: bytes, *, iterations: int = DEFAULT_ITERATIONS,
             min_length: int = 4, max_length: int = 12) -> str:
    validate_pin(pin, min_length, max_length)
    if not pepper:
        raise ValueError("no PIN pepper configured")
    salt = os.urandom(16)
    digest = _derive(pin, pepper, salt, iterations)
    return f"{ALGORITHM}${iterations}${pepper_id(pepper)}${_b64(salt)}${_b64(digest)}"


class StoredHashError(ValueError):
    """A stored PIN hash that cannot be used (corrupt, unknown algorithm, other pepper)."""


def _parse(stored: str) -> tuple[int, str, bytes, bytes]:
    parts = stored.split("$") if isinstance(stored, str) else []
    if len(parts) != 5 or parts[0] != ALGORITHM:
        raise StoredHashError("stored PIN hash has an unknown format")
    try:
        iterations = int(parts[1])
        salt = base64.b64decode(parts[3], validate=True)
        digest = base64.b64decode(parts[4], validate=True)
    except (ValueError, TypeError):
        raise StoredHashError("stored PIN hash is corrupt") from None
    if iterations < MIN_ITERATIONS or len(digest) != 32 or len(salt) < 8:
        raise StoredHashError("stored PIN hash is corrupt")
    return iterations, parts[2], salt, digest


def verify_pin(pin: str, stored: str, pepper: bytes) -> bool:
    """Constant-time comparison of one PIN against one stored hash."""
    iterations, pid, salt, digest = _parse(stored)
    if pid != pepper_id(pepper):
        raise StoredHashError("stored PIN hash was made with another pepper")
    if not isinstance(pin, str) or not pin.isascii():
        pin = ""
    return hmac.compare_digest(_derive(pin, pepper, salt, iterations), digest)


def match_holder(pin: str, pins: Mapping[str, str], pepper: bytes) -> tuple[str | None, list[str]]:
    """Which holder's PIN this is, checking every hash so timing does not tell.

    Returns (holder or None, problems), where problems lists holders whose stored
    hash is unusable (reported by the caller, never fatal: fail closed).
    """
    found = None
    problems = []
    for holder in sorted(pins):
        try:
            ok = verify_pin(pin, pins[holder], pepper)
        except StoredHashError as exc:
            problems.append(f"{holder}: {exc}")
            continue
        if ok and found is None:
            found = holder
    return found, problems
