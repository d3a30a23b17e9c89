"""A FreeSWITCH stand-in that speaks the Event Socket protocol over real TCP.

It reproduces what `shared/fixtures/esl/` captured from FreeSWITCH 1.10:
URL-encoded header values, Content-Length bodies, command/reply ordering,
`Application-UUID` on CHANNEL_EXECUTE_COMPLETE, disconnect notices, filters,
the `socket` application's handshake, and the behaviours noted there (a parked
call stays up after its bridge ends unless hangup_after_bridge is set; a
failed bridge hangs an unanswered call up; every DTMF digit lands in
`digits_dialed` unless `digits_dialed_filter` is set).
"""

from controller.simulator.callers import Caller
from controller.simulator.server import Simulator

__all__ = ["Caller", "Simulator"]
