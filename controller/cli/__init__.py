"""The `tollgate` command.

Errors: bad input (usage, validation, not found) exits 2, anything else that
Tollgate expected exits 1; both print one line on stderr, never a traceback.
"""

from __future__ import annotations

import sys

import click
import redis

from controller.cli.alerts import alerts
from controller.cli.audit import audit
from controller.cli import config as config_file
from controller.cli.check import check
from controller.cli.context import Ctx, pass_ctx
from controller.cli.entries import lists, numbers
from controller.cli.ext import ext
from controller.cli.limits import limits
from controller.cli.rules import rules
from controller.cli.tenant import tenant
from controller.cli.users import users
from controller.errors import AlreadyExists, InvalidInput, NotFound, TollgateError

BAD_INPUT = (InvalidInput, NotFound, AlreadyExists)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", envvar="TOLLGATE_CONFIG", type=click.Path(dir_okay=False), is_eager=True,
              expose_value=False, callback=config_file.load,
              help="A TOML file of settings (env TOLLGATE_CONFIG); flags and environment variables win over it.")
@click.option("--redis-url", envvar="TOLLGATE_REDIS_URL", default=None,
              help="Redis URL (env TOLLGATE_REDIS_URL); default: an embedded in-memory store.")
@click.option("--pepper-file", envvar="TOLLGATE_PEPPER_FILE", default=None,
              help="File holding the PIN pepper (or env TOLLGATE_PEPPER); never stored in Redis.")
@click.pass_context
def cli(ctx: click.Context, redis_url, pepper_file):
    """Tollgate: outbound-call authorization for FreeSWITCH."""
    ctx.obj = Ctx(redis_url=redis_url, pepper_file=pepper_file)


@cli.command("unlock")
@click.argument("tenant_name", metavar="TENANT")
@click.argument("number")
@pass_ctx
def unlock(c: Ctx, tenant_name, number):
    """Lift a PIN lockout (same as `tollgate ext unlock`)."""
    was = c.store.admin.unlock(tenant_name, number)
    click.echo(f"extension {number} unlocked" if was else f"extension {number} was not locked")


for command in (tenant, ext, lists, numbers, rules, limits, check, audit, alerts, users, config_file.config):
    cli.add_command(command)


def _register_optional() -> None:
    # The call-control commands import gevent; keep them out of the module
    # import path of the plain administration commands.
    from controller.cli.calls import calls
    from controller.cli.doctor import doctor
    from controller.cli.run import demo, run
    from controller.cli.web import web

    for command in (run, demo, calls, web, doctor):
        cli.add_command(command)


_register_optional()


def main(argv: list[str] | None = None) -> int:
    try:
        rv = cli.main(args=argv, prog_name="tollgate", standalone_mode=False)
        return rv if type(rv) is int else 0  # a command's click Exit(code) comes back as its code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        print("tollgate: aborted", file=sys.stderr)
        return 1
    except click.ClickException as exc:
        print(f"tollgate: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except BAD_INPUT as exc:
        print(f"tollgate: error: {exc}", file=sys.stderr)
        return 2
    except TollgateError as exc:
        print(f"tollgate: error: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"tollgate: error: Redis: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
