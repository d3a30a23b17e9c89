"""`tollgate tenant ...`: tenants, their settings and class overrides."""

from __future__ import annotations

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, pairs, table
from controller.errors import InvalidInput


def parse_assignments(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise InvalidInput(f"expected SETTING=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


@click.group()
def tenant():
    """Tenants (customers of the PBX) and their settings."""


@tenant.command("create")
@click.argument("name")
@click.argument("settings", nargs=-1)
@json_option
@pass_ctx
def create(c: Ctx, name: str, settings: tuple[str, ...]):
    """Create tenant NAME, optionally with SETTING=VALUE pairs (e.g. country=DE)."""
    result = c.store.admin.create_tenant(name, parse_assignments(settings))
    emit_json(result.to_mapping()) if c.json else click.echo(f"tenant {name} created")


@tenant.command("set")
@click.argument("name")
@click.argument("settings", nargs=-1, required=True)
@json_option
@pass_ctx
def set_(c: Ctx, name: str, settings: tuple[str, ...]):
    """Change settings: tollgate tenant set acme pin_feature=on language=fr"""
    result = c.store.admin.update_tenant(name, parse_assignments(settings))
    emit_json(result.to_mapping()) if c.json else click.echo(f"tenant {name} updated")


@tenant.command("show")
@click.argument("name")
@json_option
@pass_ctx
def show(c: Ctx, name: str):
    """Show a tenant's settings."""
    settings = c.store.admin.get_tenant(name).to_mapping()
    emit_json(settings) if c.json else pairs(settings)


@tenant.command("list")
@json_option
@pass_ctx
def list_(c: Ctx):
    """List tenants."""
    names = c.store.admin.tenants()
    emit_json(names) if c.json else table(["tenant"], [[n] for n in names])


@tenant.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: removes every key of the tenant except its audit.")
@pass_ctx
def delete(c: Ctx, name: str, yes: bool):
    """Delete a tenant and all its data (the audit stream is kept)."""
    if not yes:
        raise InvalidInput("deleting a tenant removes all its data: add --yes to confirm")
    n = c.store.admin.delete_tenant(name)
    click.echo(f"tenant {name} deleted ({n} keys)")


@tenant.group("override")
def override():
    """E.164 prefixes forced into a class (e.g. +881 premium); they win over the numbering plan."""


@override.command("set")
@click.argument("name")
@click.argument("prefix")
@click.argument("call_class", metavar="CLASS")
@pass_ctx
def override_set(c: Ctx, name: str, prefix: str, call_class: str):
    c.store.admin.set_override(name, prefix, call_class)
    click.echo(f"{prefix} is now {call_class} for tenant {name}")


@override.command("remove")
@click.argument("name")
@click.argument("prefix")
@pass_ctx
def override_remove(c: Ctx, name: str, prefix: str):
    c.store.admin.remove_override(name, prefix)
    click.echo(f"override {prefix} removed")


@override.command("list")
@click.argument("name")
@json_option
@pass_ctx
def override_list(c: Ctx, name: str):
    rows = {p: cls.value for p, cls in sorted(c.store.admin.overrides(name).items())}
    emit_json(rows) if c.json else table(["prefix", "class"], rows.items())
