"""`tollgate web`: the web administration and the HTTP API (/api/v1)."""

from __future__ import annotations

import sys

import click

from controller.cli.context import Ctx, load_pepper, pass_ctx, read_secret
from controller.cli.run import _hostport


def _secret(path: str | None) -> bytes | None:
    data = read_secret(path, "TOLLGATE_WEB_SECRET", "session secret")
    if not data:
        print("tollgate: warning: no TOLLGATE_WEB_SECRET: sessions end when this process stops and are not "
              "shared with other web processes", file=sys.stderr)
        return None
    if len(data) < 32:
        raise click.BadParameter("the session secret needs at least 32 bytes")
    return data


@click.command()
@click.option("--listen", envvar="TOLLGATE_WEB_LISTEN", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT to serve the pages and the API on.")
@click.option("--secret-file", envvar="TOLLGATE_WEB_SECRET_FILE", default=None,
              help="File with the key that signs session cookies (or env TOLLGATE_WEB_SECRET; >= 32 bytes).")
@click.option("--insecure-cookies", is_flag=True, envvar="TOLLGATE_WEB_INSECURE_COOKIES",
              help="Send cookies over plain HTTP too (only for a try-out on loopback, never behind a real name).")
@click.option("--trust-proxy", is_flag=True, envvar="TOLLGATE_WEB_TRUST_PROXY",
              help="Take the client address and scheme from one reverse proxy's X-Forwarded-* headers.")
@click.option("--log-level", envvar="TOLLGATE_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--redis-url", "web_redis_url", default=None, help="Same as the global option.")
@pass_ctx
def web(c: Ctx, listen, secret_file, insecure_cookies, trust_proxy, log_level, web_redis_url):
    """Serve the web administration and the HTTP API until SIGTERM/SIGINT."""
    from controller.ops import logs
    from controller.store import Store
    from controller.web import create_app
    from controller.web.server import serve, serve_until_signalled

    c.redis_url = web_redis_url or c.redis_url
    logs.setup(log_level)
    host, port = _hostport(listen)
    store = Store.open(c.redis_url, actor="web")
    app = create_app(store, load_pepper(c.pepper_file, embedded=not c.redis_url), secret_key=_secret(secret_file),
                     secure_cookies=not insecure_cookies, trust_proxy=trust_proxy)
    server = serve(app, host, port)
    click.echo(f"tollgate web: http://{host}:{server.server_port}/ (API: /api/v1, /api/v1/openapi.json)", err=True)
    serve_until_signalled(server, grace=5)
