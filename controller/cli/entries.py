"""`tollgate lists ...` and `tollgate numbers ...`: authorized lists and their entries."""

from __future__ import annotations

import csv
import io
import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.errors import InvalidInput, TollgateError

CSV_FIELDS = ["list", "first_name", "last_name", "phone", "state"]
EXPORT_FIELDS = CSV_FIELDS + ["created", "updated", "last_used"]


@click.group("lists")
def lists():
    """Authorized lists (one per role or department)."""


@lists.command("list")
@click.argument("tenant")
@json_option
@pass_ctx
def lists_list(c: Ctx, tenant):
    found = c.store.admin.lists(tenant)
    emit_json(found) if c.json else table(["list", "entries"], found.items())


@lists.command("create")
@click.argument("tenant")
@click.argument("name")
@pass_ctx
def lists_create(c: Ctx, tenant, name):
    c.store.admin.create_list(tenant, name)
    click.echo(f"list {name} created")


@lists.command("delete")
@click.argument("tenant")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also remove the list's entries.")
@pass_ctx
def lists_delete(c: Ctx, tenant, name, force):
    c.store.admin.delete_list(tenant, name, force=force)
    click.echo(f"list {name} deleted")


@click.group("numbers")
def numbers():
    """Authorized numbers: people allowed through a rule's lists."""


@numbers.command("add")
@click.argument("tenant")
@click.argument("list_name", metavar="LIST")
@click.option("--first", "first_name", default="", help="First name.")
@click.option("--last", "last_name", default="", help="Last name.")
@click.option("--phone", required=True, help="Phone number (any form; stored as E.164) or extension.")
@click.option("--disabled", is_flag=True, help="Add the entry disabled.")
@click.option("--create-list", is_flag=True, help="Create LIST if it does not exist.")
@json_option
@pass_ctx
def add(c: Ctx, tenant, list_name, first_name, last_name, phone, disabled, create_list):
    row = c.store.admin.add_entry(tenant, list_name, first_name, last_name, phone,
                                  "disabled" if disabled else "enabled", create_list=create_list)
    emit_json(row) if c.json else click.echo(f"{row['phone']} added to {list_name} ({row['state']})")


def _when(ts: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(ts))) if ts else "never"


@numbers.command("list")
@click.argument("tenant")
@click.option("--list", "list_name", default=None, help="Only this list.")
@json_option
@pass_ctx
def list_(c: Ctx, tenant, list_name):
    rows = c.store.admin.entries(tenant, list_name)
    if c.json:
        return emit_json(rows)
    table(["list", "first name", "last name", "phone", "state", "last used"],
          [[r["list"], r["first_name"], r["last_name"], r["phone"], r["state"], _when(r.get("last_used", ""))]
           for r in rows])


def _set_state(state: str):
    @click.argument("tenant")
    @click.argument("list_name", metavar="LIST")
    @click.argument("phone")
    @pass_ctx
    def command(c: Ctx, tenant, list_name, phone):
        row = c.store.admin.update_entry(tenant, list_name, phone, state=state)
        click.echo(f"{row['phone']} on {list_name} is now {state}")

    command.__doc__ = f"Mark an entry {state} (takes effect on the next call)."
    return command


numbers.command("enable")(_set_state("enabled"))
numbers.command("disable")(_set_state("disabled"))


@numbers.command("remove")
@click.argument("tenant")
@click.argument("list_name", metavar="LIST")
@click.argument("phone")
@pass_ctx
def remove(c: Ctx, tenant, list_name, phone):
    c.store.admin.remove_entry(tenant, list_name, phone)
    click.echo(f"{phone} removed from {list_name}")


@numbers.command("import")
@click.argument("tenant")
@click.argument("source", type=click.File("r", encoding="utf-8-sig"))
@click.option("--create-lists", is_flag=True, help="Create lists named in the file that do not exist.")
@click.option("--replace", is_flag=True, help="Update entries that already exist instead of failing.")
@pass_ctx
def import_(c: Ctx, tenant, source, create_lists, replace):
    """Import entries from CSV (columns: list,first_name,last_name,phone,state).

    Every row is checked before anything is written: one bad row, nothing imported.
    """
    admin = c.store.admin
    reader = csv.DictReader(source)
    missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"CSV header lacks {', '.join(missing)} (expected {','.join(CSV_FIELDS)})")
    known = set(admin.lists(tenant))
    rows, errors = [], []
    for line, row in enumerate(reader, start=2):
        try:
            phone = admin.normalize_entry_phone(tenant, row["phone"] or "")
            state = (row["state"] or "enabled").strip().lower()
            if state not in ("enabled", "disabled"):
                raise InvalidInput(f"state {state!r} is not enabled or disabled")
            name = (row["list"] or "").strip()
            if name not in known and not create_lists:
                raise InvalidInput(f"no list {name!r} (use --create-lists)")
            rows.append((name, row["first_name"] or "", row["last_name"] or "", phone, state))
        except TollgateError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        raise InvalidInput(f"{len(errors)} bad row(s), nothing imported; first: {errors[0]}")
    added = updated = 0
    existing = {(r["list"], r["phone"]) for r in admin.entries(tenant)}
    for name, first, last, phone, state in rows:
        if (name, phone) in existing:
            if not replace:
                raise InvalidInput(f"{phone} is already on list {name!r} (use --replace); "
                                   f"{added + updated} row(s) were written before it")
            admin.update_entry(tenant, name, phone, first_name=first, last_name=last, state=state)
            updated += 1
        else:
            admin.add_entry(tenant, name, first, last, phone, state, create_list=create_lists)
            existing.add((name, phone))
            added += 1
    click.echo(f"imported {added} new and {updated} updated entr{'y' if added + updated == 1 else 'ies'}")


@numbers.command("export")
@click.argument("tenant")
@click.argument("target", type=click.File("w", encoding="utf-8"), default="-")
@click.option("--list", "list_name", default=None, help="Only this list.")
@pass_ctx
def export(c: Ctx, tenant, target, list_name):
    """Export entries as CSV (to TARGET, default standard output)."""
    rows = c.store.admin.entries(tenant, list_name)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in EXPORT_FIELDS})
    target.write(buf.getvalue())


@numbers.command("review")
@click.argument("tenant")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650),
              help="Show entries not used for this many days (or never, and older than that).")
@click.option("--list", "list_name", default=None, help="Only this list.")
@json_option
@pass_ctx
def review(c: Ctx, tenant, list_name, days):
    """Entries nobody used lately: candidates to disable (keep the lists current)."""
    cutoff = time.time() - days * 86400
    stale = []
    for row in c.store.admin.entries(tenant, list_name):
        used = float(row.get("last_used") or 0)
        created = float(row.get("created") or 0)
        if (used and used < cutoff) or (not used and created < cutoff):
            stale.append(row)
    if c.json:
        return emit_json(stale)
    table(["list", "first name", "last name", "phone", "state", "last used", "created"],
          [[r["list"], r["first_name"], r["last_name"], r["phone"], r["state"], _when(r.get("last_used", "")),
            _when(r.get("created", ""))] for r in stale])
