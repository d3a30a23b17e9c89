"""Tollgate's dialplan file inside FreeSWITCH's stock 1.10 dialplan, in both modes:
it takes only what is its own, and every other call goes on exactly as if the
file were absent (issue: break="on-true" ended the hunt with no route)."""

from __future__ import annotations

from tests.realfs.calls import Script


def _tollgate_saw(call) -> bool:
    return any(app == "set" and data.startswith("tollgate_managed=") for app, data in call.applications())


def test_calls_tollgate_does_not_take_go_on_through_the_stock_dialplan(freeswitch, controller, phones):
    bye = Script(hangup_after=4.0)  # voicemail and intercept wait for the caller: hang up
    calls = {
        # 1000-1019: the stock Local_Extension (before default/*.xml) bridges them.
        "internal 1003 -> 1001 (stock Local_Extension)": phones.place("1003", "1001", bye),
        # Outside 1000-1019: the operator's own extension after Tollgate's file.
        "internal 4101 -> 4102 (operator's extension after 90_tollgate.xml)": phones.place("4101", "4102", bye),
        "voicemail *98 (stock vmain)": phones.place("1003", "*98", bye),
        "feature code **1002 (stock intercept-ext)": phones.place("1003", "**1002", bye),
        "emergency 112, bypass on": phones.place("1004", "112"),
    }
    assert phones.wait_all(list(calls.values()), timeout=40)
    apps = {what: [a for a, _ in c.applications()] for what, c in calls.items()}
    c = calls["internal 1003 -> 1001 (stock Local_Extension)"]
    assert ("bridge", "user/1001@acme") in c.applications() and not _tollgate_saw(c), apps
    c = calls["internal 4101 -> 4102 (operator's extension after 90_tollgate.xml)"]
    assert ("bridge", "user/4102@acme") in c.applications() and not _tollgate_saw(c), apps
    c = calls["voicemail *98 (stock vmain)"]
    assert "voicemail" in apps["voicemail *98 (stock vmain)"] and not _tollgate_saw(c), apps
    c = calls["feature code **1002 (stock intercept-ext)"]
    assert "intercept" in apps["feature code **1002 (stock intercept-ext)"] and not _tollgate_saw(c), apps
    c = calls["emergency 112, bypass on"]
    assert c.carrier_got == "112" and not _tollgate_saw(c)
    for what, c in calls.items():
        assert c.cause != "NO_ROUTE_DESTINATION", what
        print(f"[{freeswitch.mode}] {what}: {' '.join(a for a in apps[what] if a not in ('hash', 'export'))} "
              f"-> {c.cause}")
    assert phones.wait_no_channels(2.0) is not None


def test_with_the_bypass_off_emergency_goes_through_tollgate_and_the_rest_still_passes_on(
        freeswitch, controller, phones, store):
    assert phones.api("global_setvar tollgate_emergency_bypass=false").startswith("+OK")
    try:
        emergency = phones.place("1004", "112")
        voicemail = phones.place("1003", "*98", Script(hangup_after=3.0))
        internal = phones.place("1003", "1001", Script(hangup_after=3.0))
        assert phones.wait_all([emergency, voicemail, internal], timeout=30)
    finally:
        phones.api("global_setvar tollgate_emergency_bypass=true")
    assert emergency.carrier_got == "112" and _tollgate_saw(emergency)
    assert emergency.pbx.get("variable_tollgate_verdict") == "ALLOW"  # decided and audited by Tollgate
    for c in (voicemail, internal):
        assert c.cause != "NO_ROUTE_DESTINATION" and not _tollgate_saw(c), c.applications()
    print(f"[{freeswitch.mode}] bypass off: 112 -> Tollgate {emergency.pbx.get('variable_tollgate_reason')}, "
          f"carrier got {emergency.carrier_got}; *98 -> {voicemail.cause}; 1001 -> {internal.cause}")


def test_a_transfer_verdict_goes_on_in_the_dialplan(freeswitch, controller, phones, store):
    """A route of the form 'DEST XML CONTEXT' is a transfer. In socket mode the
    socket application runs static (issue 32): the transfer takes effect only once
    the session ends, so the controller closes it right away; the bound it set
    before the socket is cancelled first."""
    # 49xx: the tenant's own numbers on another system (no directory user here, so
    # the dialplan hands them to Tollgate), routed by the tenant's internal route.
    store.admin.update_tenant("acme", {"internal_pattern": "^49[0-9]{2}$", "internal_route": "{dialed} XML carrier"})
    call = phones.place("1002", "4949")
    assert phones.wait_all([call], timeout=20)
    pbx = call.pbx or {}
    # The bed's `carrier` context answers, sets carrier_got and hangs up after 1.5 s.
    assert pbx.get("variable_carrier_got") == "4949", (call.cause, call.applications())
    assert pbx.get("variable_tollgate_verdict") == "ALLOW" and call.cause == "NORMAL_CLEARING"
    print(f"[{freeswitch.mode}] 4949 -> transfer to the context 'carrier': carrier_got "
          f"{pbx.get('variable_carrier_got')}, {call.cause}")
