"""What every command shares: the store, the pepper and the --json switch."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field

import click

from controller.errors import ConfigError
from controller.store import Store


@dataclass
class Ctx:
    redis_url: str | None
    pepper_file: str | None
    json: bool = False
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.redis_url, actor=f"cli:{os.environ.get('USER', 'operator')}")
        return self._store

    def pepper(self) -> bytes:
        return load_pepper(self.pepper_file, embedded=not self.redis_url)


_EPHEMERAL_PEPPER: bytes | None = None


def load_pepper(pepper_file: str | None, *, embedded: bool) -> bytes:
    """The PIN pepper: from a file, from TOLLGATE_PEPPER, or (embedded store only) a random one."""
    global _EPHEMERAL_PEPPER
    path = pepper_file or os.environ.get("TOLLGATE_PEPPER_FILE")
    if path:
        try:
            with open(path, "rb") as fh:
                data = fh.read().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read pepper file {path}: {exc.strerror}") from None
        if len(data) < 16:
            raise ConfigError(f"pepper file {path} holds fewer than 16 bytes")
        return data
    env = os.environ.get("TOLLGATE_PEPPER", "")
    if env:
        if len(env) < 16:
            raise ConfigError("TOLLGATE_PEPPER is shorter than 16 characters")
        return env.encode()
    if embedded:
        if _EPHEMERAL_PEPPER is None:
            print("tollgate: warning: no TOLLGATE_PEPPER: using a random pepper for the embedded store",
                  file=sys.stderr)
            _EPHEMERAL_PEPPER = secrets.token_bytes(32)
        return _EPHEMERAL_PEPPER
    raise ConfigError("no PIN pepper: set TOLLGATE_PEPPER or TOLLGATE_PEPPER_FILE (kept outside Redis)")


pass_ctx = click.make_pass_decorator(Ctx)


def json_option(f):
    def set_json(ctx: click.Context, _param, value: bool):
        if value:
            ctx.find_object(Ctx).json = True
        return value

    return click.option("--json", "as_json", is_flag=True, expose_value=False, callback=set_json,
                        help="Print JSON for scripts.")(f)


def read_secret(path: str | None, env: str, what: str) -> bytes:
    """A secret from a file (`path`) or the environment variable `env`; b"" when neither is set."""
    if path:
        try:
            with open(path, "rb") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise click.BadParameter(f"cannot read the {what} file: {exc.strerror}") from None
    return os.environ.get(env, "").encode()
