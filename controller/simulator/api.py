"""The simulator's `api` commands, with FreeSWITCH 1.10's reply texts (fixture 05)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import gevent

if TYPE_CHECKING:
    from controller.simulator.roles import Switch


def run(sim: "Switch", line: str) -> str:
    parts = line.split()
    if not parts:
        return "-ERR no command\n"
    cmd, args = parts[0], parts[1:]
    ch = sim.channels.get(args[0]) if args else None
    if ch is not None and ch.state == "hangup":
        # FreeSWITCH's session locate refuses a channel that is down
        # (switch_core_session_read_lock): a hangup hook's uuid_setvar finds nothing.
        ch = None
    if cmd == "uuid_exists":
        return "true" if ch else "false"
    if cmd == "uuid_getvar":
        if not ch:
            return "-ERR No such channel!\n"
        return ch.vars.get(args[1], "_undef_") if len(args) > 1 else "-ERR Usage\n"
    if cmd == "uuid_setvar":
        if not ch or len(args) < 2:
            return "-ERR No such channel!\n"
        if len(args) > 2:
            ch.vars[args[1]] = " ".join(args[2:])
        else:
            ch.vars.pop(args[1], None)  # no value: unset
        return "+OK"
    if cmd == "uuid_kill":
        if not ch:
            return "-ERR No such channel!\n"
        gevent.spawn(ch.hangup, args[1] if len(args) > 1 else "NORMAL_CLEARING")
        return "+OK\n"
    if cmd == "uuid_break":
        if not ch:
            return "-ERR No such channel!\n"
        ch.break_app()
        return "+OK"
    if cmd == "show" and args[:2] == ["channels", "count"]:
        return f"\n{len(sim.live())} total.\n"  # mod_commands: lingering sessions count too
    if cmd == "show" and args[:1] == ["channels"]:
        return _show_channels(sim, args[1:])
    if cmd == "hash" and args:
        return _hash(sim, args[0])
    if cmd == "version":
        return f"FreeSWITCH Version {sim.node.version}+git~20250101T000000Z~simulated (simulated 64bit)\n"
    if cmd == "module_exists":
        return "true" if args and args[0] in sim.node.modules else "false"
    if cmd == "global_getvar":
        return sim.node.globals.get(args[0], "") if args else ""
    if cmd == "file_exists":
        return "true" if args and sim.node.file_exists(" ".join(args)) else "false"
    if cmd == "xml_locate":
        if len(args) < 4:
            return "-Error bad args\n"
        found = sim.node.context_xml(args[3]) if args[:3] == ["dialplan", "context", "name"] else None
        return found if found is not None else "can't find anything\n"
    if cmd == "sched_api":
        return _sched_api(sim, args)
    if cmd == "sched_del":
        # mod_commands: a task id, or a group name (switch_scheduler_del_task_group)
        timers = sim.sched_groups.pop(args[0], []) if args else []
        for timer in timers:
            timer.close()
        return f"+OK Deleted: {len(timers)}\n"
    if cmd == "status":
        return f"UP 0 years\n{len(sim.live())} session(s)\n"
    return f"-ERR {cmd} Command not found!\n"


def _hash(sim: "Switch", spec: str) -> str:
    """mod_hash's api: insert / insert_ifempty / select / delete on realm/key[/value]."""
    op, _, rest = spec.partition("/")
    realm, _, rest = rest.partition("/")
    key, _, value = rest.partition("/")
    k = (realm, key)
    if op == "insert":
        sim.hash_db[k] = value
        return "+OK\n"
    if op == "insert_ifempty":
        if k in sim.hash_db:
            return "-ERR key already exists\n"
        sim.hash_db[k] = value
        return "+OK\n"
    if op == "select":
        return sim.hash_db.get(k, "")
    if op == "delete":
        return "+OK\n" if sim.hash_db.pop(k, None) is not None else "-ERR Not found\n"
    return "-ERR Usage: hash [insert|insert_ifempty|select|delete]/realm/key[/value]\n"


def _show_channels(sim: "Switch", args: list[str]) -> str:
    rows = [{
        "uuid": c.uuid, "direction": "inbound", "created": time.strftime("%Y-%m-%d %H:%M:%S",
                                                                          time.localtime(c.created)),
        "created_epoch": str(int(c.created)), "name": c.name, "state": "CS_EXECUTE",
        "cid_name": c.caller_name, "cid_num": c.caller_id, "dest": c.dialed,
        "application": c.application, "application_data": c.application_data, "context": c.context,
        "callstate": {"ringing": "RINGING", "early": "EARLY", "answered": "ACTIVE"}.get(c.state, "HANGUP"),
        "call_uuid": c.uuid,
    } for c in sim.channels.values() if c.state != "hangup"]
    if len(args) >= 2 and args[0] == "like":
        rows = [r for r in rows if args[1] in r["name"] or args[1] in r["uuid"]]
    if not rows:
        return '{"row_count":0}'
    return json.dumps({"row_count": len(rows), "rows": rows})


def _sched_api(sim: "Switch", args: list[str]) -> str:
    """mod_commands' `sched_api +SECONDS GROUP COMMAND...`: the core's scheduler runs
    the api command then (seconds scaled as the simulator's clock), unless the
    group is deleted first (sched_del GROUP)."""
    if len(args) < 3 or not args[0].startswith("+") or not args[0][1:].isdigit():
        return "-ERR Invalid syntax. USAGE: [+@]<time> <group_name> <command_string>[&]\n"
    seconds, group, command = int(args[0][1:]), args[1], " ".join(args[2:]).rstrip("&")
    timer = gevent.get_hub().loop.timer(max(seconds * sim.scale, 0.0))

    def fire():
        timers = sim.sched_groups.get(group, [])
        if timer in timers:
            timers.remove(timer)
        if not timers:
            sim.sched_groups.pop(group, None)
        sim.api(command)

    # The loop's callback must not block: the command (events to write) gets a greenlet.
    timer.start(gevent.spawn, fire)
    sim.sched_groups.setdefault(group, []).append(timer)
    return f"+OK Added: {next(sim.task_ids)}\n"
