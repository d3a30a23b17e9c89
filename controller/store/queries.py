"""What operators ask of the state, for the CLI and the web API alike: the dry
run of a call (`check`), the audit searched and paged, and the use of
restricted features per person (seed 000, practice 4)."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, replace

from controller.errors import InvalidInput
from controller.store import keys
from controller.store.audit import settled_verdicts
from controller.store.entries_io import csv_cell
from policies.decide import decide
from policies.numbers import MAX_DIALED_LENGTH

RESTRICTED = ("premium", "international", "shared_cost", "unknown")
AUDIT_CSV_FIELDS = ["id", "time", "tenant", "kind", "actor", "action", "object", "extension", "dialed",
                    "class", "verdict", "reason", "rule", "pin_holder", "authorized_list", "outcome",
                    "before", "after"]


def check(store, tenant: str, extension: str = "", dialed: str = "", caller_id: str = "",
          source: str = "", unattended: str = "") -> dict:
    """The dry run of the decision (today's counts, the time now); nothing is written."""
    if not all(isinstance(x, str) for x in (extension, dialed, caller_id, source, unattended)):
        raise InvalidInput("extension, to, caller_id, source and unattended are strings")
    if not dialed.strip():
        raise InvalidInput("a check needs the number dialed")
    if len(dialed) > MAX_DIALED_LENGTH * 2 or len(caller_id) > MAX_DIALED_LENGTH * 2:
        raise InvalidInput(f"a number has at most {MAX_DIALED_LENGTH} digits")
    if unattended not in ("", "forward", "transfer", "originated"):
        raise InvalidInput(f"unattended {unattended!r} is not forward, transfer or originated")
    settings = store.admin.get_tenant(tenant)
    loaded = store.calls.load(tenant, extension, caller_id, dialed, source=source, unattended=unattended,
                              country_hint=settings.country)
    snap = loaded.snapshot
    snap = replace(snap, counts=store.calls.read_counts(snap))  # a dry run explains them all
    d = decide(snap)
    out = d.to_json()
    out.update(tenant=tenant, extension=extension, caller_id=caller_id, source=source, dialed=dialed,
               identity_number=snap.identity.number, identity_described=snap.identity.describe(),
               pin_holders=list(d.pin_holders), known_extension=snap.extension is not None)
    return out


def search_entries(rows: list[dict], q: str, state: str = "") -> list[dict]:
    """Entries whose names or list contain `q`, or whose phone contains its digits; of `state` if given."""
    q = q.strip().lower()
    digits = "".join(ch for ch in q if ch.isdigit())
    out = []
    for r in rows:
        if state and r.get("state") != state:
            continue
        text = f"{r.get('first_name', '')} {r.get('last_name', '')} {r.get('list', '')}".lower()
        if q and q not in text and not (digits and digits in r.get("phone", "")):
            continue
        out.append(r)
    return out


def since_window(window: str | None) -> float | None:
    """'30m', '2h', '7d' -> the epoch that far back; None for no window."""
    if not window:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return time.time() - float(window[:-1]) * units[window[-1]]
    except (KeyError, ValueError, IndexError):
        raise InvalidInput(f"since {window!r}: use a number and s, m, h or d (e.g. 30m)") from None


@dataclass(frozen=True)
class AuditFilter:
    extension: str = ""
    verdict: str = ""
    kind: str = ""
    actor: str = ""
    since: float | None = None

    def matches(self, f: dict) -> bool:
        if self.extension and f.get("extension") != self.extension \
                and not f.get("object", "").startswith(self.extension):
            return False
        if self.verdict and f.get("verdict", "").upper() != self.verdict.upper():
            return False
        if self.kind and f.get("kind") != self.kind:
            return False
        if self.actor and self.actor.lower() not in f.get("actor", "").lower():
            return False
        if self.since and float(f.get("ts", 0) or 0) < self.since:
            return False
        return True

    @property
    def narrows(self) -> bool:
        return bool(self.extension or self.verdict or self.kind or self.actor or self.since)


def audit_page(store, tenant: str, filt: AuditFilter, limit: int = 50,
               before: str = "") -> tuple[list[tuple[str, dict]], str]:
    """Newest first: up to `limit` matching entries older than the id `before`,
    and the cursor of the next page ('' at the end)."""
    if not 1 <= limit <= 100_000:
        raise InvalidInput(f"limit {limit}: use 1 to 100000")
    if before and not _stream_id(before):
        raise InvalidInput(f"cursor {before!r} is not an audit entry id")
    if before == "0-0":
        return [], ""  # nothing is older (and Redis refuses the range "(0-0")
    key, top, found = keys.audit(tenant), (f"({before}" if before else "+"), []
    while len(found) <= limit:
        chunk = store.r.xrevrange(key, max=top, min="-", count=500)
        if not chunk:
            break
        found.extend((i, f) for i, f in chunk if filt.matches(f))
        top = f"({chunk[-1][0]}"
        if filt.since and float(chunk[-1][1].get("ts", 0) or 0) < filt.since:
            break
    page = found[:limit]
    return page, (page[-1][0] if len(found) > limit else "")


def _stream_id(value: str) -> bool:
    """Two unsigned 64-bit numbers, as Redis reads a stream entry id."""
    a, _, b = value.partition("-")
    return all(x.isascii() and x.isdigit() and int(x) < 2 ** 64 for x in (a, b))


def audit_csv(rows: list[tuple[str, dict]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=AUDIT_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for entry_id, f in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(f.get("ts", 0) or 0)))
        w.writerow({**{k: csv_cell(f.get(k, "")) for k in AUDIT_CSV_FIELDS}, "id": entry_id, "time": when + "Z"})
    return buf.getvalue()


def restricted_use(store, tenant: str, since: float | None = None, scan: int = 100_000) -> list[dict]:
    """Per person (extension and PIN holder): calls to restricted classes, or
    placed with a PIN, allowed and refused, with the last one."""
    store.admin.require_tenant(tenant)
    entries = store.r.xrevrange(keys.audit(tenant), count=scan)
    people: dict[tuple, dict] = {}
    for f in settled_verdicts(list(reversed(entries))):
        cls = f.get("class", "")
        if cls not in RESTRICTED and not f.get("pin_holder"):
            continue
        if since and float(f.get("ts", 0) or 0) < since:
            continue
        k = (f.get("extension", "") or "-", f.get("pin_holder", ""), cls)
        row = people.setdefault(k, {"extension": k[0], "pin_holder": k[1], "class": cls, "allowed": 0,
                                    "refused": 0, "last": 0.0, "last_dialed": ""})
        row["allowed" if f.get("verdict") == "ALLOW" else "refused"] += 1
        ts = float(f.get("ts", 0) or 0)
        if ts >= row["last"]:
            row["last"], row["last_dialed"] = ts, f.get("e164") or f.get("dialed", "")
    return sorted(people.values(), key=lambda r: (-r["last"], r["extension"]))


def extension_view(store, tenant: str, ext) -> dict:
    """An extension as operators see it (PIN holders by name; PINs never)."""
    pipe = store.r.pipeline(transaction=False)
    pipe.ttl(keys.locked(tenant, ext.number))
    pipe.get(keys.fails(tenant, ext.number))
    ttl, fails = pipe.execute()
    return {
        "extension": ext.number,
        "name": ext.display_name,
        "pin_enabled": ext.pin_enabled,
        "language": ext.language or "(tenant)",
        "caller_ids": list(ext.caller_ids),
        "pin_holders": sorted(ext.pins),
        "locked_seconds": max(int(ttl or 0), 0),
        "failures": int(fails) if (fails or "").isdigit() else 0,
    }


def usage_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    fields = ["extension", "pin_holder", "class", "allowed", "refused", "last", "last_dialed"]
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        last = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(r["last"])) if r["last"] else ""
        w.writerow({**{k: csv_cell(str(r.get(k, ""))) for k in fields}, "last": last})
    return buf.getvalue()
