"""`tollgate calls`: calls in progress, across every controller (from Redis)."""

from __future__ import annotations

import time

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table


@click.command()
@json_option
@pass_ctx
def calls(c: Ctx):
    """List calls in progress: tenant, extension, dialed number, state, seconds,
    the FreeSWITCH node the call is on and the controller handling it."""
    rows = c.store.calls.calls()
    now = time.time()
    for row in rows:
        row["seconds"] = f"{max(now - float(row.get('started', now)), 0):.1f}"
    if c.json:
        return emit_json(rows)
    table(["uuid", "tenant", "extension", "dialed", "state", "seconds", "node", "controller"],
          [[r.get("uuid", ""), r.get("tenant", ""), r.get("extension", ""), r.get("dialed", ""),
            r.get("state", ""), r["seconds"], r.get("node", ""), r.get("owner", "")] for r in rows])
