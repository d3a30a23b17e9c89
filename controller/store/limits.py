"""A tenant's limits (issue 12): velocity and duration caps, audited like rules.

Stored as a list of JSON objects (`tg:{t}:limits`), read by every call in the
same round trip as the rest. The counts themselves are hashes of time buckets
(`tg:{t}:rate:<limit>:<subject>`, see store.counting), checked and written by
`CallStore.record_verdict` (and read by `read_counts` when a decision needs
them before that).
"""

from __future__ import annotations

from controller.errors import AlreadyExists, InvalidInput, NotFound
from controller.store import codec, keys
from controller.store.admin import Admin
from policies.limits import Limit


class Limits:
    def __init__(self, admin: Admin):
        self.admin = admin
        self.r = admin.r

    def list(self, t: str) -> tuple[Limit, ...]:
        self.admin.require_tenant(t)
        return codec.limits(keys.limits(t), self.r.lrange(keys.limits(t), 0, -1))

    def add(self, t: str, data: dict) -> Limit:
        current = list(self.list(t))
        try:
            limit = Limit.from_json(data)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if any(x.name == limit.name for x in current):
            raise AlreadyExists(f"limit {limit.name!r} already exists in tenant {t!r}")
        self.r.rpush(keys.limits(t), codec.limit_json(limit))
        self.admin._log(t, "limit.add", limit.name, after=limit.to_json())
        return limit

    def remove(self, t: str, name: str) -> None:
        current = list(self.list(t))
        found = next((x for x in current if x.name == name), None)
        if found is None:
            raise NotFound(f"no limit {name!r} in tenant {t!r}")
        tx = self.r.pipeline()
        tx.lrem(keys.limits(t), 1, codec.limit_json(found))
        for key in self._count_keys(t, name, "*"):
            tx.delete(key)
        tx.execute()
        self.admin._log(t, "limit.remove", name, before=found.to_json())

    def reset(self, t: str, name: str, subject: str) -> int:
        """Forget a subject's count (an operator lifting a velocity block)."""
        if not any(x.name == name for x in self.list(t)):
            raise NotFound(f"no limit {name!r} in tenant {t!r}")
        removed = sum(self.r.delete(k) for k in self._count_keys(t, name, subject))
        self.admin._log(t, "limit.reset", f"{name}:{subject}")
        return removed

    def _count_keys(self, t: str, name: str, subject: str) -> list[str]:
        """Every count of a limit for a subject ('*': all subjects): its velocity
        or alert buckets, its concurrency places, its budgets of every day."""
        found = [keys.rate(t, name, subject), keys.concurrency(t, name, subject)]
        if "*" in subject:
            found = [k for pattern in found for k in self.r.scan_iter(match=pattern, count=500)]
        found += list(self.r.scan_iter(match=keys.budget(t, name, subject, "*"), count=500))
        return found
