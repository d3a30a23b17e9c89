"""Helpers shipped for tests and the benchmark: a throwaway redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server process of our own, in a temporary directory."""

    def __init__(self, durable: bool = True, extra: tuple[str, ...] = ()):
        self.durable = durable
        self.extra = extra  # more redis-server options (cluster mode, replicaof)
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="tollgate-redis-")
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             # Durable like a production Redis, so "killed and restarted" keeps the data
             # (the benchmark turns it off: it measures Tollgate, not the disk).
             "--save", "", "--appendonly", "yes" if self.durable else "no", "--appendfsync", "always",
             # No automatic AOF rewrite in the middle of a test: with fsync on every
             # write, a rewrite's disk I/O can stall Redis past a client's 0.5 s
             # timeout. The tests compact the file between tests (tests/conftest.py).
             "--auto-aof-rewrite-percentage", "0",
             "--daemonize", "no", "--loglevel", "warning", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, only what the append-only file already has."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


