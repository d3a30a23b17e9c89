"""Tollgate on a real FreeSWITCH 1.10: `python -m benchmarks.realfs [--mode inbound|socket]
[--rates 10,20,30] [--seconds 20] [--out FILE]`.

The test bed of tests/realfs (the stock configuration, SIP phones with digest
auth, a SIP carrier, all on loopback), a real redis-server and the real
controller. At each offered rate it places allowed national calls without a
PIN (a new number each call), in alternating segments:
- path A: park (or socket) -> Tollgate -> bridge, the product;
- path B: the same call bridged straight to the carrier by the dialplan
  (a test-only extension, dialled as `d<number>`).
Setup delay runs from the originate sent to the carrier's CHANNEL_ANSWER
received. Then, at the `--interleaved` rates, one stream with both paths
alternating (A B B A ...), whose added delay no stall of the host can put on
one path only. It reports calls completed, p50/p99 setup delay,
and the CPU seconds per call of FreeSWITCH, the controller and Redis, with
A/B ratios. Socket mode ends with path A at the `--floor` rates served by
benchmarks.floor_socket instead of the controller (the CPU of handing a call
over and nothing else). Needs a FreeSWITCH 1.10 binary (PATH or TOLLGATE_FREESWITCH).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

from benchmarks.intervals import added_interval, blocks, pct  # noqa: E402
from benchmarks.run import cpu_between, cpu_reading, machine  # noqa: E402
from controller.store import Store  # noqa: E402
from controller.testing import RedisServer  # noqa: E402
from tests.realfs import bed  # noqa: E402
from tests.realfs.calls import Phones  # noqa: E402
from tests.realfs.conftest import ControllerProcess, provision  # noqa: E402
from tests.rig import stop_processes  # noqa: E402

DIRECT = """<extension name="bench-direct">
<condition field="destination_number" expression="^d0(\\d+)$">
<action application="set" data="hangup_after_bridge=true"/>
<action application="bridge" data="sofia/gateway/carrier/+33$1"/>
</condition></extension>"""


PREFIX = {"A": "", "B": "d"}  # Tollgate's path, the direct one (DIRECT)


def dialed(path: str, i: int, same: bool = False) -> str:
    """The i-th call's number: a national number of the tenant's plan (01 40 xx xx
    xx), a new one each call as callers dial (the controller's classification
    cache does not answer for it), or always the same one (--same-number: the
    reports before 2026-12-07 22:30 UTC, which that cache flattered)."""
    number = "0140000000" if same else f"0140{i * 7919 % 1_000_000:06d}"  # 7919: no repeat in 10^6
    return PREFIX[path] + number


SUSTAINED_P99_MS = 1000
POKE_EVERY = 0.002  # seconds between the observer's wake-ups of its listener (see RealBench._poke)


def setup_delay(call) -> float | None:
    """The originate sent -> the carrier's CHANNEL_ANSWER received, in ms, on our
    clock (FreeSWITCH's event stamps move in 20 ms steps without its 1 ms timer).
    Both paths carry the same event delivery, so their difference is Tollgate's."""
    for e in call.events:
        if e.get("Event-Name") == "CHANNEL_ANSWER" and e.get("Channel-Name", "").startswith("sofia/world/"):
            return (e["_received"] - call.placed) * 1000
    return None


class RealBench:
    def __init__(self, mode: str, workdir: Path, same_number: bool = False):
        self.same_number, self.placed = same_number, 0
        self.fs = bed.FreeSwitch(workdir / "fs", mode)
        (workdir / "fs").mkdir(parents=True)
        self.fs.configure()
        (self.fs.conf / "dialplan" / "default" / "10_bench_direct.xml").write_text(
            f"<include>\n{DIRECT}\n</include>\n")
        self.fs.start()
        self.redis = RedisServer(durable=False)
        self.redis.start()
        self.store = Store.open(self.redis.url, actor="bench")
        provision(self.store)
        self.ctl = ControllerProcess(self.fs, self.redis.url, workdir, "bench", "--log-level", "info").start()  # as run
        # The observer takes only what the figures need: subscribed to every
        # application's events, it made FreeSWITCH build and send (and itself
        # parse) two more events for each application Tollgate's path runs, a
        # cost of the measurement charged to path A.
        self.phones = Phones(self.fs, watched=("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"))
        self.poker = gevent.spawn(self._poke, self.phones.conn)

    @staticmethod
    def _poke(conn) -> None:
        """The observer's own pace, taken out: an inbound Event Socket listener sends
        the events queued for it when its 20 ms poll times out, or at once when its
        client writes (mod_event_socket's read_packet; a lone line break is read
        and ignored). Without this, the carrier's CHANNEL_ANSWER reached us 0-20 ms
        late, on both paths alike: noise of the size of what is measured, at p99."""
        wire = conn.wire
        while not wire.closed.is_set():
            with wire._lock:
                try:
                    wire.proto.sock.sendall(b"\n")
                except OSError:
                    return
            gevent.sleep(POKE_EVERY)

    def close(self) -> None:
        self.poker.kill()
        self.phones.close()
        self.ctl.stop()
        self.fs.stop()
        self.redis.cleanup()

    def floor(self, rates: list[float], seconds: float) -> list[dict]:
        """Socket mode: benchmarks.floor_socket in the controller's place (the
        controller stopped for good), path A at each rate, two segments each:
        the controller CPU per call of a program that only hands the call over."""
        self.ctl.stop()
        self.ctl = FloorProcess(self.fs, self.ctl.log_path.parent).start()
        out = []
        for rate in rates:
            segs = [self.segment("A", rate, seconds / 2) for _ in range(2)]
            out.append({"rate": rate, **{key: mean_of(segs, key) for key in (
                "completed_per_s", "p50_ms", "p99_ms", "freeswitch_cpu_ms_per_call", "controller_cpu_ms_per_call")}})
        return out

    def _offer(self, paths: list[str], rate: float) -> list[tuple[str, object]]:
        """One call per entry of `paths` ("A" or "B"), at `rate` calls/s, then
        until all have ended: (path, call) in the order placed."""
        t0, placed = time.monotonic(), []
        for i, path in enumerate(paths):
            due = t0 + i / rate
            if due > time.monotonic():
                gevent.sleep(due - time.monotonic())
            placed.append((path, self.phones.place("1002", dialed(path, self.placed, self.same_number))))
            self.placed += 1
        self.phones.wait_all([c for _p, c in placed], timeout=60)
        self.phones.wait_no_channels(10)
        return placed

    def interleaved(self, rate: float, seconds: float) -> dict:
        """Both paths in one stream at `rate` (A B B A ...): each call's neighbours
        are of the other path, so a stall of the host falls on both alike. Its
        added p50/p99 are Tollgate's own, where ABBA segments of 10 s each can
        catch a stall in one path's segment only. No CPU figures (shared)."""
        placed = self._offer(["ABBA"[i % 4] for i in range(int(rate * seconds))], rate)
        out: dict = {"rate": rate, "calls": len(placed)}
        stream = [(path, setup_delay(c)) for path, c in placed]
        for p in "AB":
            delays = [d for path, d in stream if path == p and d is not None]
            out[f"{p}_p50_ms"], out[f"{p}_p99_ms"] = pct(delays, 0.5), pct(delays, 0.99)
        for _p, c in placed:
            c.freeze()
        add_added(out)
        groups = blocks(stream)
        out["added_p50_ci95_ms"], out["added_p99_ci95_ms"] = added_interval(groups, 0.5), added_interval(groups, 0.99)
        out["delays_ms"] = [[path, None if d is None else round(d, 2)] for path, d in stream]  # in order
        return out

    def segment(self, path: str, rate: float, seconds: float) -> dict:
        pids = {"freeswitch": self.fs.proc.pid, "controller": self.ctl.proc.pid, "redis": self.redis.proc.pid}
        cpu0 = {k: cpu_reading(p) for k, p in pids.items()}
        n = int(rate * seconds)
        calls = [c for _p, c in self._offer([path] * n, rate)]
        cpu = {k: cpu_between(cpu0[k], cpu_reading(p)) for k, p in pids.items()}
        delays = [d for d in (setup_delay(c) for c in calls) if d is not None]
        done = sum(1 for c in calls if c.carrier_got)
        for c in calls:
            c.freeze()
        return {"path": path, "offered": n, "offered_per_s": rate, "completed": done,
                "completed_per_s": round(done / seconds, 1), "p50_ms": pct(delays, 0.5), "p99_ms": pct(delays, 0.99),
                **{f"{k}_cpu_ms_per_call": round(v * 1000 / max(done, 1), 2) for k, v in cpu.items()}}


class FloorProcess:
    """benchmarks.floor_socket where the bed's dialplan connects, routing as the
    provisioned tenant does (its gateway, the number in E.164: DIRECT's +33)."""

    def __init__(self, fs: bed.FreeSwitch, workdir: Path):
        self.fs, self.log_path = fs, workdir / "floor.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "FloorProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.floor_socket", "--listen", f"127.0.0.1:{self.fs.ports.socket}",
                 "--match", r"^0(\d+)$", "--route", r"sofia/gateway/carrier/+33\1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while "started" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the floor did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc:
            stop_processes([self.proc])


def mean_of(segments: list[dict], key: str) -> float | None:
    """The mean of a figure over segments, those that have it (None where none does)."""
    vals = [s[key] for s in segments if s[key] is not None]
    return round(statistics.mean(vals), 2) if vals else None


def add_added(row: dict) -> None:
    """Tollgate's share of the setup delay: A's p50/p99 minus B's, when both are known."""
    if row["A_p50_ms"] is not None and row["B_p50_ms"] is not None:
        row["added_p50_ms"] = round(row["A_p50_ms"] - row["B_p50_ms"], 1)
        row["added_p99_ms"] = round(row["A_p99_ms"] - row["B_p99_ms"], 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["inbound", "socket"], default="inbound")
    ap.add_argument("--rates", default="10,20,30,40")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--out", default="")
    ap.add_argument("--same-number", action="store_true",
                    help="dial one number for every call (the earlier runs' way) instead of a new one each call")
    ap.add_argument("--interleaved", default="10,20",
                    help="rates also run as one A/B-interleaved stream of 2x --seconds ('' for none)")
    ap.add_argument("--floor", default="10,20",
                    help="socket mode: rates then run with benchmarks.floor_socket in the controller's place "
                         "('' for none)")
    args = ap.parse_args()
    why = bed.why_not_runnable()
    if why:
        print(f"benchmarks.realfs: {why}", file=sys.stderr)
        return 2
    b = RealBench(args.mode, Path(tempfile.mkdtemp(prefix="tollgate-realbench-")), same_number=args.same_number)
    rows, mixed, floor = [], [], []
    try:
        b.segment("B", 5, 3)  # warm up both paths (codecs, sofia's first registrations)
        b.segment("A", 5, 3)
        for rate in (float(r) for r in args.rates.split(",")):
            for path in ("A", "B", "B", "A"):  # ABBA: drift of the host cancels out
                rows.append(b.segment(path, rate, args.seconds / 2))
                print(json.dumps(rows[-1]), flush=True)
        for rate in (float(r) for r in args.interleaved.split(",") if r):
            mixed.append(b.interleaved(rate, args.seconds * 2))
            print(json.dumps({k: v for k, v in mixed[-1].items() if k != "delays_ms"}), flush=True)
        if args.mode == "socket" and args.floor:
            floor = b.floor([float(r) for r in args.floor.split(",")], args.seconds)
            print(json.dumps(floor), flush=True)
    finally:
        b.close()
    steps = []
    for rate in sorted({r["offered_per_s"] for r in rows}):
        side = {p: [r for r in rows if r["offered_per_s"] == rate and r["path"] == p] for p in "AB"}

        step = {"rate": rate}
        for key in ("completed_per_s", "p50_ms", "p99_ms", "freeswitch_cpu_ms_per_call",
                    "controller_cpu_ms_per_call", "redis_cpu_ms_per_call"):
            step[f"A_{key}"], step[f"B_{key}"] = mean_of(side["A"], key), mean_of(side["B"], key)
        add_added(step)
        if step["B_freeswitch_cpu_ms_per_call"]:
            step["freeswitch_cpu_ratio"] = round(step["A_freeswitch_cpu_ms_per_call"]
                                                 / step["B_freeswitch_cpu_ms_per_call"], 3)
        if step["B_completed_per_s"]:
            step["throughput_ratio"] = round(step["A_completed_per_s"] / step["B_completed_per_s"], 3)
        steps.append(step)
    # The highest offered rate each path sustains: every step up to it completed
    # 99% of what was offered with a p99 setup delay under a second.
    highest = {}
    for p in "AB":
        highest[p] = 0.0
        for step in steps:
            ok = (step[f"{p}_completed_per_s"] or 0) >= 0.99 * step["rate"] and (step[f"{p}_p99_ms"] or 1e9) < SUSTAINED_P99_MS
            if not ok:
                break
            highest[p] = step["rate"]
    sustained = {"A": highest["A"], "B": highest["B"],
                 "ratio": round(highest["A"] / highest["B"], 3) if highest["B"] else None,
                 "rule": f">= 99% completed and p99 < {SUSTAINED_P99_MS} ms at every step up to it"}
    report = {"mode": args.mode, "numbers": "one for every call" if args.same_number else "a new one each call",
              "sustained": sustained, "freeswitch": bed.version(bed.find_binary()), "machine": machine(),
              "seconds_per_step": args.seconds, "steps": steps, "interleaved": mixed, "floor": floor, "segments": rows,
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out or f"benchmarks/results/realfs-{args.mode}.json")
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps(steps, indent=1))
    print("sustained:", json.dumps(sustained))
    for m in mixed:
        print(f"interleaved at {m['rate']:g}/s ({m['calls']} calls): added p50 {m.get('added_p50_ms')} ms "
              f"(95%: {m.get('added_p50_ci95_ms')}), p99 {m.get('added_p99_ms')} ms (95%: {m.get('added_p99_ci95_ms')})")
    for f in floor:
        print(f"floor at {f['rate']:g}/s: controller CPU {f['controller_cpu_ms_per_call']} ms per call, "
              f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
