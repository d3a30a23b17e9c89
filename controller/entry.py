"""Console entry point.

The call-control commands run on gevent and talk to Redis with redis-py's
blocking sockets, so the standard library must be patched before anything
imports `socket`. Administration commands stay unpatched (and start faster).
"""

import sys

GEVENT_COMMANDS = {"run", "demo", "bench", "web"}


def main() -> None:
    # Any mention is enough: patching when not needed is harmless, missing it is not.
    if GEVENT_COMMANDS.intersection(sys.argv[1:]):
        from gevent import monkey

        monkey.patch_all()
    from controller.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
