"""The floor of socket mode on a real FreeSWITCH: a static `socket` session
served with nothing but the wire. Accept, `connect`, the channel's uuid and
dialled number out of the reply, then the handover Tollgate writes for an
allowed call nobody counts (the bound cancelled, a multiset as the body, the
bridge, the hangup if it fails, no Event-UUIDs, built by controller.freeswitch.commands)
and the same release
(closed once FreeSWITCH has acknowledged every byte). No Redis, no decision,
no record, no log line, no metric. `benchmarks.realfs --mode socket` puts it
in the controller's place for a few segments: the controller CPU per call of
a program that does only what FreeSWITCH needs, on the same switch, at the
same rates.

`python -m benchmarks.floor_socket --listen HOST:PORT --match REGEX --route TEMPLATE`
(the route as a `re.sub` template of the dialled number)."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402

from gevent.server import StreamServer  # noqa: E402

from controller.freeswitch import commands  # noqa: E402
from controller.freeswitch.esl_socket import unacknowledged  # noqa: E402
from controller.freeswitch.framing import LazyHeaders  # noqa: E402

CDR = {"tollgate_verdict": "ALLOW", "tollgate_reason": "allowed", "tollgate_class": "national",
       "hangup_after_bridge": "true"}


def handover(uuid: str, dial_string: str) -> bytes:
    """What Tollgate writes to a static session for an allowed call nobody
    counts (CallSession.start_many with follow=False, flow_actions._bridge),
    built by the same commands module."""
    steps = [commands.multiset(CDR), commands.bridge(dial_string), commands.hangup_if_bridge_fails()]
    return commands.wire([commands.cancel_bound(uuid),
                          *(commands.execute(app, arg, None, lock=False) for app, arg in steps)])


def server(listen: tuple[str, int], match: re.Pattern, route: str) -> StreamServer:
    def handle(sock, _address) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(10)
        try:
            sock.sendall(b"connect\n\n")
            data = b""
            while b"\n\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            # Read as the controller reads it (two lookups, values decoded).
            reply = LazyHeaders(data.decode("utf-8", "replace"))
            uuid, dialed = reply.get("Unique-ID", ""), reply.get("variable_tollgate_dialed", "")
            sock.sendall(handover(uuid, match.sub(route, dialed)))
            # Closed once FreeSWITCH holds it all, as SocketSession.release does
            # (at once where that cannot be known).
            while unacknowledged(sock) and sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            sock.close()

    return StreamServer(listen, handle)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--match", required=True)
    ap.add_argument("--route", required=True)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    floor = server((host, int(port)), re.compile(args.match), args.route)
    floor.start()
    print(f"floor: started in 0.0s, listening on {host}:{floor.server_port}", flush=True)
    floor.serve_forever()


if __name__ == "__main__":
    main()
