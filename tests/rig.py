"""The end-to-end rig: simulator + real redis-server + real controller(s) over TCP."""

from __future__ import annotations

import logging
import time

import gevent

from controller.app import Config, Controller
from controller.simulator import Caller, Simulator
from controller.store import Store
from controller.store.audit import settled_verdicts
from controller.store.counting import rate_take
from policies.pin import hash_pin

PEPPER = b"e2e-pepper-0123456789abcdef-0123"
PINS = {"1003": ("empfang", "73915286"), "1004": ("alice", "20462913")}


def wait(predicate, timeout=8.0, message="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        gevent.sleep(0.01)


class Rig:
    def __init__(self, redis_url: str, mode: str = "inbound", scale: float = 0.01):
        self.redis_url = redis_url
        self.mode = mode
        self.socket_args = "full"  # the socket application's, as freeswitch-conf's dialplan runs it
        self.sim = Simulator(scale=scale).start()
        self.store = Store.open(redis_url, actor="test")
        self.controllers: list[Controller] = []
        self.calls = []

    # -- setup ---------------------------------------------------------------------
    def provision(self) -> None:
        """The seed documents' tenant: authorized lists for premium/international,
        IVR authentication on 1003 and 1004."""
        a = self.store.admin
        a.create_tenant("acme", {"country": "FR", "pin_feature": "on", "lockout_failures": "5"})
        for n in ("1001", "1002", "1003", "1004"):
            a.put_extension("acme", n, create=True)
        a.create_list("acme", "direction")
        a.add_entry("acme", "direction", "Élise", "Dupont", "1001")
        a.add_entry("acme", "direction", "Karl", "Weber", "1002", state="disabled")
        a.add_rule("acme", "premium-intl", "allow", classes=["premium", "international"], lists=["direction"])
        for n, (holder, pin) in PINS.items():
            a.put_extension("acme", n, pin_enabled=True)
            a.set_pin("acme", n, holder, hash_pin(pin, PEPPER))

    def controller(self, name: str = "c1", **overrides) -> Controller:
        listen_port = 0
        if self.mode == "socket":
            from tests.conftest import free_port

            listen_port = free_port()
        cfg = Config(mode=self.mode, esl_port=self.sim.port, listen=("127.0.0.1", listen_port),
                     redis_url=self.redis_url, pepper=PEPPER, controller_id=name, **overrides)
        ctl = Controller(cfg)
        ctl.start()
        self.controllers.append(ctl)
        wait(lambda: ctl.connected and (self.mode == "socket" or self.sim.inbound_clients() >= 1),
             message="controller connected")
        # Inbound mode: the ends of its counted calls come on a connection of their own.
        wait(lambda: all(f.up.is_set() for f in ctl.feeds), message="ends connection up")
        if self.mode == "socket":
            wait(lambda: ctl.server.bound_port, message="socket listener bound")
        return ctl

    # -- calls -----------------------------------------------------------------------
    def call(self, dialed: str, caller_id: str = "1001", caller: Caller | None = None, **kw):
        if self.mode == "socket" and kw.get("managed", True):
            kw.setdefault("mode", "socket")
            kw.setdefault("socket_address", ("127.0.0.1", self.controllers[0].server.bound_port))
            kw.setdefault("socket_args", self.socket_args)
        ch = self.sim.place_call(dialed, caller_id=caller_id, caller=caller, **kw)
        self.calls.append(ch)
        return ch

    def finish(self, *channels, timeout: float = 10.0):
        targets = channels or tuple(self.calls)
        # Ended and reported (CHANNEL_HANGUP_COMPLETE, the CDR): a static socket
        # session's channel reports only once its session is over.
        wait(lambda: all(c.state == "hangup" and c.ended_at is not None for c in targets), timeout, "calls to end")
        return targets[0] if len(targets) == 1 else targets

    def verdicts(self) -> list[dict]:
        return settled_verdicts(self.store.audit.read("acme", count=10_000))

    @property
    def bridge_outcome(self) -> str:
        """The audit's outcome of a bridge that connected, for a call nobody counts:
        inbound mode stops following a call once FreeSWITCH has its bridge, and so
        does a static socket session (freeswitch-conf's; it would hear of the
        bridge only when the bridge returns); an async one sees it."""
        return "bridged" if self.mode == "socket" and self.socket_args == "async full" else "bridge_sent"

    def verdict_of(self, ch) -> dict:
        # "bridging" is what socket mode records before the bridge; the outcome
        # entry that settles it follows the bridge's result.
        found = wait(lambda: [v for v in self.verdicts() if v["uuid"] == ch.uuid and v["outcome"] != "bridging"],
                     message=f"audit of {ch.uuid}")
        assert len(found) == 1, found
        return found[0]

    # -- what must hold at the end of every test -----------------------------------------
    def assert_clean(self, caplog=None, secrets=()):
        wait(lambda: not self.sim.live(), 10, f"no channel left up: {[c.uuid for c in self.sim.live()]}")
        managed = [c for c in self.sim.finished if c.dialplan_vars.get("tollgate_managed") == "true"]
        wait(lambda: len(self.verdicts()) >= len(managed), 5, "one verdict per managed call")
        by_uuid = {}
        for v in self.verdicts():
            by_uuid.setdefault(v["uuid"], []).append(v)
        assert sorted(by_uuid) == sorted(c.uuid for c in managed)
        assert all(len(v) == 1 for v in by_uuid.values()), {k: len(v) for k, v in by_uuid.items() if len(v) > 1}
        for secret in secrets:
            for ch in self.sim.finished:
                leaked = {k: v for k, v in (ch.cdr or {}).items() if secret in v}
                assert not leaked, f"PIN in channel variables of {ch.uuid}: {sorted(leaked)}"
            for v in self.store.audit.read("acme", count=10_000):
                assert secret not in str(v), "PIN in the audit stream"
            if caplog is not None:
                for record in caplog.records:
                    assert secret not in record.getMessage(), f"PIN in a log line: {record.name}"
                    assert secret not in str(record.args or ""), "PIN in log arguments"
            for key in self.store.r.scan_iter("*"):
                kind = self.store.r.type(key)
                dump = {"hash": self.store.r.hgetall, "string": self.store.r.get,
                        "set": self.store.r.smembers, "list": lambda k: self.store.r.lrange(k, 0, -1)}.get(kind)
                if dump:
                    assert secret not in str(dump(key)), f"PIN in Redis key {key}"

    def close(self):
        for ctl in self.controllers:
            ctl.shutdown(grace=1)
        self.sim.stop()


def count_calls(r, key: str, times, window: int) -> None:
    """Put calls admitted at `times` into a velocity or alert count, as the
    embedded store writes them (store.counting.rate_take)."""
    for at in times:
        for command in rate_take(key, r.hgetall(key), at, window):
            r.execute_command(*command)


def stop_processes(procs) -> None:
    """SIGTERM every controller process still running, then wait (SIGKILL after 15 s)."""
    import signal
    import subprocess

    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def decided_uuids(channels) -> set[str]:
    """The calls a controller decided and FreeSWITCH carried out: each must have its verdict."""
    return {c.uuid for c in channels if c.bridged or c.outcome == "transferred"
            or c.hangup_cause in ("OUTGOING_CALL_BARRED", "SERVICE_UNAVAILABLE")}


def quiet_logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


class RoundTrips:
    """Counts what actually goes on the wire to Redis: one send per round trip."""

    def __init__(self, monkeypatch):
        import redis

        self.sends = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def counting(conn, command, check_health=True):
            self.sends += 1
            return original(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
