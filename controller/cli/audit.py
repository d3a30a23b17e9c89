"""`tollgate audit`: the audit stream, newest last, with filters and --follow."""

from __future__ import annotations

import json
import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table
from controller.store import queries


def _row(tenant: str, fields: dict) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(fields.get("ts", 0))))
    if fields.get("kind") == "verdict":
        what = f"{fields.get('extension', '?')} -> {fields.get('dialed', '?')}"
        how = f"{fields.get('verdict', '')} {fields.get('reason', '')}".strip()
        extra = fields.get("detail", "")
    elif fields.get("kind") == "outcome":
        what = f"call {fields.get('uuid', '?')}"
        how = f"{fields.get('outcome', '')} (recorded: {fields.get('recorded_outcome', '')})"
        extra = ""
    else:
        what = f"{fields.get('action', '')} {fields.get('object', '')}"
        how = fields.get("actor", "")
        extra = ""
        if "after" in fields:
            extra = fields["after"]
    return [when, tenant, fields.get("kind", ""), what, how, extra[:100]]


@click.command()
@click.argument("tenants", nargs=-1)
@click.option("--count", default=50, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--extension", default=None, help="Only this extension.")
@click.option("--verdict", type=click.Choice(["ALLOW", "DENY", "CHALLENGE", "allow", "deny", "challenge"]))
@click.option("--since", "window", default=None, help="Only the last N s/m/h/d, e.g. 2h.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries.")
@json_option
@pass_ctx
def audit(c: Ctx, tenants, count, extension, verdict, window, follow):
    """Show verdicts and operator changes (all tenants by default)."""
    for t in tenants:
        c.store.admin.require_tenant(t)
    names = list(tenants) or c.store.admin.tenants()
    filt = queries.AuditFilter(extension=extension or "", verdict=verdict or "", since=queries.since_window(window))
    rows = []
    for t in names:
        page, _ = queries.audit_page(c.store, t, filt, limit=count)
        rows.extend((entry_id, t, fields) for entry_id, fields in page)
    rows.sort(key=lambda r: (float(r[2].get("ts", 0)), r[0]))
    rows = rows[-count:]
    if c.json:
        for entry_id, t, fields in rows:
            emit_json({"id": entry_id, **fields})
    else:
        table(["time", "tenant", "kind", "what", "outcome", "detail"], [_row(t, f) for _, t, f in rows])
    if not follow:
        return
    last = {t: "$" for t in names}
    for t, entry_id, fields in c.store.audit.follow(names, last):
        if entry_id and filt.matches(fields):
            click.echo(json.dumps({"id": entry_id, **fields}, ensure_ascii=False) if c.json
                       else "  ".join(_row(t, fields)))
