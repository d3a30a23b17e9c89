"""`tollgate ext ...`: extensions, IVR authentication and PINs."""

from __future__ import annotations

import sys

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, pairs, table
from controller.errors import InvalidInput
from controller.store import queries
from policies.pin import PinFormatError, validate_pin


def _ext_view(c: Ctx, tenant: str, ext) -> dict:
    return queries.extension_view(c.store, tenant, ext)


@click.group()
def ext():
    """Extensions: IVR authentication (PIN) switch, PINs, caller IDs, language."""


def _ext_options(f):
    f = click.option("--caller-id", "caller_ids", multiple=True,
                     help="A number that identifies this person on authorized lists (repeatable).")(f)
    f = click.option("--language", type=click.Choice(["en", "fr", "de", ""]), default=None,
                     help="Prompt language for this extension ('' = the tenant's).")(f)
    f = click.option("--name", "display_name", default=None, help="Who uses this extension.")(f)
    return f


@ext.command("add")
@click.argument("tenant")
@click.argument("number")
@_ext_options
@json_option
@pass_ctx
def add(c: Ctx, tenant: str, number: str, caller_ids, language, display_name):
    """Add extension NUMBER to TENANT."""
    e = c.store.admin.put_extension(tenant, number, create=True, language=language,
                                    caller_ids=caller_ids or None, display_name=display_name)
    emit_json(_ext_view(c, tenant, e)) if c.json else click.echo(f"extension {e.number} added to {tenant}")


@ext.command("set")
@click.argument("tenant")
@click.argument("number")
@_ext_options
@click.option("--clear-caller-ids", is_flag=True, help="Remove every caller ID.")
@json_option
@pass_ctx
def set_(c: Ctx, tenant, number, caller_ids, language, display_name, clear_caller_ids):
    """Change an extension's caller IDs, language or name."""
    ids = [] if clear_caller_ids else (caller_ids or None)
    e = c.store.admin.put_extension(tenant, number, language=language, caller_ids=ids,
                                    display_name=display_name)
    emit_json(_ext_view(c, tenant, e)) if c.json else click.echo(f"extension {e.number} updated")


@ext.command("show")
@click.argument("tenant")
@click.argument("number")
@json_option
@pass_ctx
def show(c: Ctx, tenant, number):
    """Show an extension (PIN holders by name; PINs are never shown)."""
    view = _ext_view(c, tenant, c.store.admin.get_extension(tenant, number))
    emit_json(view) if c.json else pairs({k: ", ".join(v) if isinstance(v, list) else v for k, v in view.items()})


@ext.command("list")
@click.argument("tenant")
@json_option
@pass_ctx
def list_(c: Ctx, tenant):
    """List a tenant's extensions."""
    views = [_ext_view(c, tenant, c.store.admin.get_extension(tenant, n)) for n in c.store.admin.extensions(tenant)]
    if c.json:
        return emit_json(views)
    table(["extension", "name", "pin", "holders", "caller ids", "language"],
          [[v["extension"], v["name"], "on" if v["pin_enabled"] else "off", ",".join(v["pin_holders"]),
            ",".join(v["caller_ids"]), v["language"]] for v in views])


@ext.command("remove")
@click.argument("tenant")
@click.argument("number")
@pass_ctx
def remove(c: Ctx, tenant, number):
    """Remove an extension and its PINs."""
    c.store.admin.delete_extension(tenant, number)
    click.echo(f"extension {number} removed")


@ext.command("enable")
@click.argument("tenant")
@click.argument("number")
@pass_ctx
def enable(c: Ctx, tenant, number):
    """Switch IVR authentication on: chargeable calls ask for a PIN."""
    e = c.store.admin.put_extension(tenant, number, pin_enabled=True)
    click.echo(f"IVR authentication on for {e.number}" + ("" if e.pins else
               f" (no PIN yet: tollgate ext pin set {tenant} {e.number})"))


@ext.command("disable")
@click.argument("tenant")
@click.argument("number")
@pass_ctx
def disable(c: Ctx, tenant, number):
    """Switch IVR authentication off."""
    c.store.admin.put_extension(tenant, number, pin_enabled=False)
    click.echo(f"IVR authentication off for {number}")


@ext.command("unlock")
@click.argument("tenant")
@click.argument("number")
@pass_ctx
def unlock(c: Ctx, tenant, number):
    """Lift a PIN lockout and reset the failure count."""
    was = c.store.admin.unlock(tenant, number)
    click.echo(f"extension {number} unlocked" if was else f"extension {number} was not locked")


@ext.group("pin")
def pin():
    """PINs of an extension (several named holders may share one phone)."""


def read_pin(min_len: int, max_len: int) -> str:
    """From standard input when it is not a terminal, else a hidden prompt twice."""
    if not sys.stdin.isatty():
        value = sys.stdin.readline().strip()
    else:
        value = click.prompt("PIN", hide_input=True, confirmation_prompt="Repeat PIN")
    try:
        validate_pin(value, min_len, max_len)
    except PinFormatError as exc:
        raise InvalidInput(str(exc)) from None
    return value


@pin.command("set")
@click.argument("tenant")
@click.argument("number")
@click.option("--holder", default="default", show_default=True, help="Whose PIN this is (shown in audit and CDR).")
@pass_ctx
def pin_set(c: Ctx, tenant, number, holder):
    """Set a PIN, read from standard input or a hidden prompt (never an argument)."""
    settings = c.store.admin.get_tenant(tenant)
    c.store.admin.get_extension(tenant, number)  # fail before asking for the PIN
    value = read_pin(settings.pin_min_length, settings.pin_max_length)
    c.store.admin.set_pin_value(tenant, number, holder, value, c.pepper())
    del value
    click.echo(f"PIN set for {holder} on {number}")


@pin.command("remove")
@click.argument("tenant")
@click.argument("number")
@click.option("--holder", default="default", show_default=True)
@pass_ctx
def pin_remove(c: Ctx, tenant, number, holder):
    """Remove a holder's PIN."""
    c.store.admin.remove_pin(tenant, number, holder)
    click.echo(f"PIN of {holder} removed from {number}")


@pin.command("list")
@click.argument("tenant")
@click.argument("number")
@json_option
@pass_ctx
def pin_list(c: Ctx, tenant, number):
    """List PIN holders (names only)."""
    holders = sorted(c.store.admin.get_extension(tenant, number).pins)
    emit_json(holders) if c.json else table(["holder"], [[h] for h in holders])
