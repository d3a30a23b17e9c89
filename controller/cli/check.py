"""`tollgate check`: what happens if this extension dials this number, and why."""

from __future__ import annotations

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, pairs
from policies.decide import decide


@click.command()
@click.argument("tenant")
@click.option("--from", "extension", default="",
              help="The extension FreeSWITCH authenticated for the call (its directory user). "
                   "Leave it out for a call nobody authenticated (a trunk, an unregistered device).")
@click.option("--caller-id", default="",
              help="The caller-ID number presented. It identifies nobody unless the call comes "
                   "through a --source the tenant trusts (setting trusted_sources).")
@click.option("--source", default="", help="The gateway or trunk the dialplan names (tollgate_source).")
@click.option("--to", "dialed", required=True, help="The number dialed, as the caller keyed it.")
@click.option("--unattended", type=click.Choice(["forward", "transfer", "originated"]), default=None,
              help="A call nobody at the phone placed: a forward or transfer by --from, or one the PBX places.")
@json_option
@pass_ctx
def check(c: Ctx, tenant, extension, caller_id, source, dialed, unattended):
    """Dry run of the decision (with today's counts and the time now); nothing is
    written and no call is made."""
    settings = c.store.admin.get_tenant(tenant)
    loaded = c.store.calls.load(tenant, extension, caller_id, dialed, source=source,
                                unattended=unattended or "", country_hint=settings.country)
    snap = loaded.snapshot
    d = decide(snap)
    out = d.to_json()
    out.update(tenant=tenant, extension=extension, caller_id=caller_id, source=source, dialed=dialed,
               identity_number=snap.identity.number, pin_holders=list(d.pin_holders),
               known_extension=snap.extension is not None)
    if c.json:
        return emit_json(out)
    pairs({
        "verdict": d.verdict.value,
        "class": d.call_class.value,
        "e164": d.e164 or "-",
        "region": d.region or "-",
        "identity": snap.identity.describe(),
        "rule": d.rule or "-",
        **({"unattended": d.unattended} if d.unattended else {}),
        **({"longest call": f"{d.max_seconds}s"} if d.max_seconds else {}),
        "reason": d.reason,
        "why": d.detail,
        **({"pin holders": ", ".join(d.pin_holders)} if d.pin_holders else {}),
        **({"unknown extension": extension} if extension and snap.extension is None else {}),
    })
