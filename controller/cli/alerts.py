"""`tollgate alerts`: alerts raised for a tenant, its suspension, and lifting it."""

from __future__ import annotations

import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table


@click.group(invoke_without_command=True)
@click.argument("tenant", required=False)
@click.option("--count", default=50, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@pass_ctx
@click.pass_context
def alerts(ctx: click.Context, c: Ctx, tenant, count):
    """List the alerts of TENANT (all tenants without one) and any suspension."""
    if ctx.invoked_subcommand is not None:
        return
    names = [tenant] if tenant else c.store.admin.tenants()
    rows, suspended = [], {}
    for t in names:
        rows += [{"tenant": t, **a} for a in c.store.alerts.list(t, count)]
        s = c.store.alerts.suspension(t)
        if s:
            suspended[t] = s
    if c.json:
        return emit_json({"alerts": rows, "suspended": suspended})
    table(["time", "tenant", "alert", "count", "suspended", "detail"],
          [[time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(a.get("ts", 0)))), a["tenant"], a.get("alert", ""),
            a.get("count", ""), a.get("suspended", ""), a.get("detail", "")[:100]] for a in rows])
    for t, s in suspended.items():
        click.echo(f"{t}: chargeable calls SUSPENDED since "
                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(s.get('since', 0))))}: {s.get('reason')}"
                   f" (lift: tollgate alerts lift {t})")


@alerts.command("lift")
@click.argument("tenant")
@pass_ctx
def lift(c: Ctx, tenant):
    """Lift a tenant's suspension: its chargeable calls go through again."""
    c.store.alerts.lift(tenant)
    click.echo(f"tenant {tenant}: suspension lifted")
