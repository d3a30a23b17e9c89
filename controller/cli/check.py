"""`tollgate check`: what happens if this extension dials this number, and why."""

from __future__ import annotations

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, pairs
from controller.store import queries


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
    out = queries.check(c.store, tenant, extension, dialed, caller_id, source, unattended or "")
    if c.json:
        return emit_json(out)
    pairs({
        "verdict": out["verdict"],
        "class": out["class"],
        "e164": out.get("e164") or "-",
        "region": out.get("region") or "-",
        "identity": out["identity_described"],
        "rule": out.get("rule") or "-",
        **({"unattended": out["unattended"]} if out.get("unattended") else {}),
        **({"longest call": f"{out['max_seconds']}s"} if out.get("max_seconds") else {}),
        "reason": out["reason"],
        "why": out["detail"],
        **({"pin holders": ", ".join(out["pin_holders"])} if out["pin_holders"] else {}),
        **({"unknown extension": extension} if extension and not out["known_extension"] else {}),
    })
