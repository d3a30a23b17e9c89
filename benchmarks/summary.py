"""Print a benchmark report as the markdown table of docs/performance.md:
`python -m benchmarks.summary [benchmarks/results/latest.json]`."""

import json
import sys
from pathlib import Path


def row(name, target, value, ok=None):
    mark = "" if ok is None else (" ✅" if ok else " ❌")
    return f"| {name} | {target} | {value}{mark} |"


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/latest.json")
    r = json.loads(path.read_text())
    s, inb, sock, floor = r["summary"], r["inbound"], r["socket"], r["floor"]["fixed_200"]
    lat = inb["fixed_200"]["latency_ms"]
    print(f"Run {r['started']} on {r['machine']['cpu'] or 'unknown CPU'}, {r['machine']['cores']} cores, "
          f"Python {r['machine']['python']}: `{r['command']}`\n")
    print("| figure | target | measured |\n|---|---|---|")
    steps = ", ".join(f"{st['rate']}: {st['latency_ms'].get('p99')} ms"
                      + (f" ({st['host_steal_pct']}% stolen)" if "host_steal_pct" in st else "")
                      for st in inb["ramp"]["steps"])
    print(row("no-PIN calls/s with p99 < 10 ms (ramp, inbound)", "≥ 1,000",
              f"{s['max_no_pin_calls_per_s_p99_under_10ms']:.0f} (p99 by step: {steps})",
              s["max_no_pin_calls_per_s_p99_under_10ms"] >= 1000))
    o = s.get("offered_1000_per_s")
    if o:
        print(row("1,000 no-PIN calls/s offered for a few seconds, inbound", "≥ 1,000 decided and bridged",
                  f"{o['bridge_commands']} of {o['placed']} bridged at {o['achieved_rate']}/s, p99 {o['p99_ms']} ms, "
                  f"controller {o['controller_cores']} core"
                  + (f", {inb['offered_1000']['host_steal_pct']}% stolen" if "host_steal_pct" in inb["offered_1000"] else "")))
    print(row("park → bridge at 200 calls/s, inbound", "p99 < 5 ms",
              f"p50 {lat['p50']} / p90 {lat['p90']} / p99 {lat['p99']} / max {lat['max']} ms"
              + (f" ({inb['fixed_200']['host_steal_pct']}% stolen)" if "host_steal_pct" in inb["fixed_200"] else ""),
              lat["p99"] < 5))
    print(row("Redis round trips per no-PIN call", "≤ 2", s["redis_round_trips_per_no_pin_call"],
              s["redis_round_trips_per_no_pin_call"] <= 2))
    print(row("Redis commands per no-PIN call (incl. the script's and MULTI/EXEC)", "", s["redis_commands_per_no_pin_call"]))
    print(row("controller memory per PIN dialog, 5,000 at once, inbound", "≤ 20 KiB",
              f"{s['kib_per_pin_dialog']} KiB ({s['pin_dialogs_held']} held)", s["kib_per_pin_dialog"] <= 20))
    print(row("... with 10,000 unrelated events/s", "≤ 20 KiB", f"{inb['pin_dialogs_with_noise']['kib_per_dialog']} KiB",
              inb["pin_dialogs_with_noise"]["kib_per_dialog"] <= 20))
    print(row("controller CPU per call / floor's (plain greenswitch)", "≤ 3×",
              f"{s['cpu_ms_per_call']} ms / {s['floor_cpu_ms_per_call']} ms = {s['cpu_ratio_to_floor']}×",
              s["cpu_ratio_to_floor"] <= 3))
    ab = inb.get("controls_ab")
    if ab:
        off, on = ab["without"], ab["with"]
        worse = max(ab["p50_worse_pct"], ab["cpu_worse_pct"])
        print(row(f"every fraud control on (issue 12), park → bridge at {ab['rate']:.0f}/s, inbound: medians of "
                  f"{ab['rounds']} alternating pairs of {ab['seconds_per_run']:.0f} s runs",
                  "≤ 10% worse than without",
                  f"p50 {off['median_p50_ms']} → {on['median_p50_ms']} ms ({ab['p50_worse_pct']:+.1f}%), "
                  f"CPU {off['median_cpu_ms_per_call']} → {on['median_cpu_ms_per_call']} ms/call "
                  f"({ab['cpu_worse_pct']:+.1f}%), p99 {off['median_p99_ms']} → {on['median_p99_ms']} ms; with them "
                  f"{ab['with_redis_round_trips_per_call']} round trips, {ab['with_redis_commands_per_call']} "
                  f"Redis commands and {ab.get('with_events_per_call', '?')} events per call",
                  worse <= 10))
        print(row("... the pairs' p50 (ms), without / with", "",
                  " · ".join(f"{a} / {b}" for a, b in zip(off["p50_ms"], on["p50_ms"]))))
    print(row("floor park → bridge at 200 calls/s", "", f"p99 {floor['latency_ms']['p99']} ms"))
    nl = inb["fixed_200_with_noise"]["latency_ms"]
    print(row("park → bridge at 200/s with 10,000 unrelated events/s, inbound", "",
              f"p50 {nl['p50']} / p99 {nl['p99']} ms"))
    sl = sock["fixed_200"]["latency_ms"]
    print(row("socket mode: park → bridge at 200/s", "", f"p50 {sl['p50']} / p99 {sl['p99']} ms"))
    snl = sock["fixed_200_with_noise"]["latency_ms"]
    print(row("socket mode: the same with 10,000 unrelated events/s", "", f"p50 {snl['p50']} / p99 {snl['p99']} ms"))
    print(row("socket mode: memory per PIN dialog, 5,000 at once", "≤ 20 KiB", f"{sock['pin_dialogs']['kib_per_dialog']} KiB",
              sock["pin_dialogs"]["kib_per_dialog"] <= 20))
    print(row("simulator CPU per call (same machine)", "", f"{inb['fixed_200']['simulator_cpu_s_per_call'] * 1000:.2f} ms"))


if __name__ == "__main__":
    main()
