"""`tollgate doctor`: is this FreeSWITCH node ready for Tollgate? Read-only.

It connects to the node's Event Socket like the controller does and asks,
with mod_commands' `api` commands, what the controller relies on: the
version, the modules, the Event Socket subscription and filter, the dialplan
context that marks and parks (or hands over) outbound calls, the park
timeout, the prompts for each language, and in socket mode the `socket`
application's target. Nothing is changed on the node: the subscription and
the filter only apply to the doctor's own connection.

Each finding is one line: ok, warn (works, but not as it should) or FAIL
(what to fix). `analyse_context` is pure and takes the context's XML as
`xml_locate` returns it.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from controller.freeswitch import commands
from controller.errors import CommandFailed, ConfigError
from controller.ops.prompt_catalog import LANGUAGES, Catalog

# Why each module: the applications the flow runs, the claim two controllers
# share when Redis is down, the prompts' file format.
MODULES = {"mod_dptools": "park, bridge, play_and_get_digits and hangup",
           "mod_hash": "the claim two controllers share on the node when Redis is down, hash insert_ifempty",
           "mod_sndfile": "the prompts (.wav files)"}
MARK = "tollgate_managed=true"


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "warn" or "FAIL"
    text: str

    def line(self) -> str:
        return f"{self.level:<5} {self.text}"


def ok(text: str) -> Finding:
    return Finding("ok", text)


def warn(text: str) -> Finding:
    return Finding("warn", text)


def fail(text: str) -> Finding:
    return Finding("FAIL", text)


# -- the dialplan (pure) ---------------------------------------------------------------
def _actions(extension: ET.Element) -> list[tuple[str, str, str]]:
    """(condition field, application, data) of an extension's actions, in order."""
    out = []
    for condition in extension.iter("condition"):
        for action in condition.findall("action"):
            out.append((condition.get("field", ""), action.get("application", ""), action.get("data", "")))
    return out


def analyse_context(xml_text: str, context: str, mode: str, call_bound: float) -> tuple[list[Finding], str]:
    """Findings on the context, and the socket application's target ('' when none)."""
    where = f"dialplan context '{context}'"
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        return [fail(f"{where}: FreeSWITCH returned XML that does not parse ({exc})")], ""
    extensions = list(root.iter("extension"))
    marked = [(i, e) for i, e in enumerate(extensions) if any(app == "set" and data.startswith(MARK)
                                                              for _, app, data in _actions(e))]
    if not marked:
        conf = "socket-mode/dialplan/default" if mode == "socket" else "dialplan/default"
        return [fail(f"{where}: no extension sets {MARK}: outbound calls never reach Tollgate "
                     f"(install freeswitch-conf/{conf}/90_tollgate.xml, then reloadxml)")], ""
    index, ext = marked[0]
    name = f"{where}, extension '{ext.get('name', '?')}'"
    actions = _actions(ext)
    found = [ok(f"{name} marks outbound calls ({MARK})")]
    for dead_end in ends_hunt_without_route(extensions):
        found.append(fail(f"{where}: {dead_end} passes and breaks before any action, in an extension that "
                          "does not continue: every call it matches gets no route (write the condition the "
                          "other way round, so that it fails for the calls that must go on)"))
    sets = {data.split("=", 1)[0]: (cond, data.split("=", 1)[1] if "=" in data else "")
            for cond, app, data in actions if app == "set"}
    for var, why in (("tollgate_tenant", "the tenant (e.g. ${domain_name})"),
                     ("tollgate_dialed", "the number dialed")):
        if var not in sets:
            found.append(fail(f"{name} does not set {var}: Tollgate cannot tell {why}"))
    cond, value = sets.get("tollgate_extension", ("", ""))
    if "tollgate_extension" not in sets:
        found.append(fail(f"{name} does not set tollgate_extension=${{user_name}}: every call would come "
                          "from an unknown caller and be refused every chargeable class"))
    elif re.search(r"caller_id|sip_from_user|effective_caller", value):
        found.append(fail(f"{name} sets tollgate_extension from '{value}', which the caller writes: "
                          "use ${user_name}, under a condition on ${sip_authorized}"))
    elif "sip_authorized" not in cond:
        found.append(warn(f"{name} sets tollgate_extension outside a condition on ${{sip_authorized}}: "
                          "an unauthenticated call would carry a user name nobody proved"))
    else:
        found.append(ok(f"{name} names the payer from the authenticated directory user ({value})"))
    apps = [app for _, app, _ in actions]
    target = ""
    if mode == "inbound":
        found += _park_checks(name, actions, apps, call_bound)
    else:
        found_socket = [data for _, app, data in actions if app == "socket"]
        if not found_socket:
            found.append(fail(f"{name} has no socket application: socket mode needs "
                              "'socket HOST:PORT full' after the mark"))
        else:
            target, *flags = found_socket[0].split()
            before = actions[:apps.index("socket")]
            if "full" not in flags:
                found.append(fail(f"{name}: 'socket {found_socket[0]}' must end with 'full' "
                                  "(Tollgate uses api commands on the session)"))
            if "async" in flags:
                # Still works, and is bounded by park_timeout: socket_function parks the call.
                found.append(warn(f"{name}: 'socket {found_socket[0]}' is async: the call is parked and each "
                                  "command waits for the park loop's next 20 ms step (switch_ivr_park); "
                                  "without 'async' it runs as soon as it is read"))
                found += _bound_check(name, before, call_bound, "socket")
            else:
                found += _scheduled_bound_check(name, before, call_bound)
            if "hangup" not in apps[apps.index("socket"):]:
                found.append(warn(f"{name}: nothing hangs up after the socket application: a call Tollgate "
                                  "did not take goes on in the dialplan"))
    if not any(app == "bridge" and i < index for i, e in enumerate(extensions) for _, app, _ in _actions(e)):
        found.append(warn(f"{where}: no extension before '{ext.get('name', '?')}' bridges emergency numbers "
                          "directly: they would depend on a controller being up"))
    return found, target


def _park_checks(name: str, actions, apps: list[str], call_bound: float) -> list[Finding]:
    out = []
    mark_at = next(i for i, (_, app, data) in enumerate(actions) if app == "set" and data.startswith(MARK))
    if "park" not in apps[mark_at:]:
        return [fail(f"{name}: no park after the mark: Tollgate takes calls from CHANNEL_PARK "
                     "(or use socket mode and its dialplan)")]
    park_at = mark_at + apps[mark_at:].index("park")
    between = [data for _, app, data in actions[mark_at + 1:park_at] if app == "set"]
    if between:
        out.append(warn(f"{name}: {len(between)} set(s) after the mark ({between[0]}...): each is one more "
                        "event per call for every controller; set the mark last"))
    return out + _bound_check(name, actions[:park_at], call_bound, "park")


def _bound_check(name: str, before, call_bound: float, app: str) -> list[Finding]:
    """park_timeout set before the park (inbound mode) or the socket application
    (socket mode, which parks the call while its session runs): the bound
    FreeSWITCH keeps by itself when no controller does."""
    timeouts = [data.split("=", 1)[1] for _, a, data in before if a == "set" and data.startswith("park_timeout=")]
    if not timeouts:
        return [fail(f"{name}: no park_timeout before the {app}: a call no controller takes stays parked "
                     f"forever (set park_timeout=180:RECOVERY_ON_TIMER_EXPIRE)")]
    seconds = timeouts[-1].split(":", 1)[0]
    if not seconds.isdigit() or int(seconds) <= call_bound:
        return [fail(f"{name}: park_timeout={timeouts[-1]} must be longer than Tollgate's call bound "
                     f"({call_bound:.0f} s), or FreeSWITCH cuts PIN dialogs short")]
    return [ok(f"{name}: the {app} is bounded by park_timeout={timeouts[-1]} (call bound {call_bound:.0f} s)")]


_SCHEDULED_BOUND = re.compile(r"\$\{sched_api\(\+(\d+) tollgate-\$\{uuid\} uuid_kill \$\{uuid\}(?: [A-Z_]+)?\)\}")


def _scheduled_bound_check(name: str, before, call_bound: float) -> list[Finding]:
    """A static socket session parks nothing, so park_timeout bounds nothing: the
    dialplan schedules a uuid_kill in the group Tollgate cancels at the handover
    (commands.cancel_bound), `eval ${sched_api(+180 tollgate-${uuid} uuid_kill ${uuid} ...)}`."""
    found = [m for _, app, data in before if app == "eval" for m in [_SCHEDULED_BOUND.search(data)] if m]
    if not found:
        return [fail(f"{name}: no bound before the socket application: a call whose controller connected and "
                     "then went quiet stays up forever (add eval ${sched_api(+180 tollgate-${uuid} uuid_kill "
                     "${uuid} RECOVERY_ON_TIMER_EXPIRE)} before it)")]
    seconds = int(found[-1].group(1))
    if seconds <= call_bound:
        return [fail(f"{name}: the scheduled bound (+{seconds} s) must be longer than Tollgate's call bound "
                     f"({call_bound:.0f} s), or FreeSWITCH cuts PIN dialogs short")]
    return [ok(f"{name}: the socket is bounded by a scheduled uuid_kill after {seconds} s "
               f"(call bound {call_bound:.0f} s)")]


def ends_hunt_without_route(extensions) -> list[str]:
    """Conditions that, when they pass, stop their extension as matched (break
    on-true or always) before any action was added, in an extension without
    continue="true": mod_dialplan_xml's parse_exten counts the extension as
    matched and dialplan_hunt stops there, with no route ("No Route, Aborting").
    What ended every internal call, feature code and (bypass off) emergency
    call on a stock FreeSWITCH."""
    found = []
    for ext in extensions:
        if (ext.get("continue") or "").lower() == "true":
            continue
        added = 0
        for cond in ext.findall("condition"):
            added += len(cond.findall("action"))
            if cond.get("break") in ("on-true", "always") and not added:
                found.append(f"extension '{ext.get('name', '?')}': condition {cond.get('field')} "
                             f"=~ {cond.get('expression')}")
    return found


# -- the node, over the Event Socket -----------------------------------------------------
def check_node(conn, *, mode: str, context: str, sound_root: str | None, call_bound: float) -> list[Finding]:
    """Every check, over an open connection (controller.freeswitch.esl.InboundConnection)."""
    found = []
    text = conn.api(commands.version()).strip()
    m = re.search(r"Version (\d+)\.(\d+)\.(\d+)", text)
    if not m:
        found.append(fail(f"'api version' answered {text[:60]!r}: is this FreeSWITCH?"))
    elif (int(m.group(1)), int(m.group(2))) < (1, 10):
        found.append(fail(f"FreeSWITCH {m.group(0)[8:]}: Tollgate needs 1.10 (digits_dialed_filter, which keeps "
                          "PIN digits out of the CDR, and the Event Socket behaviour it was checked against)"))
    else:
        dd = conn.api(commands.global_getvar("digits_dialed_filter")).strip()
        found.append(ok(f"FreeSWITCH {m.group(0)[8:]}: honours digits_dialed_filter, which Tollgate sets on each "
                        "call before the PIN prompt" + (f" (over the global '{dd}')" if dd else "")))
    missing = [m for m in MODULES if conn.api(commands.module_exists(m)).strip() != "true"]
    found += [fail(f"module {m} is not loaded (needed for {MODULES[m]}): load it in modules.conf.xml")
              for m in missing]
    if not missing:
        found.append(ok(f"modules loaded: {', '.join(MODULES)}"))
    for command, what in ((commands.subscribe(), "event subscription"),
                          (commands.filter_managed(), "event filter"),
                          (commands.filter_mark_executed(), "event filter of the mark's own execution")):
        reply = conn.send(command).strip()
        found.append(ok(f"{what} accepted ({command.split(' ', 2)[1]})") if reply.startswith("+OK")
                     else fail(f"{what} refused: '{command}' answered {reply!r}"))
    xml_text = conn.api(commands.xml_locate_context(context))
    target = ""
    if not xml_text.lstrip().startswith("<"):
        found.append(fail(f"dialplan context '{context}' not found ({xml_text.strip()[:60]}): "
                          "set --context to the context your users' calls run in"))
    else:
        more, target = analyse_context(xml_text, context, mode, call_bound)
        found += more
    found.append(_prompts(conn, sound_root))
    if mode == "socket" and target:
        found.append(_reachable(target))
    return found


def _prompts(conn, sound_root: str | None) -> Finding:
    catalog = Catalog(sound_root)
    files = catalog.files()  # asked of the node, not of this host (Catalog.missing)
    missing = [name for name, path in files.items() if conn.api(commands.file_exists(str(path))).strip() != "true"]
    total = len(files)
    if missing:
        return fail(f"{len(missing)} of {total} prompt files missing on the node under {catalog.root} "
                    f"(e.g. {', '.join(missing[:3])}): copy prompts/ there, or set --sound-root to where they are")
    return ok(f"all {total} prompt files present under {catalog.root} ({', '.join(LANGUAGES)})")


def _reachable(target: str) -> Finding:
    host, _, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            pass
    except (OSError, ValueError) as exc:
        return fail(f"the socket application's target {target} does not answer from here ({exc}): "
                    "start 'tollgate run --mode socket --listen' there, or fix tollgate_socket")
    return ok(f"the socket application's target {target} accepts connections")


def diagnose(host: str, port: int, password: str, *, mode: str = "inbound", context: str = "default",
             sound_root: str | None = None, call_bound: float = 120.0, timeout: float = 5.0) -> list[Finding]:
    from controller.freeswitch.esl import InboundConnection

    where = f"Event Socket {host}:{port}"
    conn = InboundConnection(host, port, password, lambda _headers: None, timeout=timeout, subscribe_filter=False)
    try:
        conn.open()
    except ConfigError:
        return [fail(f"{where}: the password was refused: give the one in event_socket.conf.xml "
                     "(--esl-password / TOLLGATE_ESL_PASSWORD)")]
    except CommandFailed as exc:
        return [fail(f"{where}: {exc}: is FreeSWITCH running, and mod_event_socket listening there?")]
    try:
        return [ok(f"{where}: connected, password accepted"),
                *check_node(conn, mode=mode, context=context, sound_root=sound_root, call_bound=call_bound)]
    except CommandFailed as exc:
        return [fail(f"{where}: the connection failed during the checks: {exc}")]
    finally:
        conn.close()
