"""`tollgate run` (the controller) and `tollgate demo` (controller + simulator).

The heavy imports (gevent, greenswitch) happen inside the commands so that
administration commands start fast and never patch the standard library.
"""

from __future__ import annotations

import os

import click

from controller.cli.context import Ctx, load_pepper, pass_ctx, read_secret


def default_state_dir() -> str:
    """systemd's StateDirectory= (it sets $STATE_DIRECTORY), else the user's
    state directory (XDG Base Directory)."""
    if os.environ.get("STATE_DIRECTORY"):
        return os.environ["STATE_DIRECTORY"].split(":")[0]
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "tollgate")


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not HOST:PORT") from None


@click.command()
@click.option("--mode", type=click.Choice(["inbound", "socket"]), default="inbound", show_default=True,
              envvar="TOLLGATE_MODE", help="inbound: connect to FreeSWITCH's Event Socket and take parked "
              "calls; socket: serve the dialplan's `socket` application.")
@click.option("--esl-host", envvar="TOLLGATE_ESL_HOST", default="127.0.0.1", show_default=True)
@click.option("--esl-port", envvar="TOLLGATE_ESL_PORT", default=8021, show_default=True, type=int)
@click.option("--esl", "esl_nodes", multiple=True, envvar="TOLLGATE_ESL", metavar="HOST:PORT",
              help="A FreeSWITCH node's Event Socket; repeat for each node this controller serves, each "
              "on its own connection (env: space-separated). Replaces --esl-host/--esl-port.")
@click.option("--esl-password", envvar="TOLLGATE_ESL_PASSWORD", default="ClueCon", show_default=True)
@click.option("--listen", envvar="TOLLGATE_LISTEN", default="127.0.0.1:8084", show_default=True,
              help="socket mode: address the `socket` application connects to.")
@click.option("--controller-id", envvar="TOLLGATE_CONTROLLER_ID", default=None,
              help="Name of this controller in claims and audit (default: host:pid).")
@click.option("--sound-root", envvar="TOLLGATE_SOUND_ROOT", default=None,
              help="Directory holding the prompts (default: the packaged ones).")
@click.option("--max-calls", envvar="TOLLGATE_MAX_CALLS", default=20000, show_default=True, type=int)
@click.option("--log-level", envvar="TOLLGATE_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", envvar="TOLLGATE_LOG_FORMAT", default="text", show_default=True,
              type=click.Choice(["text", "json"]))
@click.option("--metrics-address", envvar="TOLLGATE_METRICS_ADDRESS", default=None,
              help="HOST:PORT for /metrics, /healthz and /readyz (off by default).")
@click.option("--call-bound", envvar="TOLLGATE_CALL_BOUND", default=120.0, show_default=True,
              type=click.FloatRange(5, 3600), help="Seconds from park to verdict before the watchdog hangs up.")
@click.option("--recovery-interval", envvar="TOLLGATE_RECOVERY_INTERVAL", default=30.0, show_default=True,
              type=click.FloatRange(0.2, 3600), help="Seconds between scans for managed calls nobody handles.")
@click.option("--heartbeat-interval", envvar="TOLLGATE_HEARTBEAT_INTERVAL", default=2.0, show_default=True,
              type=click.FloatRange(0.1, 60), help="Seconds between liveness beats in Redis; a controller "
              "silent for three beats is dead and its calls are taken over.")
@click.option("--shutdown-grace", envvar="TOLLGATE_SHUTDOWN_GRACE", default=30.0, show_default=True,
              type=click.FloatRange(0, 600), help="On SIGTERM, seconds to let calls in progress finish.")
@click.option("--redis-url", "run_redis_url", default=None,
              help="Same as the global option (either place works).")
@click.option("--webhook-url", envvar="TOLLGATE_WEBHOOK_URL", default="",
              help="Alerts are POSTed here as JSON signed with HMAC-SHA256 (off unless set).")
@click.option("--webhook-secret-file", envvar="TOLLGATE_WEBHOOK_SECRET_FILE", default=None,
              help="File holding the webhook's HMAC key (or env TOLLGATE_WEBHOOK_SECRET).")
@click.option("--state-dir", envvar="TOLLGATE_STATE_DIR", default=default_state_dir,
              show_default="$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/tollgate or ~/.local/state/tollgate",
              help="Where audit entries that wait for Redis are kept (audit-spool.<controller id>.jsonl), so "
                   "that a controller killed while Redis is down writes them after its next start.")
@pass_ctx
def run(c: Ctx, run_redis_url, mode, esl_host, esl_port, esl_nodes, esl_password, listen, controller_id, sound_root, max_calls,
        log_level, log_format, metrics_address, call_bound, recovery_interval, heartbeat_interval,
        shutdown_grace, webhook_url, webhook_secret_file, state_dir):
    """Run the controller until SIGTERM/SIGINT."""
    from controller.app import Config, serve_forever

    c.redis_url = run_redis_url or c.redis_url

    cfg = Config(
        mode=mode, esl_host=esl_host, esl_port=esl_port, esl_password=esl_password,
        esl_nodes=_nodes(esl_nodes),
        listen=_hostport(listen), redis_url=c.redis_url,
        pepper=load_pepper(c.pepper_file, embedded=not c.redis_url),
        controller_id=controller_id, sound_root=sound_root, max_calls=max_calls,
        log_level=log_level, log_format=log_format, call_bound=call_bound,
        recovery_interval=recovery_interval, heartbeat_interval=heartbeat_interval,
        shutdown_grace=shutdown_grace,
        metrics_address=_hostport(metrics_address) if metrics_address else None,
        webhook_url=webhook_url, webhook_secret=_webhook_secret(webhook_url, webhook_secret_file),
        state_dir=state_dir,
    )
    serve_forever(cfg)


def _nodes(values: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    nodes = tuple(dict.fromkeys(_hostport(v) for v in values))  # a node named twice is one node
    if any(not 0 < port < 65536 for _, port in nodes):
        raise click.BadParameter("an Event Socket port is between 1 and 65535", param_hint="--esl")
    return nodes


def _webhook_secret(url: str, path: str | None) -> bytes:
    if not url:
        return b""
    secret = read_secret(path, "TOLLGATE_WEBHOOK_SECRET", "webhook secret")
    if len(secret) < 16:
        raise click.BadParameter("a webhook needs a secret of at least 16 bytes (--webhook-secret-file "
                                 "or TOLLGATE_WEBHOOK_SECRET): receivers must be able to check the signature")
    return secret


@click.command()
@click.option("--mode", type=click.Choice(["inbound", "socket"]), default="inbound", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--verbose", is_flag=True, help="Show the controller's log.")
@click.option("--web/--no-web", default=True, show_default=True,
              help="Then serve the web administration on the demo's store until Ctrl-C (not with --json).")
@click.option("--web-listen", envvar="TOLLGATE_WEB_LISTEN", default="127.0.0.1:8080", show_default=True)
def demo(mode, as_json, verbose, web, web_listen):
    """Start the FreeSWITCH simulator, the embedded store and the real controller,
    provision a sample tenant from the product documents, place scripted calls
    and print what happened to each."""
    from controller.demo import run_demo

    raise SystemExit(run_demo(mode=mode, as_json=as_json, verbose=verbose,
                              web_listen=_hostport(web_listen) if web and not as_json else None))
