"""The simulator process of the benchmark: FreeSWITCH stand-in plus load generator.

Reads one JSON command per line on stdin, answers one JSON line on stdout.
Latency is measured here, on the FreeSWITCH side: from the moment CHANNEL_PARK
is written to the controller's socket to the moment the bridge command arrives
(the controller's response time). The simulator keeps the real switch's clocks
(its listener sends events on a 20 ms tick, its park loop takes a queued
message on one): those are not the controller's, so they are reported apart,
as setup_ms, from the park's start to the bridge running (socket mode: from the
hand-over).
"""

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.fileobject import FileObject  # noqa: E402

from benchmarks.intervals import nearest_rank  # noqa: E402
from controller.simulator import Caller, Simulator  # noqa: E402


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)

    def p(q):
        return round(nearest_rank(v, q), 3)

    return {"n": len(v), "p50": p(0.50), "p90": p(0.90), "p99": p(0.99), "max": round(v[-1], 3)}


class Load:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.noise_greenlet = None

    def calls(self, rate: float, count: int, dialed: str, ext: str, keys: list[str], mode: str,
              socket_port: int | None, wait: str, timeout: float) -> dict:
        # FreeSWITCH has no garbage collector to pause it: neither does its
        # stand-in while it measures (the controller keeps its own, of course).
        gc.disable()
        try:
            return self._calls(rate, count, dialed, ext, keys, mode, socket_port, wait, timeout)
        finally:
            gc.enable()
            gc.collect()

    def _calls(self, rate: float, count: int, dialed: str, ext: str, keys: list[str], mode: str,
               socket_port: int | None, wait: str, timeout: float) -> dict:
        chans = []
        sent0, received0 = self.sim.bytes_sent, self.sim.bytes_received
        t0 = time.perf_counter()
        for i in range(count):
            kw = {}
            if mode == "socket":
                kw = {"mode": "socket", "socket_address": ("127.0.0.1", socket_port)}
            # A different number each call: nothing downstream gets a free ride from repetition.
            number = dialed[:-6] + f"{(i * 7919 + int(t0 * 1000)) % 1_000_000:06d}" if len(dialed) > 6 else dialed
            chans.append(self.sim.place_call(number, caller_id=ext, tenant="bench",
                                             caller=Caller(keys=list(keys), talk_seconds=0.02), **kw))
            delay = t0 + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                gevent.sleep(delay)
            elif i % 50 == 0:
                gevent.sleep(0)  # let the other greenlets breathe when behind
        placed_s = time.perf_counter() - t0
        deadline = time.perf_counter() + timeout
        if wait == "ended":
            while any(c.state != "hangup" for c in chans) and time.perf_counter() < deadline:
                gevent.sleep(0.02)
        else:  # "prompt": every call sitting in its PIN prompt
            while sum(c.application == "play_and_get_digits" for c in chans) < count and time.perf_counter() < deadline:
                gevent.sleep(0.05)
        lat = [(c.t_bridge - c.t_park) * 1000 for c in chans if c.t_bridge and c.t_park]
        setup = [(c.t_bridge_run - c.t_park_start) * 1000 for c in chans if c.t_bridge_run and c.t_park_start]
        return {"placed": count, "placed_s": round(placed_s, 3), "offered_rate": rate,
                "achieved_rate": round(count / placed_s, 1), "bridged": sum(c.bridged for c in chans),
                "bridge_commands": len(lat), "in_prompt": sum(c.application == "play_and_get_digits" for c in chans),
                "ended": sum(c.state == "hangup" for c in chans), "latency_ms": percentiles(lat),
                # What a caller waits, the switch's modelled paces included.
                "setup_ms": percentiles(setup),
                # Event Socket events the controller received per call (the cost of following calls).
                "events_per_call": round(sum(len(c.delivered) for c in chans) / max(1, count), 2),
                # Event Socket bytes per call, both ways (in socket mode, each call's own connection).
                "esl_bytes_to_controller_per_call": round((self.sim.bytes_sent - sent0) / max(1, count)),
                "esl_bytes_from_controller_per_call": round((self.sim.bytes_received - received0) / max(1, count))}

    def noise(self, events_per_second: float) -> dict:
        """Channels Tollgate does not manage, sending events it never asked for."""
        if self.noise_greenlet:
            self.noise_greenlet.kill()
            self.noise_greenlet = None
        if events_per_second <= 0:
            return {"noise": 0}
        chans = [self.sim.place_call("0140000000", caller_id="9999", managed=False) for _ in range(50)]

        def pump():
            batch = max(1, int(events_per_second / 100))
            while True:
                t = time.perf_counter()
                for i in range(batch):
                    ch = chans[i % len(chans)]
                    ch.emit("CHANNEL_EXECUTE_COMPLETE", [("Application", "playback"), ("Application-Response", "FILE PLAYED")])
                gevent.sleep(max(0.0, 0.01 - (time.perf_counter() - t)))

        self.noise_greenlet = gevent.spawn(pump)
        return {"noise": events_per_second}

    def hangup_all(self) -> dict:
        live = [c for c in self.sim.live() if c.dialplan_vars.get("tollgate_managed") == "true"]
        for c in live:
            c.hangup("NORMAL_CLEARING")
        deadline = time.perf_counter() + 30
        # Until every one has ended, not only begun to: with the switch's paces
        # their ends reach the controller in 20 ms bursts (and a static session's
        # channel reports only once the controller closed it), and a scenario
        # measured meanwhile paid for the tear-down of 5,000 dialogs (a plateau
        # of 0.4-1 s at p90 with noise, issue 32).
        while any(c.ended_at is None for c in live) and time.perf_counter() < deadline:
            gevent.sleep(0.05)
        self.sim.finished.clear()
        return {"hung_up": len(live)}


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sim = Simulator(scale=1.0, record=False).start()
    load = Load(sim)
    out = FileObject(sys.stdout, "w")
    out.write(json.dumps({"port": sim.port}) + "\n")
    out.flush()
    stdin = FileObject(sys.stdin, "r")
    for line in stdin:
        cmd = json.loads(line)
        name = cmd.pop("cmd")
        if name == "quit":
            break
        result = getattr(load, name)(**cmd)
        sim.played.clear()
        sim.bridges.clear()
        out.write(json.dumps(result) + "\n")
        out.flush()
    sim.stop()


if __name__ == "__main__":
    main()
