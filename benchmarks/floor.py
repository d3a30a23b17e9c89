"""The floor: a minimal greenswitch application that bridges every parked call
without any decision. Tollgate's cost is quoted as a ratio to this."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import greenswitch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--esl-port", type=int, required=True)
    args = ap.parse_args()
    esl = greenswitch.InboundESL("127.0.0.1", args.esl_port, "ClueCon")
    esl.connect()
    def bridge(headers: dict) -> None:
        channel = headers["Unique-ID"]
        dest = headers.get("variable_tollgate_dialed", "0")
        # Plain greenswitch, as its README shows it: no lock (a short message
        # on loopback does not block, so its reply order holds here).
        for app, arg in (("set", "hangup_after_bridge=true"), ("bridge", f"sofia/gateway/default/{dest}")):
            esl.send(f"sendmsg {channel}\ncall-command: execute\nexecute-app-name: {app}\n"
                     f"execute-app-arg: {arg}\nEvent-UUID: {uuid.uuid4()}")

    def on_park(event) -> None:
        gevent.spawn(bridge, event.headers)

    esl.register_handle("CHANNEL_PARK", on_park)
    esl.send("event plain CHANNEL_PARK")
    esl.send("filter variable_tollgate_managed true")
    gevent.wait()


if __name__ == "__main__":
    main()
