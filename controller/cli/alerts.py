"""`tollgate alerts`: alerts raised for a tenant, its suspension, and lifting it."""

from __future__ import annotations

import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.errors import InvalidInput


@click.command()
@click.argument("tenant", required=False)
@click.option("--count", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--lift", is_flag=True, help="Lift TENANT's suspension: its chargeable calls go through again.")
@json_option
@pass_ctx
def alerts(c: Ctx, tenant, count, lift):
    """List the alerts of TENANT (all tenants without one) and any suspension;
    with --lift, lift TENANT's suspension (audited)."""
    if lift:
        if not tenant:
            raise InvalidInput("--lift needs the TENANT whose suspension to lift")
        c.store.alerts.lift(tenant)
        return click.echo(f"tenant {tenant}: suspension lifted")
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
                   f" (lift: tollgate alerts {t} --lift)")
