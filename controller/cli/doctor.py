"""`tollgate doctor`: read-only checks of a FreeSWITCH node's setup for Tollgate."""

from __future__ import annotations

import click

from controller.cli.run import _hostport


@click.command()
@click.option("--esl", "esl_nodes", multiple=True, envvar="TOLLGATE_ESL", metavar="HOST:PORT",
              help="The node's Event Socket; repeat to check several nodes (default: 127.0.0.1:8021).")
@click.option("--esl-password", envvar="TOLLGATE_ESL_PASSWORD", default="ClueCon", show_default=True)
@click.option("--mode", type=click.Choice(["inbound", "socket"]), default="inbound", show_default=True,
              envvar="TOLLGATE_MODE", help="How the controller takes calls (which dialplan to expect).")
@click.option("--context", default="default", show_default=True,
              help="The dialplan context your users' outbound calls run in.")
@click.option("--sound-root", envvar="TOLLGATE_SOUND_ROOT", default=None,
              help="Where the prompts are on the node (default: the packaged ones' path).")
@click.option("--call-bound", envvar="TOLLGATE_CALL_BOUND", default=120.0, show_default=True,
              type=click.FloatRange(5, 3600), help="The controller's --call-bound, which park_timeout must exceed.")
def doctor(esl_nodes, esl_password, mode, context, sound_root, call_bound):
    """Connect to FreeSWITCH's Event Socket and check, changing nothing, that
    everything Tollgate needs is there; print what to fix, one line each.
    Exits 1 when something must be fixed."""
    import logging

    from controller.ops.doctor import diagnose

    esl_log = logging.getLogger("tollgate.esl")
    level = esl_log.level
    esl_log.setLevel(logging.ERROR)  # the doctor closing its own connection is not news
    failed = False
    try:
        for host, port in [_hostport(v) for v in esl_nodes] or [("127.0.0.1", 8021)]:
            for finding in diagnose(host, port, esl_password, mode=mode, context=context, sound_root=sound_root,
                                    call_bound=call_bound):
                click.echo(finding.line())
                failed |= finding.level == "FAIL"
    finally:
        esl_log.setLevel(level)
    raise click.exceptions.Exit(1 if failed else 0)
