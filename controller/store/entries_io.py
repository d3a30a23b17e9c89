"""Authorized entries in bulk: CSV import and export, and the review of entries
nobody used lately (seed 000, practice 1). The CLI and the web API both call
these; neither parses a CSV of its own."""

from __future__ import annotations

import csv
import io
import time

from controller.errors import InvalidInput, TollgateError
from controller.store.checks import entry_row, valid_name
from policies.validity import epoch

CSV_FIELDS = ["list", "first_name", "last_name", "phone", "state"]
# Optional on import (a file without them imports as before, and leaves the
# windows of entries it replaces alone); always exported.
WINDOW_FIELDS = ["valid_from", "valid_until"]
EXPORT_FIELDS = CSV_FIELDS + WINDOW_FIELDS + ["created", "updated", "last_used"]
IMPORT_MAX_ROWS = 50_000


class EntriesIO:
    """Mixed into Admin: uses its entries, lists and entry writers."""

    def import_entries(self, t: str, text: str, *, create_lists: bool = False,
                       replace: bool = False) -> dict[str, int]:
        """Every row is checked before anything is written: one bad row, nothing imported."""
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"CSV header lacks {', '.join(missing)} (expected {','.join(CSV_FIELDS)})")
        known = set(self.lists(t))
        existing = {(r["list"], r["phone"]) for r in self.entries(t)}
        rows, errors, seen = [], [], set()
        try:
            for line, row in enumerate(reader, start=2):
                if line > IMPORT_MAX_ROWS + 1:
                    raise InvalidInput(f"more than {IMPORT_MAX_ROWS} rows: split the file")
                try:
                    rows.append(self._import_row(t, row, known, create_lists, replace, existing, seen))
                except TollgateError as exc:
                    errors.append(f"line {line}: {exc}")
        except csv.Error as exc:
            raise InvalidInput(f"not a readable CSV: {exc}") from None
        if errors:
            raise InvalidInput(f"{len(errors)} bad row(s), nothing imported; first: {errors[0]}")
        added = updated = 0
        for name, first, last, phone, state, window in rows:
            if (name, phone) in existing:
                self.update_entry(t, name, phone, first_name=first, last_name=last, state=state, **window)
                updated += 1
            else:
                self.add_entry(t, name, first, last, phone, state, create_list=create_lists, **window)
                added += 1
        return {"added": added, "updated": updated}

    def _import_row(self, t, row, known, create_lists, replace, existing, seen) -> tuple:
        phone = self.normalize_entry_phone(t, row.get("phone") or "")
        state = (row.get("state") or "enabled").strip().lower()
        if state not in ("enabled", "disabled"):
            raise InvalidInput(f"state {state!r} is not enabled or disabled")
        name = (row.get("list") or "").strip()
        if name not in known and not create_lists:
            raise InvalidInput(f"no list {name!r} (use --create-lists)")
        first, last = row.get("first_name") or "", row.get("last_name") or ""
        valid_name("list", name)
        entry_row(name, first, last, phone, state)
        window = {k: (row.get(k) or "").strip() for k in WINDOW_FIELDS if k in row}
        if any(window.values()):
            self.window(t, window.get("valid_from"), window.get("valid_until"))
        if (name, phone) in seen:
            raise InvalidInput(f"{phone} appears twice for list {name!r}")
        seen.add((name, phone))
        if (name, phone) in existing and not replace:
            raise InvalidInput(f"{phone} is already on list {name!r} (use --replace)")
        return name, first, last, phone, state, window

    def export_entries(self, t: str, list_name: str | None = None) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.entries(t, list_name):
            writer.writerow({k: csv_cell(row.get(k, "")) for k in EXPORT_FIELDS})
        return buf.getvalue()

    def stale_entries(self, t: str, days: int = 90, list_name: str | None = None) -> list[dict[str, str]]:
        """Entries not used for `days` days (or never, and older than that)."""
        if not 1 <= int(days) <= 3650:
            raise InvalidInput(f"days {days!r}: use 1 to 3650")
        cutoff = time.time() - int(days) * 86400
        stale = []
        for row in self.entries(t, list_name):
            used = float(row.get("last_used") or 0)
            created = float(row.get("created") or 0)
            if (used and used < cutoff) or (not used and created < cutoff):
                stale.append(row)
        return stale


    def expiring_entries(self, t: str, days: int | str = 14, list_name: str | None = None) -> list[dict[str, str]]:
        """Entries whose window ends within `days` days, or has ended (seed 000,
        practices 1 and 3: renew them or let them go), soonest first."""
        if not (str(days).isdigit() and 0 <= int(days) <= 3650):
            raise InvalidInput(f"days {days!r}: use 0 to 3650")
        horizon = time.time() + int(days) * 86400
        ending = [(epoch(row["valid_until"]), row) for row in self.entries(t, list_name) if row.get("valid_until")]
        return [row for end, row in sorted(ending, key=lambda x: x[0]) if end <= horizon]


def local_time(stored: str) -> str:
    """An entry's stored instant (ISO 8601 with its offset) as the tenant's local time, to the minute."""
    return (stored or "")[:16].replace("T", " ")


def window_text(row: dict[str, str]) -> str:
    """An entry's window for people ('' when it always holds)."""
    start, end = (local_time(row.get(k, "")) for k in WINDOW_FIELDS)
    return " ".join(x for x in (start and f"from {start}", end and f"until {end}") if x)


def csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run: one starting with = @ tab or CR, or a
    + or - not followed by digits only (CSV injection), gets a leading quote.
    Phone numbers (+33...) and empty cells stay as they are."""
    if not value:
        return value
    if value[0] in "=@\t\r" or (value[0] in "+-" and not value[1:].isdigit()):
        return "'" + value
    return value
