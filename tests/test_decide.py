"""The verdict, on snapshots built by hand (no Redis, no gevent)."""

from dataclasses import replace

import pytest

from policies.classes import CallClass as C
from policies.decide import decide
from policies.identity import Identity, IdentityKind
from policies.model import CallerAuth, Extension, Rule, Snapshot, TenantSettings, Verdict

PREMIUM_LISTED = Rule("premium", "allow", classes=(C.PREMIUM,), lists=("direction",))
NO_INTL = Rule("no-intl", "deny", classes=(C.INTERNATIONAL,))


def snap(dialed, *, pin_feature=False, pin_enabled=False, pins=None, rules=(), auth=None, locked=0,
         default_action="allow", is_ext=False, tenant_exists=True, overrides=None, country="FR",
         identity=Identity(IdentityKind.EXTENSION, "1001")):
    return Snapshot(
        tenant="acme",
        settings=TenantSettings(country=country, pin_feature=pin_feature, default_action=default_action),
        extension=Extension("1001", pin_enabled=pin_enabled, pins=pins if pins is not None else {"alice": "h"}),
        dialed=dialed,
        caller_id="1001",
        rules=tuple(rules),
        class_overrides=overrides or {},
        destination_is_extension=is_ext,
        caller_auth=CallerAuth(auth or {}),
        locked_seconds=locked,
        tenant_exists=tenant_exists,
        identity=identity,
    )


def test_plain_national_call_is_allowed_by_default():
    d = decide(snap("0140000000"))
    assert (d.verdict, d.call_class, d.reason) == (Verdict.ALLOW, C.NATIONAL, "allowed")


def test_listed_caller_reaches_premium_and_others_are_refused():
    ok = decide(snap("0899123456", rules=[PREMIUM_LISTED], auth={"direction": "1001"}))
    assert (ok.verdict, ok.rule, ok.authorized_list) == (Verdict.ALLOW, "premium", "direction")
    other = decide(snap("0899123456", rules=[PREMIUM_LISTED], auth={"sales": "1001"}))
    assert (other.verdict, other.reason) == (Verdict.DENY, "not_authorized")
    nobody = decide(snap("0899123456", rules=[PREMIUM_LISTED]))
    assert nobody.verdict is Verdict.DENY


def test_first_enabled_match_wins_and_disabled_rules_are_skipped():
    allow_all = Rule("all", "allow")
    assert decide(snap("+442079460000", rules=[NO_INTL, allow_all])).reason == "rule_deny"
    assert decide(snap("+442079460000", rules=[allow_all, NO_INTL])).verdict is Verdict.ALLOW
    off = NO_INTL.with_enabled(False)
    assert decide(snap("+442079460000", rules=[off])).verdict is Verdict.ALLOW


def test_prefix_rule_and_default_deny():
    rule = Rule("uk", "deny", prefixes=("+44",))
    assert decide(snap("0044207946000", rules=[rule])).rule == "uk"
    d = decide(snap("0140000000", default_action="deny"))
    assert (d.verdict, d.reason) == (Verdict.DENY, "default_deny")


def test_ivr_authentication_challenges_chargeable_calls_only():
    s = dict(pin_feature=True, pin_enabled=True)
    assert decide(snap("0140000000", **s)).verdict is Verdict.CHALLENGE
    assert decide(snap("0612345678", **s)).verdict is Verdict.CHALLENGE
    assert decide(snap("1002", is_ext=True, **s)).verdict is Verdict.ALLOW
    assert decide(snap("*97", **s)).verdict is Verdict.ALLOW
    assert decide(snap("0800123456", **s)).verdict is Verdict.ALLOW


def test_without_the_providers_feature_nobody_is_challenged():
    assert decide(snap("0140000000", pin_feature=False, pin_enabled=True)).verdict is Verdict.ALLOW
    pin_rule = Rule("pin-intl", "allow", classes=(C.INTERNATIONAL,), pin=True)
    d = decide(snap("+442079460000", pin_feature=False, rules=[pin_rule]))
    assert (d.verdict, d.reason) == (Verdict.DENY, "pin_unavailable")


def test_rule_pin_challenges_whatever_the_extension_setting():
    pin_rule = Rule("pin-intl", "allow", classes=(C.INTERNATIONAL,), pin=True)
    d = decide(snap("+442079460000", pin_feature=True, pin_enabled=False, rules=[pin_rule]))
    assert (d.verdict, d.pin_holders) == (Verdict.CHALLENGE, ("alice",))


def test_locked_extension_is_refused_without_prompt_and_no_pin_fails_closed():
    s = dict(pin_feature=True, pin_enabled=True)
    assert decide(snap("0140000000", locked=300, **s)).reason == "locked"
    assert decide(snap("0140000000", pins={}, **s)).reason == "no_pin_set"
    # Lockout only matters when a PIN would be asked.
    assert decide(snap("0800123456", locked=300, **s)).verdict is Verdict.ALLOW


@pytest.mark.parametrize("country,number", [("FR", "112"), ("FR", "15"), ("DE", "110"), ("CH", "144")])
def test_emergency_passes_whatever_the_state(country, number):
    worst = snap(number, country=country, pin_feature=True, pin_enabled=True, locked=900,
                 rules=[Rule("deny-all", "deny")], default_action="deny", tenant_exists=False,
                 overrides={"+": C.PREMIUM})
    d = decide(worst)
    assert (d.verdict, d.call_class) == (Verdict.ALLOW, C.EMERGENCY)


def test_unknown_tenant_is_refused():
    d = decide(snap("0140000000", tenant_exists=False))
    assert (d.verdict, d.reason) == (Verdict.DENY, "unknown_tenant")


def test_unknown_extension_with_pin_feature_is_not_challenged_but_rules_apply():
    s = replace(snap("0899123456", pin_feature=True, rules=[PREMIUM_LISTED]), extension=None)
    assert decide(s).reason == "not_authorized"


@pytest.mark.parametrize("junk", ["sip:bob@example.com", "9" * 500, "O8OO", "0800\u202e123", ""])
def test_undialable_input_is_refused_even_when_the_default_allows(junk):
    d = decide(snap(junk))
    assert (d.verdict, d.reason) == (Verdict.DENY, "invalid_number")
