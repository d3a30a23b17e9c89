"""`tollgate limits ...`: velocity and duration caps of a tenant (issue 12)."""

from __future__ import annotations

import re

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.errors import InvalidInput
from policies.classes import CallClass

_WINDOW = re.compile(r"^(\d+)\s*([smhd]?)$")


def _seconds(text: str) -> int:
    m = _WINDOW.match(text.strip().lower())
    if not m:
        raise InvalidInput(f"{text!r}: use a number and s, m, h or d (e.g. 1h, 90m, 1d)")
    return int(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]]


@click.group()
def limits():
    """Caps: calls per window (velocity) and the longest call (duration)."""


@limits.command("add")
@click.argument("tenant")
@click.argument("name")
@click.option("--kind", type=click.Choice(["velocity", "concurrency", "budget", "duration", "alert"]),
              default="velocity", show_default=True)
@click.option("--class", "classes", multiple=True, type=click.Choice([c.value for c in CallClass]),
              help="Classes counted (repeatable); default: every chargeable class.")
@click.option("--scope", type=click.Choice(["extension", "tenant"]), default="extension", show_default=True,
              help="velocity: count per extension (or trusted caller ID), or for the whole tenant.")
@click.option("--max", "most", type=int, default=0,
              help="velocity: calls allowed in the window; concurrency: calls at once; alert: the threshold.")
@click.option("--minutes", type=int, default=0, help="budget: minutes a day (the tenant's day).")
@click.option("--window", default="1h", show_default=True, help="velocity: the window, e.g. 1h, 10m, 1d.")
@click.option("--duration", "longest", default="", help="duration: the longest call, e.g. 10m.")
@json_option
@pass_ctx
def add(c: Ctx, tenant, name, kind, classes, scope, most, minutes, window, longest):
    """Add a limit, e.g. at most 10 international calls an hour per extension:
    tollgate limits add acme intl-hourly --class international --max 10 --window 1h

    at most 4 chargeable calls at once for the tenant:
    tollgate limits add acme four-lines --kind concurrency --scope tenant --max 4

    an hour of international calls a day per extension:
    tollgate limits add acme intl-day --kind budget --class international --minutes 60

    an alert at 20 international calls in 10 minutes for the tenant (it also
    suspends the tenant's chargeable calls if its setting auto_suspend is on):
    tollgate limits add acme intl-burst --kind alert --class international --scope tenant --max 20 --window 10m"""
    data = {"name": name, "kind": kind, "classes": list(classes)}
    if kind in ("velocity", "alert"):
        data.update(scope=scope, max=most, window=_seconds(window))
    elif kind == "concurrency":
        data.update(scope=scope, max=most)
    elif kind == "budget":
        data.update(scope=scope, minutes=minutes)
    else:
        if not longest:
            raise InvalidInput("a duration limit needs --duration (e.g. 10m)")
        data.update(seconds=_seconds(longest))
    limit = c.store.limits.add(tenant, data)
    emit_json(limit.to_json()) if c.json else click.echo(f"limit {limit.name} added: {limit.describe()}")


@limits.command("list")
@click.argument("tenant")
@json_option
@pass_ctx
def list_(c: Ctx, tenant):
    found = c.store.limits.list(tenant)
    if c.json:
        return emit_json([x.to_json() for x in found])
    table(["name", "kind", "what"], [[x.name, x.kind, x.describe()] for x in found])


@limits.command("remove")
@click.argument("tenant")
@click.argument("name")
@pass_ctx
def remove(c: Ctx, tenant, name):
    c.store.limits.remove(tenant, name)
    click.echo(f"limit {name} removed (and its counts)")


@limits.command("reset")
@click.argument("tenant")
@click.argument("name")
@click.option("--subject", required=True, help="Whose count: ext:1003, cid:+33612345678 or tenant.")
@pass_ctx
def reset(c: Ctx, tenant, name, subject):
    """Forget a count (to let an extension call again before its window ends, or
    its budget before the day ends)."""
    removed = c.store.limits.reset(tenant, name, subject)
    click.echo(f"count {name} of {subject} reset" if removed else f"{subject} had no count for {name}")
