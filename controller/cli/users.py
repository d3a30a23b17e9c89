"""`tollgate users ...`: the people of the web administration and their API tokens."""

from __future__ import annotations

import os
import sys

import click

from controller.cli.context import Ctx, json_option, pass_ctx
from controller.cli.output import emit_json, table


def _actor() -> str:
    return f"cli:{os.environ.get('USER', 'operator')}"


def read_password() -> str:
    """From standard input when it is not a terminal, else a hidden prompt twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt="Repeat password")


@click.group()
def users():
    """Accounts of the web administration (provider staff, tenant administrators)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["provider", "admin"]), required=True,
              help="provider: every tenant and the provider's switches; admin: one tenant.")
@click.option("--tenant", default="", help="The tenant an admin manages.")
@pass_ctx
def add(c: Ctx, name, role, tenant):
    """Add an account; the password is read from standard input or a hidden prompt."""
    c.store.accounts.add(name, role, tenant, read_password(), actor=_actor())
    click.echo(f"user {name} added ({role}{' of ' + tenant if tenant else ''})")


@users.command("list")
@json_option
@pass_ctx
def list_(c: Ctx):
    found = [u.to_json() for u in c.store.accounts.users()]
    emit_json(found) if c.json else table(["user", "role", "tenant"],
                                          [[u["name"], u["role"], u["tenant"] or "*"] for u in found])


@users.command("passwd")
@click.argument("name")
@click.option("--keep-tokens", is_flag=True,
              help="Keep the account's API tokens (a routine change); by default they are revoked too.")
@pass_ctx
def passwd(c: Ctx, name, keep_tokens):
    """Set a new password: ends the account's browser sessions and revokes its
    API tokens (whoever knew the old password could have made some)."""
    c.store.accounts.require(name)
    revoked = c.store.accounts.set_password(name, read_password(), actor=_actor(), keep_tokens=keep_tokens)
    kept = len(c.store.accounts.tokens(name))
    click.echo(f"password of {name} changed; sessions ended, {revoked} API tokens revoked"
               + (f", {kept} kept" if kept else ""))


@users.command("remove")
@click.argument("name")
@pass_ctx
def remove(c: Ctx, name):
    """Remove an account, its sessions and its tokens."""
    c.store.accounts.remove(name, actor=_actor())
    click.echo(f"user {name} removed")


@users.command("login-link")
@click.argument("name")
@click.option("--base-url", default="http://127.0.0.1:8080", show_default=True)
@pass_ctx
def login_link(c: Ctx, name, base_url):
    """A link that logs NAME in once, within an hour (for a first login)."""
    token = c.store.accounts.once_link(name, actor=_actor())
    click.echo(f"{base_url.rstrip('/')}/login/once/{token}")


@users.group("token")
def token():
    """API tokens for scripts: shown once, stored hashed, revocable."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
@pass_ctx
def token_create(c: Ctx, name, label):
    token_id, value = c.store.accounts.create_token(name, label, actor=_actor())
    click.echo(f"token {token_id} for {name} (shown once, keep it safe):")
    click.echo(value)


@token.command("list")
@click.argument("name")
@json_option
@pass_ctx
def token_list(c: Ctx, name):
    rows = c.store.accounts.tokens(name)
    emit_json(rows) if c.json else table(["id", "label", "created", "last used"],
                                         [[r["id"], r["label"], r["created"], r["last_used"]] for r in rows])


@token.command("revoke")
@click.argument("name")
@click.argument("token_id")
@pass_ctx
def token_revoke(c: Ctx, name, token_id):
    c.store.accounts.revoke_token(name, token_id, actor=_actor())
    click.echo(f"token {token_id} of {name} revoked")
