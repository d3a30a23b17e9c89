"""Whether anyone else runs in this turn of the event loop.

A call that writes (to Redis, to the Event Socket) yields once first so that
the calls of the same turn share its write: under load they come together,
one read of the Event Socket bringing several parks. Alone, that yield was
one more pass of the loop (a poll of epoll, two greenlet switches) before
each of a call's round trips, for nobody.
"""

from __future__ import annotations

import gevent


def others_due() -> bool:
    """True when another greenlet runs in this turn: one spawned or woken and
    waiting for its turn (the loop's callbacks), or a watcher whose event the
    loop has read and not yet handed on (libev's pending count). A loop that
    does not say (not libev's) answers True: the yield is then always taken."""
    loop = gevent.get_hub().loop
    callbacks = getattr(loop, "_callbacks", None)
    if callbacks is None:
        return True
    return len(callbacks) > 0 or getattr(loop, "pendingcnt", 0) > 0
