"""Redis's work per call when two controllers serve one FreeSWITCH node
(docs/capacity.md): both get every park, one wins the claim.

    python -m benchmarks.two_controllers

A real redis-server, the simulator, two controllers in this process; 600
national calls at 150/s after 50 to warm up; Redis commands (INFO
commandstats) and the redis-server's CPU time per call.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from benchmarks.run import cpu_seconds  # noqa: E402
from controller.testing import RedisServer  # noqa: E402
from tests.rig import Rig, wait  # noqa: E402

CALLS, RATE = 600, 150.0


def main() -> None:
    logging.disable(logging.WARNING)
    server = RedisServer(durable=False)
    server.start()
    rig = Rig(server.url)
    try:
        rig.provision()
        rig.controller("c1")
        rig.controller("c2")
        r = redis.Redis(port=server.port)

        def commands() -> int:
            return sum(v["calls"] for k, v in r.info("commandstats").items() if k != "cmdstat_info")

        for _ in range(50):
            rig.sim.place_call("0140000000", caller_id="1001")
        wait(lambda: not rig.sim.live(), 30, "the warm-up calls to end")
        c0, p0 = commands(), cpu_seconds(server.proc.pid)
        t0 = time.monotonic()
        for i in range(CALLS):
            rig.sim.place_call("0140000000", caller_id="1001")
            gevent.sleep(max(0.0, t0 + (i + 1) / RATE - time.monotonic()))
        wait(lambda: not rig.sim.live(), 30, "every call to end")
        time.sleep(1.0)  # the batched audit writes
        c1, p1 = commands(), cpu_seconds(server.proc.pid)
        print(json.dumps({"calls": CALLS, "redis_commands_per_call": round((c1 - c0) / CALLS, 2),
                          "redis_cpu_ms_per_call": round((p1 - p0) / CALLS * 1000, 3)}))
    finally:
        rig.close()
        server.cleanup()


if __name__ == "__main__":
    main()
