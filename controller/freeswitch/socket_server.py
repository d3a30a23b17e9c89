"""Socket mode's listener: the dialplan's `socket` application connects, one
connection per call, and each connection gets a greenlet of its own.

Not gevent's StreamServer, nor greenswitch's OutboundESLServer (whose accept
loop polls every 100 ms, exits the process when it cannot bind, and builds
its own session class with greenswitch's reader). StreamServer served us
until issue 32: every call went through its pool (a Greenlet object, a
group, a semaphore, and a link run after the call ended to take it out of
the pool) and its accept loop (a second accept() that fails, as an
exception, after each one). Here a call's greenlet is a plain one
(controller.greenlets); the listener's watcher accepts until the queue is
empty. In a loop of connections that do nothing but connect and close:
114-121 us of CPU per connection with StreamServer, 96-98 here.
"""

from __future__ import annotations

import _socket
import logging
import socket
from typing import Callable

import gevent
import gevent.socket

from controller.freeswitch.esl_socket import SocketSession
from controller.freeswitch.framing import set_nodelay
from controller.greenlets import CallGreenlets

log = logging.getLogger("tollgate.esl")

BACKLOG = 1024  # connections FreeSWITCH may have waiting while we are at capacity
RETRY_FIRST, RETRY_MOST = 0.05, 1.0  # after accept() failed (out of file descriptors...)


class SocketServer:
    """At `max_connections` calls it stops accepting: FreeSWITCH's connections
    wait in the listen queue, and are taken as calls end. `stop()` closes the
    listener, lets the calls in progress end for `timeout` seconds, and then
    kills what is left."""

    def __init__(self, host: str, port: int, on_session: Callable[[SocketSession], None],
                 max_connections: int = 20000, timeout: float = 5.0):
        host = host.strip("[]")  # "[::1]" as written in HOST:PORT
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.address = (host, port)
        self.on_session = on_session
        self.timeout = timeout
        self.max_connections = max_connections
        self.running = CallGreenlets(log, on_end=self._resume)  # one call ending makes room
        self._listener: _socket.socket | None = None  # the C socket: accepted without a wrapper
        self._watcher = None
        self._retry = RETRY_FIRST

    @property
    def bound_port(self) -> int | None:
        return self._listener.getsockname()[1] if self._listener is not None else None

    def serve(self) -> None:
        listener = _socket.socket(self.family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(self.address)
        except OSError:
            listener.close()
            raise
        listener.listen(BACKLOG)
        listener.setblocking(False)
        self._listener = listener
        self._watcher = gevent.get_hub().loop.io(listener.fileno(), 1)
        self._watcher.start(self._accept_ready)

    def _accept_ready(self) -> None:
        """Runs in the event loop, as the listener's watcher: never blocks."""
        listener = self._listener
        while listener is not None and len(self.running) < self.max_connections:
            try:
                fd, _address = listener._accept()
            except BlockingIOError:
                self._retry = RETRY_FIRST
                return
            except OSError as exc:
                # Out of file descriptors, or the like: keep the listener, try
                # again a little later rather than spin on it.
                log.error("cannot accept a socket session (%s): retrying in %.2fs", exc, self._retry)
                self._watcher.stop()
                gevent.get_hub().loop.timer(self._retry).start(self._resume)
                self._retry = min(self._retry * 2, RETRY_MOST)
                return
            sock = gevent.socket.socket(self.family, socket.SOCK_STREAM, 0, fileno=fd)
            self.running.spawn("socket session", self._serve, sock)
        if listener is not None:
            self._watcher.stop()  # at capacity: the next to end starts it again

    def _resume(self) -> None:
        if self._listener is not None and not self._watcher.active:
            self._watcher.start(self._accept_ready)

    def _serve(self, sock) -> None:
        set_nodelay(sock)
        try:
            self.on_session(SocketSession(sock, self.timeout))
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def stop(self, timeout: float = 2.0) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if not self.running.join(timeout):
            log.warning("%d socket session(s) still running: ending them", len(self.running))
            self.running.kill(1.0)
