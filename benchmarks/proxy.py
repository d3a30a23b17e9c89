"""A TCP proxy in front of Redis that counts round trips (each time a client
writes after having read, or first writes, is one more) and bytes each way."""

from __future__ import annotations

import gevent
from gevent.server import StreamServer
from gevent.socket import IPPROTO_TCP, TCP_NODELAY, create_connection


class CountingProxy:
    def __init__(self, target_port: int):
        self.target_port = target_port
        self.round_trips = 0
        self.bytes_up = 0  # client -> Redis
        self.bytes_down = 0  # Redis -> client
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    def start(self) -> int:
        self.server.start()
        return self.server.server_port

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def _handle(self, client, _addr) -> None:
        upstream = create_connection(("127.0.0.1", self.target_port))
        for sock in (client, upstream):  # a proxy must not add Nagle's delays of its own
            sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        state = {"waiting": False}  # True while a request is out and its reply not yet read

        def up():
            try:
                while data := client.recv(65536):
                    if not state["waiting"]:
                        self.round_trips += 1
                        state["waiting"] = True
                    self.bytes_up += len(data)
                    upstream.sendall(data)
            except OSError:
                pass  # either side went away: the connection is over
            upstream.close()

        def down():
            try:
                while data := upstream.recv(65536):
                    state["waiting"] = False
                    self.bytes_down += len(data)
                    client.sendall(data)
            except OSError:
                pass
            client.close()

        gevent.joinall([gevent.spawn(up), gevent.spawn(down)])
