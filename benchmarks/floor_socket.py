"""The floor of socket mode on a real FreeSWITCH: a static `socket` session
served with nothing but the wire. Accept, `connect`, the channel's uuid and
dialled number out of the reply, then the handover Tollgate writes for an
allowed call nobody counts (the bound cancelled, a multiset as the body, the
bridge, the hangup if it fails, no Event-UUIDs) and the same release
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
import fcntl  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import termios  # noqa: E402

from gevent.server import StreamServer  # noqa: E402

CDR = "^^|tollgate_verdict=ALLOW|tollgate_reason=allowed|tollgate_class=national|hangup_after_bridge=true"


def header(text: str, name: str) -> str:
    start = text.find(f"\n{name}: ")
    if start < 0:
        return ""
    start += len(name) + 3
    return text[start:text.find("\n", start)]


def execute(app: str, arg: str) -> str:
    body = arg.encode()
    return (f"sendmsg\ncall-command: execute\nexecute-app-name: {app}\ncontent-type: text/plain\n"
            f"content-length: {len(body)}\n\n{arg}")


def unacknowledged(sock) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


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
            reply = data.decode("utf-8", "replace")
            uuid, dialed = header(reply, "Unique-ID"), header(reply, "variable_tollgate_dialed")
            handover = (f"api sched_del tollgate-{uuid}\n\n" + execute("multiset", CDR)
                        + execute("bridge", match.sub(route, dialed))
                        + "sendmsg\ncall-command: execute\nexecute-app-name: hangup\n"
                          "execute-app-arg: ${originate_disposition}\n\n")
            sock.sendall(handover.encode())
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
