"""`tollgate rules ...`: a tenant's ordered outbound rules."""

from __future__ import annotations

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.store.rules import regions_text, schedule_from
from policies.classes import CallClass


@click.group()
def rules():
    """Outbound rules, evaluated in order; the first enabled match decides."""


@rules.command("add")
@click.argument("tenant")
@click.argument("name")
@click.option("--action", type=click.Choice(["allow", "deny"]), required=True)
@click.option("--class", "classes", multiple=True, type=click.Choice([c.value for c in CallClass]),
              help="Match these classes (repeatable).")
@click.option("--prefix", "prefixes", multiple=True, help="Match E.164 prefixes, e.g. +881 (repeatable).")
@click.option("--list", "lists", multiple=True, help="Only callers enabled on one of these lists pass.")
@click.option("--pin", is_flag=True, help="Ask for a PIN whatever the extension's setting.")
@click.option("--position", type=int, default=None, help="1 = first; default: last.")
@click.option("--disabled", is_flag=True)
@click.option("--unattended", is_flag=True,
              help="Also allow, without a PIN, calls nobody at the phone placed (forwards, transfers, "
                   "calls the PBX originates).")
@click.option("--days", default="", help="The rule holds only on these days: mon-fri, or mon,wed,sat.")
@click.option("--hours", default="", help="... and only in these hours: 08:00-18:00, or 22:00-06:00.")
@click.option("--holidays", default="", help="... and not on these dates: 2026-12-25,2027-01-01.")
@click.option("--region", "regions", multiple=True,
              help="Match only numbers of these regions: ISO 3166 (CH), a group (EU, EEA), or 001 for "
                   "non-geographic codes (repeatable).")
@click.option("--except-region", "except_regions", multiple=True,
              help="Match only numbers of other regions than these (repeatable).")
@json_option
@pass_ctx
def add(c: Ctx, tenant, name, action, classes, prefixes, lists, pin, position, disabled, unattended,
        days, hours, holidays, regions, except_regions):
    """Add a rule. With --days/--hours/--holidays it holds only then, in the
    tenant's time zone (setting timezone); at other times the next rule decides.
    With --region / --except-region it matches only those destination regions
    (e.g. international calls to --region EU --region CH)."""
    schedule = schedule_from(days, hours, holidays)
    rule = c.store.admin.add_rule(tenant, name, action, classes, prefixes, lists, pin, position, not disabled,
                                  unattended=unattended, schedule=schedule, regions=regions,
                                  except_regions=except_regions)
    emit_json(rule.to_json()) if c.json else click.echo(f"rule {rule.name} added")


@rules.command("list")
@click.argument("tenant")
@json_option
@pass_ctx
def list_(c: Ctx, tenant):
    found = c.store.admin.rules(tenant)
    if c.json:
        return emit_json([r.to_json() for r in found])
    table(["#", "name", "action", "classes", "prefixes", "regions", "lists", "pin", "unattended", "holds",
           "enabled"],
          [[i, r.name, r.action, ",".join(x.value for x in r.classes) or "*", ",".join(r.prefixes) or "*",
            regions_text(r), ",".join(r.lists) or "-", "yes" if r.pin else "no", "yes" if r.unattended else "no",
            r.schedule.describe() if r.schedule else "always", "yes" if r.enabled else "no"]
           for i, r in enumerate(found, start=1)])


@rules.command("remove")
@click.argument("tenant")
@click.argument("name")
@pass_ctx
def remove(c: Ctx, tenant, name):
    c.store.admin.remove_rule(tenant, name)
    click.echo(f"rule {name} removed")


@rules.command("move")
@click.argument("tenant")
@click.argument("name")
@click.argument("position", type=int)
@pass_ctx
def move(c: Ctx, tenant, name, position):
    c.store.admin.move_rule(tenant, name, position)
    click.echo(f"rule {name} is now #{position}")


@rules.command("enable")
@click.argument("tenant")
@click.argument("name")
@pass_ctx
def enable(c: Ctx, tenant, name):
    c.store.admin.set_rule_enabled(tenant, name, True)
    click.echo(f"rule {name} enabled")


@rules.command("disable")
@click.argument("tenant")
@click.argument("name")
@pass_ctx
def disable(c: Ctx, tenant, name):
    c.store.admin.set_rule_enabled(tenant, name, False)
    click.echo(f"rule {name} disabled")
