"""The configuration file (TOML): an alternative to flags and environment variables.

    redis_url = "redis://127.0.0.1:6379/0"     # the global options at the top
    pepper_file = "/etc/tollgate/pepper"
    [run]                                       # one table per command, its options by name
    esl_host = "10.0.0.5"
    [web]
    listen = "0.0.0.0:8080"

Precedence: a flag, then the environment variable, then the file, then the
default (click's `default_map`). The file is checked when the command starts:
an unknown table or setting, or a value of the wrong type, stops it with one
line naming the file, the table and the setting. Secrets stay in their own
files (`pepper_file`, `webhook_secret_file`, `secret_file`), never here.
"""

from __future__ import annotations

import tomllib

import click

from controller.errors import ConfigError

SECTIONS = ("run", "web", "demo")
SHOWN = ("run", "web")
SECRET = frozenset({"esl_password"})  # never printed by `config show`


def load(ctx: click.Context, _param, path: str | None) -> str | None:
    """Eager callback of --config: fill ctx.default_map before any other option is read."""
    if not path:
        return path
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path}: not valid TOML: {exc}") from None
    ctx.default_map = check(ctx.command, data, path)
    return path


def _params(command: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in command.params if isinstance(p, click.Option) and p.name and p.expose_value
            and p.name not in ("config", "help")}


def check(group: click.Group, data: dict, path: str) -> dict:
    top = _params(group)
    out: dict = {}
    for key, value in data.items():
        if isinstance(value, dict):
            command = group.commands.get(key) if key in SECTIONS else None
            if command is None:
                raise ConfigError(f"config {path}: no table [{key}] (tables: {', '.join(SECTIONS)})")
            out[key] = _values(command, value, path, f"[{key}] ")
        else:
            out.update(_values(group, {key: value}, path, "", top))
    return out


def _values(command: click.Command, values: dict, path: str, where: str, known=None) -> dict:
    known = known or _params(command)
    out = {}
    for key, value in values.items():
        param = known.get(key)
        if param is None:
            raise ConfigError(f"config {path}: {where}has no setting {key!r} (settings: {', '.join(sorted(known))})")
        if getattr(param, "multiple", False):  # e.g. esl = ["10.0.0.5:8021", "10.0.0.6:8021"]
            if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
                raise ConfigError(f"config {path}: {where}{key} must be a list of values")
            items = value
        elif isinstance(value, (dict, list)):
            raise ConfigError(f"config {path}: {where}{key} must be a single value")
        else:
            items = [value]
        for item in items:
            try:
                param.type.convert(item if not isinstance(item, bool) or param.is_flag else str(item).lower(),
                                   param, None)
            except click.BadParameter as exc:
                raise ConfigError(f"config {path}: {where}{key} = {item!r}: {exc.format_message()}") from None
        out[key] = value
    return out


def effective(group: click.Group, ctx: click.Context) -> dict:
    """Every setting of the file's tables as this process would use it (file, environment, default)."""
    out: dict = {}
    for name, param in _params(group).items():
        value = ctx.params.get(name)  # as parsed: a flag given on this command line wins
        if value is None:
            value = _resolve(param, ctx, ctx.default_map or {})
        if value is not None:
            out[name] = value
    for section in SHOWN:
        command = group.commands[section]
        sub = click.Context(command, parent=ctx, info_name=section,
                            default_map=(ctx.default_map or {}).get(section))
        values = {}
        for name, param in _params(command).items():
            if param.name.endswith("_redis_url") or name in SECRET:
                continue  # the same as the global one; a password
            value = _resolve(param, sub, sub.default_map or {})
            if value is not None:
                values[name] = value
        out[section] = values
    return out


def _resolve(param: click.Option, ctx: click.Context, defaults: dict):
    value = param.value_from_envvar(ctx) if param.multiple else param.resolve_envvar_value(ctx)
    if value is None and param.name in defaults:
        value = defaults[param.name]
    if value is None:
        value = param.get_default(ctx, call=True)
    if param.multiple:  # None, or click's "no default" marker, or a list
        return list(param.type_cast_value(ctx, value)) if isinstance(value, (list, tuple)) and value else None
    if value is None or isinstance(value, tuple):
        return None
    return param.type_cast_value(ctx, value) if not isinstance(value, (bool, int, float)) else value


@click.group("config")
def config():
    """The configuration file (--config / TOLLGATE_CONFIG)."""


@config.command("show")
@click.pass_context
def show(ctx: click.Context):
    """Print the settings in effect (file, environment, defaults) as a configuration file."""
    import tomli_w

    root = ctx.find_root()
    click.echo(tomli_w.dumps(effective(root.command, root)), nl=False)
