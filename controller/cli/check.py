"""`tollgate check`: what happens if this extension dials this number, and why."""

from __future__ import annotations

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, pairs
from policies.decide import decide


@click.command()
@click.argument("tenant")
@click.option("--from", "extension", required=True, help="The calling extension.")
@click.option("--caller-id", default="", help="Caller-ID number presented (default: the extension).")
@click.option("--to", "dialed", required=True, help="The number dialed, as the caller keyed it.")
@json_option
@pass_ctx
def check(c: Ctx, tenant, extension, caller_id, dialed):
    """Dry run of the decision; nothing is written and no call is made."""
    settings = c.store.admin.get_tenant(tenant)
    loaded = c.store.calls.load(tenant, extension, caller_id or extension, dialed, country_hint=settings.country)
    d = decide(loaded.snapshot)
    out = d.to_json()
    out.update(tenant=tenant, extension=extension, dialed=dialed,
               pin_holders=list(d.pin_holders), known_extension=loaded.snapshot.extension is not None)
    if c.json:
        return emit_json(out)
    pairs({
        "verdict": d.verdict.value,
        "class": d.call_class.value,
        "e164": d.e164 or "-",
        "rule": d.rule or "-",
        "reason": d.reason,
        "why": d.detail,
        **({"pin holders": ", ".join(d.pin_holders)} if d.pin_holders else {}),
        **({"unknown extension": extension} if loaded.snapshot.extension is None else {}),
    })
