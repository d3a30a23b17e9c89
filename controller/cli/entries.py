"""`tollgate lists ...` and `tollgate numbers ...`: authorized lists and their entries."""

from __future__ import annotations

import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.store.entries_io import window_text
from policies.validity import epoch

WINDOW_HELP = ("2026-06-30 (a date: through that day), 2026-06-30T18:00 (the tenant's time zone) or with "
               "an offset; '' removes the bound")


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
@click.option("--valid-from", default="", help="The entry holds from then on: " + WINDOW_HELP + ".")
@click.option("--valid-until", default="", help="The entry holds until then: " + WINDOW_HELP + ".")
@json_option
@pass_ctx
def add(c: Ctx, tenant, list_name, first_name, last_name, phone, disabled, create_list, valid_from, valid_until):
    """Add an authorized number. With --valid-from / --valid-until it holds only
    then (a time-limited authorization): outside, the next call is refused."""
    row = c.store.admin.add_entry(tenant, list_name, first_name, last_name, phone,
                                  "disabled" if disabled else "enabled", create_list=create_list,
                                  valid_from=valid_from, valid_until=valid_until)
    emit_json(row) if c.json else click.echo(f"{row['phone']} added to {list_name} ({row['state']}"
                                             f"{', ' + window_text(row) if window_text(row) else ''})")


@numbers.command("edit")
@click.argument("tenant")
@click.argument("list_name", metavar="LIST")
@click.argument("phone")
@click.option("--first", "first_name", default=None, help="First name.")
@click.option("--last", "last_name", default=None, help="Last name.")
@click.option("--valid-from", default=None, help=WINDOW_HELP + ".")
@click.option("--valid-until", default=None, help=WINDOW_HELP + ".")
@json_option
@pass_ctx
def edit(c: Ctx, tenant, list_name, phone, first_name, last_name, valid_from, valid_until):
    """Change an entry's names or window (takes effect on the next call)."""
    row = c.store.admin.update_entry(tenant, list_name, phone, first_name=first_name, last_name=last_name,
                                     valid_from=valid_from, valid_until=valid_until)
    emit_json(row) if c.json else click.echo(f"{row['phone']} on {list_name}: {window_text(row) or 'always valid'}")


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
    table(["list", "first name", "last name", "phone", "state", "valid", "last used"],
          [[r["list"], r["first_name"], r["last_name"], r["phone"], r["state"], window_text(r) or "always",
            _when(r.get("last_used", ""))] for r in rows])


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
    done = c.store.admin.import_entries(tenant, source.read(), create_lists=create_lists, replace=replace)
    n = done["added"] + done["updated"]
    click.echo(f"imported {done['added']} new and {done['updated']} updated entr{'y' if n == 1 else 'ies'}")


@numbers.command("export")
@click.argument("tenant")
@click.argument("target", type=click.File("w", encoding="utf-8"), default="-")
@click.option("--list", "list_name", default=None, help="Only this list.")
@pass_ctx
def export(c: Ctx, tenant, target, list_name):
    """Export entries as CSV (to TARGET, default standard output)."""
    target.write(c.store.admin.export_entries(tenant, list_name))


@numbers.command("review")
@click.argument("tenant")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650),
              help="Show entries not used for this many days (or never, and older than that).")
@click.option("--expiring-days", default=14, show_default=True, type=click.IntRange(0, 3650),
              help="Show entries whose window ends within this many days, or has ended.")
@click.option("--list", "list_name", default=None, help="Only this list.")
@json_option
@pass_ctx
def review(c: Ctx, tenant, list_name, days, expiring_days):
    """Entries to look at (keep the lists current): those whose time-limited
    authorization ends soon or has ended, and those nobody used lately."""
    a = c.store.admin
    ending = a.expiring_entries(tenant, expiring_days, list_name)
    stale = a.stale_entries(tenant, days, list_name)
    now = time.time()
    found = [{**r, "review": "expired" if epoch(r["valid_until"]) <= now else "expiring"} for r in ending]
    found += [{**r, "review": "unused"} for r in stale]
    if c.json:
        return emit_json(found)
    table(["why", "list", "first name", "last name", "phone", "state", "valid", "last used", "created"],
          [[r["review"], r["list"], r["first_name"], r["last_name"], r["phone"], r["state"],
            window_text(r) or "always", _when(r.get("last_used", "")), _when(r.get("created", ""))]
           for r in found])
