"""`tollgate demo`: the real controller against the built-in FreeSWITCH simulator
and the embedded store, on a sample tenant provisioned from the two product
documents, with a scripted set of calls and a table of what happened."""

from __future__ import annotations

import json
import logging
import secrets
import time

import gevent

from controller.ops import logs
from controller.app import Config, Controller
from controller.simulator import Caller, Simulator
from controller.store import Store
from policies.pin import hash_pin

# (who, extension FreeSWITCH authenticated, dialed, caller script, what it shows
#  [, the caller ID the phone presents when it is not its own number])
SCRIPT = [
    ("Élise (direction list)", "1001", "0899 12 34 56", Caller(), "authorized person reaches a premium number"),
    ("Karl (sales list)", "1002", "0899 12 34 56", Caller(), "person on another list is refused"),
    ("Élise (direction list)", "1001", "00 44 20 7946 0000", Caller(), "authorized international call"),
    ("Karl (sales list)", "1002", "+44 20 7946 0000", Caller(), "international refused"),
    ("Karl (sales list)", "1002", "01 40 00 00 00", Caller(), "national call, no restriction"),
    ("shared phone", "1003", "01 40 00 00 00", Caller(keys=["2468"]), "IVR authentication: right PIN"),
    ("shared phone", "1003", "06 12 34 56 78", Caller(keys=["1111", "1357"]),
     "second person's PIN after a wrong one"),
    ("shared phone", "1003", "1001", Caller(), "internal call: no PIN"),
    ("shared phone", "1003", "*97", Caller(), "voicemail: no PIN"),
    ("shared phone", "1003", "0800 123 456", Caller(), "toll-free: no PIN"),
    ("lobby phone", "1004", "01 40 00 00 00", Caller(keys=["0000", "9999", "1234"]), "three wrong PINs"),
    ("lobby phone", "1004", "112", Caller(), "emergency: always, no PIN"),
    ("lobby phone", "1004", "06 12 34 56 78", Caller(hangup_at="prompt", hangup_delay=0.3),
     "caller hangs up during the prompt"),
    ("Élise (direction list)", "1001", "3949", Caller(), "premium short code, authorized"),
    ("unlisted phone", "1005", "0899 12 34 56", Caller(), "presents Élise's 1001 as caller ID: refused", "1001"),
]


def provision(store: Store, pepper: bytes) -> None:
    a = store.admin
    # French seed: authorized numbers, one list per role.
    a.create_tenant("acme", {"country": "FR", "pin_feature": "on", "language": "fr"})
    for n, name in (("1001", "Élise Dupont"), ("1002", "Karl Weber"), ("1003", "Accueil (partagé)"),
                    ("1004", "Hall")):
        a.put_extension("acme", n, create=True, display_name=name)
    a.create_list("acme", "direction")
    a.create_list("acme", "ventes")
    a.add_entry("acme", "direction", "Élise", "Dupont", "1001")
    a.add_entry("acme", "ventes", "Karl", "Weber", "1002")
    a.add_rule("acme", "premium-international", "allow", classes=["premium", "international"],
               lists=["direction"])
    # German seed: IVR authentication on a shared phone, several named PINs.
    for n in ("1003", "1004"):
        a.put_extension("acme", n, pin_enabled=True)
    a.set_pin("acme", "1003", "Anna", hash_pin("2468", pepper))
    a.set_pin("acme", "1003", "Ben", hash_pin("1357", pepper))
    a.set_pin("acme", "1004", "Hall", hash_pin("8642", pepper))


def run_demo(mode: str = "inbound", as_json: bool = False, verbose: bool = False,
             web_listen: tuple[str, int] | None = None) -> int:
    logs.setup("info" if verbose else "error")
    if not verbose:
        logging.getLogger("tollgate").setLevel(logging.ERROR)
    pepper = secrets.token_bytes(32)
    sim = Simulator(scale=0.02).start()
    store = Store.open(None, actor="demo", owner="demo", warn=False)
    provision(store, pepper)
    results: dict[str, dict] = {}
    ctl = Controller(Config(mode=mode, esl_port=sim.port, listen=("127.0.0.1", 0), pepper=pepper,
                            controller_id="demo"), store=store)
    ctl.svc.observers.append(lambda rec: results.__setitem__(rec["uuid"], rec))
    ctl.start()
    _wait(lambda: ctl.connected and (mode == "socket" and ctl.server.bound_port or sim.inbound_clients()), 10)
    channels = []
    for who, ext, dialed, caller, what, *presented in SCRIPT:
        kw = {}
        if mode == "socket":
            kw = {"mode": "socket", "socket_address": ("127.0.0.1", ctl.server.bound_port)}
        ch = sim.place_call(dialed, caller_id=presented[0] if presented else ext, user=ext, caller=caller, **kw)
        channels.append((who, ext, dialed, what, ch))
        gevent.sleep(0.01)
    ok = _wait(lambda: not sim.live() and len(results) >= len(channels), 30)
    rows = []
    for who, ext, dialed, what, ch in channels:
        rec = results.get(ch.uuid, {})
        rows.append({
            "caller": f"{ext} {who}", "dialed": dialed, "class": rec.get("class", "?"),
            "verdict": rec.get("verdict", "?"), "reason": rec.get("reason", "?"),
            "pin_holder": rec.get("pin_holder", ""), "cause": ch.hangup_cause or "(up)",
            # How the call ended, as FreeSWITCH (here the simulator) saw it; the audit's
            # own outcome stops at what Tollgate did (e.g. bridge_sent).
            "outcome": ch.outcome or rec.get("outcome", "?"), "audit_outcome": rec.get("outcome", "?"),
            "pin_tries": rec.get("pin_tries", "0"),
            "decision_ms": rec.get("decision_ms", ""), "scenario": what,
        })
    ctl.shutdown(grace=2)
    sim.stop()
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        _print(rows, mode)
    if not ok:
        print("demo: not every call finished in time", flush=True)
        return 1
    if web_listen:
        serve_web(store, pepper, web_listen)
    return 0


def serve_web(store: Store, pepper: bytes, listen: tuple[str, int]) -> None:
    """The web administration on the demo's store, until Ctrl-C: a provider
    account `demo` with a one-time login link (no password is ever printed)."""
    from controller.web import create_app
    from controller.web.server import serve, serve_until_signalled

    host, port = listen
    store.accounts.add("demo", "provider", "", secrets.token_urlsafe(24), actor="demo")
    store.accounts.add("acme-admin", "admin", "acme", secrets.token_urlsafe(24), actor="demo")
    app = create_app(store, pepper, secure_cookies=False)  # plain HTTP on loopback, for the try-out
    try:
        server = serve(app, host, port)
    except OSError:
        server = serve(app, host, 0)  # the port is taken: any free one
    base = f"http://{host}:{server.server_port}"
    print(f"\nWeb administration: {base}/  (sample tenant acme; API: {base}/api/v1/openapi.json)")
    print(f"One-time login (provider staff, valid 1 hour, once): {base}/login/once/"
          f"{store.accounts.once_link('demo', actor='demo')}")
    print(f"One-time login (acme's administrator): {base}/login/once/"
          f"{store.accounts.once_link('acme-admin', actor='demo')}")
    print("Ctrl-C stops the demo.", flush=True)
    serve_until_signalled(server, grace=2)


def _print(rows, mode) -> None:
    cols = [("caller", "CALLER"), ("dialed", "DIALED"), ("class", "CLASS"), ("verdict", "VERDICT"),
            ("reason", "REASON"), ("outcome", "OUTCOME"), ("cause", "HANGUP CAUSE"), ("pin_tries", "PIN TRIES"),
            ("pin_holder", "PIN OF"), ("decision_ms", "DECIDED (ms)"), ("scenario", "SCENARIO")]
    width = {k: max(len(h), *(len(str(r[k])) for r in rows)) for k, h in cols}
    print(f"Tollgate demo: {len(rows)} calls through the FreeSWITCH simulator ({mode} mode), embedded store\n")
    print("  ".join(h.ljust(width[k]) for k, h in cols))
    for r in rows:
        print("  ".join(str(r[k]).ljust(width[k]) for k, _ in cols))
    print("\nDECIDED = time from CHANNEL_PARK to the verdict (PIN dialogs included; prompts are time-scaled).")
    print("Try: tollgate check --help, tollgate run --help")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(0.02)
    return False
