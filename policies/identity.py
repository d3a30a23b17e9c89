"""Who is placing the call, as far as the switch can vouch for it (SPEC §3).

A caller-ID number is whatever the phone writes in its SIP From header: the
first thing a fraudster sets. So a call is identified by what FreeSWITCH
authenticated (the directory user of a digest- or ACL-authenticated call, put
in `tollgate_extension` by the dialplan), and by a presented caller ID only
when the call came in through a source the operator trusts (a named gateway
or trunk, `tollgate_source` set by the dialplan, listed in the tenant's
`trusted_sources`). Anything else is an unknown caller: no list can match it
and no PIN belongs to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class IdentityKind(str, Enum):
    EXTENSION = "extension"  # the directory user FreeSWITCH authenticated
    TRUSTED_CALLER_ID = "trusted_caller_id"  # caller ID from a source the operator trusts
    NONE = "none"  # neither: an unknown caller

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Identity:
    kind: IdentityKind
    number: str = ""  # the extension, or the trusted caller ID in E.164
    source: str = ""  # the trusted source the caller ID came through

    def describe(self) -> str:
        if self.kind is IdentityKind.EXTENSION:
            return f"extension {self.number}"
        if self.kind is IdentityKind.TRUSTED_CALLER_ID:
            return f"caller ID {self.number} via trusted source {self.source!r}"
        return "an unknown caller (no authenticated extension, no trusted source)"


UNKNOWN_CALLER = Identity(IdentityKind.NONE)


def valid_extension(value: str) -> bool:
    """Extensions are digits (they end up in Redis keys); anything else is no extension."""
    return 0 < len(value) <= 16 and value.isdigit()


def resolve(extension: str, caller_id_e164: str | None, source: str, trusted_sources: frozenset[str]) -> Identity:
    """The identity a decision may use.

    extension: the authenticated directory user ('' when FreeSWITCH vouched for none).
    caller_id_e164: the presented caller ID, normalized (None when it is not a number).
    source: the gateway or trunk the dialplan says the call came through ('' for phones).
    """
    if valid_extension(extension):
        return Identity(IdentityKind.EXTENSION, extension)
    if source and source in trusted_sources and caller_id_e164:
        return Identity(IdentityKind.TRUSTED_CALLER_ID, caller_id_e164, source)
    return UNKNOWN_CALLER
