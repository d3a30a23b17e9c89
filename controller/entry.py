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
        import gevent
        from gevent import monkey

        monkey.patch_all()
        # Every call is a greenlet, and by default gevent records who spawned
        # each one and the ten frames above the spawn (for its debugging
        # tools, which nothing here uses): 8 us of the 11 a spawn costs,
        # per call, in both modes.
        gevent.config.track_greenlet_tree = False
    from controller.cli import main as cli_main

    sys.exit(cli_main())


if __name__ == "__main__":
    main()
