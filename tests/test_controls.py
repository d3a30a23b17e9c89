"""Fraud controls beyond the lists (issue 12), in the pure policy: schedules,
calls nobody at the phone placed, velocity and duration limits, and the
property that emergency numbers pass whatever the controls say."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.classes import CallClass as C
from policies.decide import alert_at_admission, decide, full_at_admission, needs_counts
from policies.identity import UNKNOWN_CALLER, Identity, IdentityKind
from policies.limits import Limit, count_key
from policies.model import CallerAuth, Extension, Rule, Snapshot, TenantSettings, Verdict
from policies.schedule import Schedule, parse, zone_for

PARIS = zone_for("", "FR")
EXT = Identity(IdentityKind.EXTENSION, "1003")


def at(text: str) -> float:
    """Epoch seconds of a wall-clock time in Paris."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


def snap(dialed, *, rules=(), limits=(), counts=None, unattended="", pin=False, now="2026-11-23 10:00",
         identity=EXT, auth=None, **tenant):
    return Snapshot(tenant="acme", settings=TenantSettings(country="FR", pin_feature=True, **tenant),
                    extension=Extension("1003", pin_enabled=pin, pins={"anna": "h"}), dialed=dialed,
                    rules=tuple(rules), limits=tuple(limits), counts=counts or {}, unattended=unattended,
                    now=at(now), identity=identity, caller_auth=CallerAuth(auth or {"direction": "1003"}))


# -- schedules ---------------------------------------------------------------------
OFFICE = parse("mon-fri", "08:00-18:00", "2026-12-25")
INTL_OFFICE = Rule("intl-office", "allow", classes=(C.INTERNATIONAL,), schedule=OFFICE)
INTL_NIGHT_PIN = Rule("intl-night", "allow", classes=(C.INTERNATIONAL,), pin=True)
INTL_DENY = Rule("intl-deny", "deny", classes=(C.INTERNATIONAL,))


@pytest.mark.parametrize("now,verdict,reason", [
    ("2026-11-23 10:00", Verdict.ALLOW, "allowed"),          # Monday morning
    ("2026-11-23 17:59", Verdict.ALLOW, "allowed"),
    ("2026-11-23 18:00", Verdict.DENY, "rule_deny"),          # end is exclusive
    ("2026-11-23 23:10", Verdict.DENY, "rule_deny"),          # the night
    ("2026-11-28 11:00", Verdict.DENY, "rule_deny"),          # Saturday
    ("2026-12-25 11:00", Verdict.DENY, "rule_deny"),          # a holiday (a Friday)
])
def test_a_rule_holds_only_in_its_window(now, verdict, reason):
    d = decide(snap("+4930123456", rules=[INTL_OFFICE, INTL_DENY], now=now))
    assert (d.verdict, d.reason) == (verdict, reason)
    if verdict is Verdict.DENY:
        assert "holds only mon,tue,wed,thu,fri 08:00-18:00" in d.detail and "Europe/Paris" in d.detail


def test_outside_office_hours_a_pin_is_needed_instead():
    night = decide(snap("+4930123456", rules=[INTL_OFFICE, INTL_NIGHT_PIN], now="2026-11-23 22:00"))
    day = decide(snap("+4930123456", rules=[INTL_OFFICE, INTL_NIGHT_PIN], now="2026-11-23 09:00"))
    assert (night.verdict, night.rule, day.verdict, day.rule) == \
        (Verdict.CHALLENGE, "intl-night", Verdict.ALLOW, "intl-office")


def test_the_tenants_time_zone_decides_and_an_overnight_window_belongs_to_its_first_day():
    night_shift = Rule("night", "allow", classes=(C.INTERNATIONAL,), schedule=parse("fri", "22:00-06:00"))
    rules = [night_shift, INTL_DENY]
    assert decide(snap("+4930123456", rules=rules, now="2026-11-27 23:00")).verdict is Verdict.ALLOW  # Fri
    assert decide(snap("+4930123456", rules=rules, now="2026-11-28 05:30")).verdict is Verdict.ALLOW  # Sat early
    assert decide(snap("+4930123456", rules=rules, now="2026-11-28 23:00")).verdict is Verdict.DENY   # Sat
    # 23:00 in Paris is 17:00 in New York: the same instant, another verdict.
    ny = decide(snap("+4930123456", rules=rules, now="2026-11-27 23:00", timezone="America/New_York"))
    assert ny.verdict is Verdict.DENY and "America/New_York" in ny.detail


def test_schedule_words_are_checked():
    for days, hours, holidays in (("mon-fri", "8-18", ""), ("monday", "08:00-18:00", ""),
                                  ("mon", "18:00-18:00", ""), ("mon", "08:00-18:00", "25/12/2026")):
        with pytest.raises(ValueError):
            parse(days, hours, holidays)
    assert Schedule.from_json(OFFICE.to_json()) == OFFICE
    assert Rule.from_json(INTL_OFFICE.to_json()) == INTL_OFFICE


# -- calls nobody at the phone placed ------------------------------------------------
LISTED_PREMIUM = Rule("premium", "allow", classes=(C.PREMIUM,), lists=("direction",))
FWD_PREMIUM = Rule("premium-fwd", "allow", classes=(C.PREMIUM,), lists=("direction",), unattended=True)


@pytest.mark.parametrize("kind", ["forward", "transfer", "originated"])
def test_a_call_that_would_need_a_pin_is_refused_when_nobody_placed_it(kind):
    d = decide(snap("0899123456", rules=[LISTED_PREMIUM], pin=True, unattended=kind))
    assert (d.verdict, d.reason, d.unattended) == (Verdict.DENY, "unattended_chargeable", kind)
    allowed = decide(snap("0899123456", rules=[FWD_PREMIUM], pin=True, unattended=kind))
    assert (allowed.verdict, allowed.reason) == (Verdict.ALLOW, "allowed_unattended")
    # the payer must still be on the list
    other = decide(snap("0899123456", rules=[FWD_PREMIUM], pin=True, unattended=kind, auth={"sales": "1003"}))
    assert (other.verdict, other.reason) == (Verdict.DENY, "not_authorized")
    # without a PIN to ask, nothing changes for it
    plain = decide(snap("0899123456", rules=[LISTED_PREMIUM], pin=False, unattended=kind))
    assert plain.verdict is Verdict.ALLOW
    # a rule's own `pin` cannot be satisfied either
    by_rule = decide(snap("0140000000", rules=[Rule("pin-all", "allow", pin=True)], unattended=kind))
    assert by_rule.reason == "unattended_chargeable"


# -- velocity and duration -----------------------------------------------------------
INTL_HOURLY = Limit("intl-hourly", classes=(C.INTERNATIONAL,), max=10, window=3600)
TENANT_DAILY = Limit("tenant-daily", scope="tenant", max=100, window=86400)
SHORT = Limit("short", kind="duration", classes=(C.INTERNATIONAL,), seconds=600)
SHORTER = Limit("shorter", kind="duration", seconds=300)


def test_the_eleventh_call_in_the_hour_is_refused_with_the_count():
    counts = {count_key(INTL_HOURLY, "ext:1003"): 9}
    ok = decide(snap("+4930123456", limits=[INTL_HOURLY], counts=counts))
    assert ok.verdict is Verdict.ALLOW and ok.admit == (("velocity", "intl-hourly", "ext:1003", 10, 3600),)
    counts = {count_key(INTL_HOURLY, "ext:1003"): 10}
    d = decide(snap("+4930123456", limits=[INTL_HOURLY], counts=counts))
    assert (d.verdict, d.reason, d.count) == (Verdict.DENY, "velocity_exceeded", 11)
    assert "refused: 11th international call in 60 minutes (ext:1003), limit 10" in d.detail
    # other classes and other extensions are not counted against it
    assert decide(snap("0140000000", limits=[INTL_HOURLY], counts=counts)).verdict is Verdict.ALLOW
    other = replace(snap("+4930123456", limits=[INTL_HOURLY], counts=counts), identity=Identity(
        IdentityKind.EXTENSION, "1004"))
    assert decide(other).verdict is Verdict.ALLOW


def test_a_tenant_wide_limit_counts_everyone_and_a_race_lost_at_admission_refuses():
    counts = {count_key(TENANT_DAILY, "tenant"): 99}
    d = decide(snap("0612345678", limits=[TENANT_DAILY, INTL_HOURLY], counts=counts))
    assert d.admit == (("velocity", "tenant-daily", "tenant", 100, 86400),)
    lost = full_at_admission(d, 1, 100)
    assert (lost.verdict, lost.reason, lost.count, lost.admit) == (Verdict.DENY, "velocity_exceeded", 101, ())
    assert "101st mobile call in 1 day (tenant), limit 100" in lost.detail


def test_the_shortest_duration_limit_rides_with_the_allow():
    assert decide(snap("+4930123456", limits=[SHORT, SHORTER])).max_seconds == 300
    assert decide(snap("0140000000", limits=[SHORT])).max_seconds == 0
    assert decide(snap("+4930123456", limits=[SHORT], pin=True)).max_seconds == 600  # CHALLENGE keeps it
    with pytest.raises(ValueError):
        Limit.from_json({"name": "x", "kind": "duration", "seconds": 1})
    with pytest.raises(ValueError):
        Limit.from_json({"name": "x", "max": 0})


def test_limits_do_not_count_what_nobody_can_be_charged_for():
    counts = {count_key(INTL_HOURLY, "ext:1003"): 50}
    assert decide(snap("0800123456", limits=[INTL_HOURLY], counts=counts)).verdict is Verdict.ALLOW
    assert decide(snap("*97", limits=[INTL_HOURLY], counts=counts)).verdict is Verdict.ALLOW


# -- counts left to the admission ----------------------------------------------------
any_limit = st.builds(Limit, name=st.sampled_from(["a", "b", "c"]),
                      kind=st.sampled_from(["velocity", "duration", "concurrency", "budget", "alert"]),
                      classes=st.lists(st.sampled_from([C.INTERNATIONAL, C.PREMIUM, C.MOBILE]), max_size=2).map(tuple),
                      scope=st.sampled_from(["extension", "tenant"]), max=st.integers(1, 4), window=st.just(3600),
                      seconds=st.integers(10, 100), minutes=st.integers(1, 2))


def admitted(d, counts: dict):
    """What the store's admission does with a decision taken without counts:
    check each place in order (alerts never refuse), else take them all."""
    seen = []
    for i, (kind, name, subject, most, _) in enumerate(d.admit, start=1):
        n = counts.get(f"{name}|{subject}", 0)
        if kind != "alert" and n >= most:
            return full_at_admission(d, i, n)
        seen.append(n)
    return replace(d, alert=alert_at_admission(d, tuple(seen)))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["+4930123456", "0899123456", "0612345678", "0140000000", "112"]),
       st.lists(any_limit, max_size=4, unique_by=lambda x: x.name), st.integers(0, 130),
       st.sampled_from(["", "forward"]), st.booleans(), st.integers(0, 1), st.booleans())
def test_an_allow_left_to_the_admission_ends_as_if_the_counts_were_read(dialed, limits, count, unattended, pin,
                                                                        locked, pin_rule):
    """The controller reads no counts for a call it allows: the admission checks
    them. Whatever the limits, counts, PIN and forward: the call ends with the
    verdict, reason, count, detail and alert it would have had with them."""
    rule = Rule("chargeable", "allow", classes=(C.INTERNATIONAL, C.PREMIUM, C.MOBILE), pin=pin_rule)
    counts = {f"{x.name}|{s}": count * (60 if x.kind == "budget" else 1) // 30 for x in limits
              for s in ("tenant", "ext:1003")}
    known = replace(snap(dialed, rules=[rule], limits=limits, counts=counts, unattended=unattended, pin=pin),
                    locked_seconds=locked)
    unread = replace(known, counts=None)
    first = decide(unread)
    if needs_counts(unread, first):
        assert first.verdict is not Verdict.ALLOW
        final = decide(known)
    else:
        assert first.verdict is Verdict.ALLOW or not first.admit
        final = admitted(first, counts) if first.verdict is Verdict.ALLOW else first
    expected = decide(known)
    assert (final.verdict, final.reason, final.count, final.detail, final.alert, final.admit) == \
        (expected.verdict, expected.reason, expected.count, expected.detail, expected.alert, expected.admit)


def test_a_pin_call_or_a_late_refusal_needs_its_counts_first():
    over = {count_key(INTL_HOURLY, "ext:1003"): 10}
    pin_call = replace(snap("+4930123456", limits=[INTL_HOURLY], pin=True), counts=None)
    d = decide(pin_call)
    assert d.verdict is Verdict.CHALLENGE and needs_counts(pin_call, d)
    assert decide(replace(pin_call, counts=over)).reason == "velocity_exceeded"  # refused before any prompt
    plain = replace(snap("+4930123456", limits=[INTL_HOURLY]), counts=None)
    assert decide(plain).verdict is Verdict.ALLOW and not needs_counts(plain, decide(plain))
    assert not needs_counts(replace(plain, counts={}), decide(plain))


# -- emergency passes whatever the controls say ------------------------------------------
EMERGENCY = [("FR", "112"), ("FR", "15"), ("FR", "17"), ("FR", "18"), ("DE", "110"), ("CH", "144")]
rules = st.lists(st.builds(
    Rule, name=st.just("r"), action=st.sampled_from(["allow", "deny"]),
    classes=st.lists(st.sampled_from(list(C)), max_size=3).map(tuple), pin=st.booleans(),
    unattended=st.booleans(), lists=st.sampled_from([(), ("direction",)]),
    schedule=st.one_of(st.none(), st.builds(parse, st.sampled_from(["mon", "sat-sun", "mon-fri"]),
                                            st.sampled_from(["08:00-18:00", "22:00-06:00"])))), max_size=4)
limits = st.lists(st.builds(Limit, name=st.sampled_from(["a", "b"]), kind=st.sampled_from(["velocity", "duration"]),
                            classes=st.lists(st.sampled_from(list(C)), max_size=2).map(tuple),
                            scope=st.sampled_from(["extension", "tenant"]), max=st.integers(1, 5),
                            seconds=st.integers(10, 100)), max_size=3)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EMERGENCY), rules, limits, st.integers(0, 1000), st.sampled_from(["", "forward", "transfer"]),
       st.sampled_from([EXT, UNKNOWN_CALLER]), st.booleans(), st.integers(0, 10_000),
       st.sampled_from(["allow", "deny"]), st.integers(0, 7 * 86400))
def test_emergency_passes_every_control(cn, rules, limits, count, unattended, identity, pin, locked, default,
                                        offset):
    country, number = cn
    s = Snapshot(tenant="t", settings=TenantSettings(country=country, pin_feature=True, default_action=default),
                 extension=Extension("1003", pin_enabled=pin, pins={"a": "x"}), dialed=number, rules=tuple(rules),
                 limits=tuple(limits), counts={f"{x.name}|{s}": count for x in limits for s in ("tenant", "ext:1003")},
                 unattended=unattended, identity=identity, locked_seconds=locked, now=at("2026-11-23 00:00") + offset,
                 class_overrides={"+": C.PREMIUM})
    d = decide(s)
    assert d.verdict is Verdict.ALLOW and d.call_class is C.EMERGENCY and not d.admit and not d.max_seconds
