"""Redis memory per stored object (docs/capacity.md): a fresh redis-server,
2,000 authorized numbers, 500 extensions and 20,000 audit verdicts written
through the store, `INFO memory` read between the steps.

    python -m benchmarks.redis_memory
"""

from __future__ import annotations

import json

from controller.store import Store, keys
from controller.store.audit import encode
from controller.testing import RedisServer

VERDICT = {"extension": "1003", "dialed": "0899123456", "e164": "+33899123456", "class": "premium",
           "verdict": "ALLOW", "reason": "list", "rule": "premium-intl", "outcome": "bridge_sent",
           "controller": "tollgate-1:1234", "identity": "extension", "list": "direction", "ms": "2.1",
           "detail": "premium number allowed by rule premium-intl (list direction)"}


def main() -> None:
    server = RedisServer(durable=False)
    server.start()
    try:
        store = Store.open(server.url, warn=False)
        used = lambda: store.r.info("memory")["used_memory"]  # noqa: E731
        a = store.admin
        a.create_tenant("acme", {"country": "FR"})
        a.create_list("acme", "direction")
        m0 = used()
        for i in range(2000):
            a.add_entry("acme", "direction", "Élise", "Dupont", f"06{i:08d}")
        m1 = used()
        for i in range(500):
            a.put_extension("acme", str(2000 + i), create=True)
        m2 = used()
        store.r.delete(keys.audit("acme"))  # the operators' changes above are not verdicts
        m3 = used()
        for i in range(20000):
            fields = encode("verdict", "acme", {**VERDICT, "uuid": f"{i:08x}-6b5a-4938-8271-605f4e3d2c1b"})
            store.audit.write_now("acme", fields, [])
        m4 = used()
        print(json.dumps({"bytes_per_authorized_number": round((m1 - m0) / 2000),
                          "bytes_per_extension": round((m2 - m1) / 500),
                          "bytes_per_audit_verdict_with_its_guard": round((m4 - m3) / 20000)}, indent=1))
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
