"""Every error type Tollgate raises on purpose, one docstring each.

Messages are one line, name the thing that is wrong and never contain a PIN.
"""


class TollgateError(Exception):
    """Base class: an expected failure with a one-line message for a person."""


class NotFound(TollgateError):
    """A tenant, extension, list, entry or rule that does not exist."""


class AlreadyExists(TollgateError):
    """Creating something that is already there."""


class InvalidInput(TollgateError):
    """Operator input (flag, CSV row, setting) that fails validation."""


class CorruptValue(TollgateError):
    """A value in Redis that cannot be parsed; the message names the key and field."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"corrupt value in Redis key {key}: {problem}")
        self.key = key


class SchemaMismatch(TollgateError):
    """Redis holds data of a schema version this code does not know."""


class ConfigError(TollgateError):
    """Missing or contradictory process configuration (pepper, addresses, ...)."""


class ChannelGone(TollgateError):
    """The channel hung up (or the Event Socket dropped): the call flow unwinds."""

    def __init__(self, cause: str = "NORMAL_CLEARING"):
        super().__init__(f"channel gone ({cause})")
        self.cause = cause


class CommandFailed(TollgateError):
    """FreeSWITCH answered a command with -ERR, or did not answer in time."""


class NotConnected(CommandFailed):
    """The Event Socket is not connected (or dropped while we waited for a reply)."""
