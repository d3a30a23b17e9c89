"""Throwaway highly available Redis setups on loopback, for the tests: a
3-master, 3-replica Redis Cluster and a master, a replica and three Sentinels.
Real servers (Debian's redis-server and redis-sentinel), each in its own
temporary directory, torn down after."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from controller.testing import RedisServer, free_port

# Short so that a killed master is replaced within a few seconds of a test:
# production keeps the defaults (15 s for Cluster, 30 s for Sentinel).
NODE_TIMEOUT_MS = 1000


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
            if found:
                return found
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _bus_port_pair() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too.
    Both below the kernel's ephemeral range (32768 and up on Linux): a port
    found free there could be taken by any outgoing connection before the
    server binds it ("redis-server did not start", once in a CI run)."""
    for _ in range(200):
        port = random.randint(20000, 22700)
        if _free(port) and _free(port + 10000):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


class ClusterSet:
    """Six cluster-mode servers joined by `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3, replicas: int = 1):
        self.servers = [RedisServer(durable=False, extra=(
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS)))
            for _ in range(masters * (replicas + 1))]
        for server in self.servers:
            server.port = _bus_port_pair()
        self.replicas = replicas

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers[:3])

    def start(self) -> "ClusterSet":
        for s in self.servers:
            for attempt in range(3):
                try:
                    s.start()
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
                    s.stop()
                    s.port = _bus_port_pair()  # taken meanwhile by someone else: another pair
                    stale = os.path.join(s.dir, "nodes.conf")  # written for the old port, if at all
                    if os.path.exists(stale):
                        os.remove(stale)
        subprocess.run([shutil.which("redis-cli"), "--cluster", "create",
                        *[f"127.0.0.1:{s.port}" for s in self.servers],
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        self.wait_ok()
        return self

    def client(self, s: RedisServer) -> redis.Redis:
        return redis.Redis(port=s.port, socket_timeout=1, decode_responses=True)

    def wait_ok(self, timeout: float = 30) -> None:
        live = [s for s in self.servers if s.proc.poll() is None]
        _wait(lambda: all(self.client(s).cluster("info")["cluster_state"] == "ok" for s in live)
              and all(self.client(s).info("replication")["role"] == "master"
                      or self.client(s).info("replication").get("master_link_status") == "up"
                      for s in live), timeout, "the cluster to be ok")

    def master_of(self, key: str) -> RedisServer:
        """The live server that holds `key`'s slot now."""
        live = [s for s in self.servers if s.proc.poll() is None]
        slot = self.client(live[0]).cluster("keyslot", key)
        for start, end, primary, *_ in self.client(live[0]).execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return next(s for s in live if s.port == int(primary[1]))
        raise RuntimeError(f"no live master holds slot {slot}")

    def stop(self) -> None:
        for s in self.servers:
            s.cleanup()


class SentinelSet:
    """A master, one replica and three Sentinels watching them."""

    service = "mymaster"

    def __init__(self, sentinels: int = 3):
        self.master = RedisServer(durable=False)
        self.replica = RedisServer(durable=False)
        self.ports = [free_port() for _ in range(sentinels)]
        self.dirs = [tempfile.mkdtemp(prefix="tollgate-sentinel-") for _ in range(sentinels)]
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + f"/{self.service}/0"

    def start(self) -> "SentinelSet":
        self.master.start()
        self.replica.extra = ("--replicaof", "127.0.0.1", str(self.master.port))
        self.replica.start()
        for port, d in zip(self.ports, self.dirs):
            conf = Path(d) / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {NODE_TIMEOUT_MS}\n"
                f"sentinel failover-timeout {self.service} 5000\n")
            self.procs.append(subprocess.Popen([shutil.which("redis-sentinel") or shutil.which("redis-server"),
                                                str(conf), *([] if shutil.which("redis-sentinel") else ["--sentinel"])],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: all(self._sentinel(p).sentinel_master(self.service)["num-other-sentinels"] == 2
                          and self._sentinel(p).sentinel_master(self.service)["num-slaves"] == 1
                          for p in self.ports), 30, "the sentinels to see each other and the replica")
        return self

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, decode_responses=True)

    def master_port(self) -> int:
        return int(self._sentinel(self.ports[0]).sentinel_get_master_addr_by_name(self.service)[1])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        self.master.cleanup()
        self.replica.cleanup()
