"""Destinations a fraudster targets (issue 26, parts 1 and 2): a foreign
premium number is `premium` with its region, a rule may name destination
regions, and the tenant's high-risk list asks for a PIN or refuses."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from controller.call.flow_degraded import degraded
from policies.classes import CallClass as C
from policies.decide import decide
from policies.identity import Identity, IdentityKind
from policies.model import CallerAuth, Extension, Rule, Snapshot, TenantSettings, Verdict
from tests.test_cli import check, ok, tg  # noqa: F401 (fixture)

LISTED = CallerAuth({"direction": "1001"})
INTL_LISTED = Rule("intl", "allow", classes=(C.INTERNATIONAL,), lists=("direction",))


def snap(dialed, rules=(), unattended="", **settings):
    return Snapshot(tenant="acme", settings=TenantSettings(**settings), dialed=dialed, rules=tuple(rules),
                    extension=Extension("1001", pins={"alice": "h"}), caller_auth=LISTED,
                    identity=Identity(IdentityKind.EXTENSION, "1001"), unattended=unattended)


# -- part 1: the rule that lets staff call abroad does not reach foreign premium lines ---------
@pytest.mark.parametrize("dialed,region", [("+979 1234 56789", "001"), ("0044 909 879 0000", "GB"),
                                           ("00371 90 123456", "LV")])
def test_an_international_rule_does_not_allow_foreign_premium_numbers(dialed, region):
    premium_deny = Rule("premium", "deny", classes=(C.PREMIUM,))
    d = decide(snap(dialed, [INTL_LISTED, premium_deny]))
    assert (d.verdict, d.call_class, d.region, d.rule) == (Verdict.DENY, C.PREMIUM, region, "premium"), d
    assert d.detail.startswith("premium number of ")
    abroad = decide(snap("0044 20 7946 0000", [INTL_LISTED, premium_deny]))
    assert (abroad.verdict, abroad.rule) == (Verdict.ALLOW, "intl")


# -- part 2: destination regions per rule -----------------------------------------------------
def test_a_rule_may_allow_international_to_the_eu_and_switzerland_only():
    eu_ch = Rule("intl-eu", "allow", classes=(C.INTERNATIONAL,), regions=("EU", "CH"), lists=("direction",))
    rest = Rule("intl-rest", "deny", classes=(C.INTERNATIONAL,))
    for dialed, region in (("0039 06 4567 8901", "IT"), ("0041 44 668 18 00", "CH"), ("0049 30 1234567", "DE")):
        d = decide(snap(dialed, [eu_ch, rest]))
        assert (d.verdict, d.rule, d.region) == (Verdict.ALLOW, "intl-eu", region), d
    for dialed in ("001 212 555 0123", "0044 20 7946 0000", "0053 7 8345678"):
        d = decide(snap(dialed, [eu_ch, rest]))
        assert (d.verdict, d.rule) == (Verdict.DENY, "intl-rest"), d


def test_a_deny_rule_may_name_the_regions_it_spares():
    all_but_eu = Rule("eu-only", "deny", classes=(C.INTERNATIONAL,), except_regions=("EU",))
    assert decide(snap("0039 06 4567 8901", [all_but_eu])).verdict is Verdict.ALLOW
    d = decide(snap("001 212 555 0123", [all_but_eu]))
    assert (d.verdict, d.reason, d.region) == (Verdict.DENY, "rule_deny", "US")


def test_region_names_are_checked_and_groups_kept_as_written():
    rule = Rule.from_json({"name": "r", "action": "allow", "regions": ["eu", " ch"], "except_regions": ["FR"]})
    assert (rule.regions, rule.except_regions) == (("EU", "CH"), ("FR",))
    with pytest.raises(ValueError, match="must be a list of strings"):  # one typed reading (issue 30)
        Rule.from_json({"name": "r", "action": "allow", "except_regions": "FR"})
    assert Rule.from_json(rule.to_json()) == rule
    for bad in (["XX"], ["EUROPE"], ["+33"]):
        with pytest.raises(ValueError, match="unknown region"):
            Rule.from_json({"name": "r", "action": "allow", "regions": bad})


# -- part 2: the tenant's high-risk list ------------------------------------------------------
SATELLITE = "+881 612 345 678"


def test_satellite_and_international_networks_are_refused_by_default():
    for dialed, listed in ((SATELLITE, "+881"), ("+870 773 111632", "+870"), ("+882 3421234", "+882"),
                           ("+883 510012345", "+883")):
        d = decide(snap(dialed, [INTL_LISTED]))
        assert (d.verdict, d.reason, d.rule, d.region) == (Verdict.DENY, "high_risk_destination", "intl", "001")
        assert f"{listed} is on the tenant's high-risk list" in d.detail
    assert decide(snap("112", [INTL_LISTED])).verdict is Verdict.ALLOW  # emergency, whatever the list


def test_the_high_risk_list_asks_for_a_pin_when_the_tenant_says_so():
    d = decide(snap(SATELLITE, [INTL_LISTED], high_risk_action="pin", pin_feature=True))
    assert (d.verdict, d.pin_holders) == (Verdict.CHALLENGE, ("alice",)) and "high-risk destination (+881)" in d.detail
    off = decide(snap(SATELLITE, [INTL_LISTED], high_risk_action="pin"))
    assert (off.verdict, off.reason) == (Verdict.DENY, "pin_unavailable") and "high-risk list" in off.detail
    # Nobody can key a PIN on a forward: refused even where the rule allows unattended calls.
    fwd = Rule("intl", "allow", classes=(C.INTERNATIONAL,), lists=("direction",), unattended=True)
    d = decide(snap(SATELLITE, [fwd], unattended="forward", high_risk_action="pin", pin_feature=True))
    assert (d.verdict, d.reason) == (Verdict.DENY, "unattended_chargeable")


def test_operators_add_regions_and_can_empty_the_list():
    cuba = "0053 7 8345678"
    assert decide(snap(cuba, [INTL_LISTED])).verdict is Verdict.ALLOW
    settings = TenantSettings.from_mapping({"high_risk": " +881, cu ,+870"})
    assert settings.high_risk == "+881,+870,CU"
    d = decide(snap(cuba, [INTL_LISTED], high_risk=settings.high_risk))
    assert (d.verdict, d.reason) == (Verdict.DENY, "high_risk_destination") and "CU is on" in d.detail
    assert decide(snap(SATELLITE, [INTL_LISTED], high_risk="")).verdict is Verdict.ALLOW
    for bad in ({"high_risk": "+88x"}, {"high_risk": "Atlantis"}, {"high_risk_action": "ask"}):
        with pytest.raises(ValueError, match="high_risk"):
            TenantSettings.from_mapping(bad)


def test_failing_open_without_redis_never_opens_a_high_risk_destination():
    def flow(dialed):
        cached = TenantSettings(fail_mode="open")
        return SimpleNamespace(park=SimpleNamespace(tenant="acme", dialed=dialed, language="", country=""),
                               svc=SimpleNamespace(settings_cache={"acme": cached},
                                                   cfg=SimpleNamespace(default_country="FR")))

    assert degraded(flow("0044 20 7946 0000"), "service_unavailable").reason == "fail_open"
    d = degraded(flow(SATELLITE), "service_unavailable")
    assert (d.verdict, d.reason) == (Verdict.DENY, "service_unavailable") and "+881" in d.detail


# -- the command and the API ------------------------------------------------------------------
@pytest.mark.redis
def test_check_json_gives_the_class_and_region_of_the_issues_numbers(tg):  # noqa: F811
    ok(tg, "tenant", "create", "frco", "country=FR")
    ok(tg, "tenant", "create", "usco", "country=US")
    for t in ("frco", "usco"):
        ok(tg, "ext", "add", t, "1001")
    for tenant, dialed, region in (("frco", "+979 1234 56789", "001"), ("frco", "0044 909 879 0000", "GB"),
                                   ("usco", "011 39 899 123456", "IT")):
        got = json.loads(ok(tg, "check", tenant, "--from", "1001", "--to", dialed, "--json"))
        assert (got["class"], got["region"]) == ("premium", region), got


@pytest.mark.redis
def test_rules_with_regions_and_the_high_risk_list_from_the_command(tg):  # noqa: F811
    ok(tg, "tenant", "create", "acme", "country=FR")
    ok(tg, "ext", "add", "acme", "1001")
    ok(tg, "rules", "add", "acme", "intl-eu", "--action", "allow", "--class", "international",
       "--region", "EU", "--region", "ch")
    ok(tg, "rules", "add", "acme", "intl-rest", "--action", "deny", "--class", "international")
    assert "EU,CH" in ok(tg, "rules", "list", "acme")
    assert json.loads(ok(tg, "rules", "list", "acme", "--json"))[0]["regions"] == ["EU", "CH"]
    assert check(tg, "--from", "1001", "--to", "0041 44 668 18 00")["rule"] == "intl-eu"
    assert check(tg, "--from", "1001", "--to", "001 212 555 0123")["reason"] == "rule_deny"
    rc, _, err = tg("rules", "add", "acme", "x", "--action", "allow", "--region", "Narnia")
    assert rc == 2 and err.count("\n") == 1 and "unknown region 'Narnia'" in err
    ok(tg, "tenant", "set", "acme", "high_risk=+870,+881,+882,+883,CH")
    got = check(tg, "--from", "1001", "--to", "0041 44 668 18 00")
    assert (got["verdict"], got["reason"]) == ("DENY", "high_risk_destination")


@pytest.mark.redis
def test_rules_with_regions_over_the_api(redis_url):
    from tests.webkit import api, make_app, token

    app, store = make_app(redis_url)
    alice = api(app, token(store, "alice"))
    body = {"name": "intl-eu", "action": "allow", "classes": ["international"], "regions": ["EU", "CH"]}
    r = alice.post("/tenants/acme/rules", json=body)
    assert r.status_code == 201 and r.get_json()["regions"] == ["EU", "CH"]
    r = alice.patch("/tenants/acme/rules/intl-eu", json={"except_regions": ["FR"]})
    assert r.get_json()["except_regions"] == ["FR"]
    bad = alice.post("/tenants/acme/rules", json={**body, "name": "x", "regions": ["Mordor"]})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_input"
    r = alice.patch("/tenants/acme", json={"settings": {"high_risk": "+881,CU", "high_risk_action": "pin"}})
    assert (r.get_json()["high_risk"], r.get_json()["high_risk_action"]) == ("+881,CU", "pin")
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = doc["paths"]["/api/v1/tenants/{tenant}/rules"]["post"]["requestBody"]["content"]["application/json"]
    assert {"regions", "except_regions"} <= set(schema["schema"]["properties"])


@pytest.mark.redis
def test_the_rules_page_takes_regions(redis_url):
    from tests.test_web_pages import Browser
    from tests.webkit import make_app

    app, store = make_app(redis_url)
    page = Browser(app, "alice")
    page.post("/t/acme/rules", {"op": "add", "name": "intl-eu", "action": "allow", "classes": ["international"],
                                "regions": "EU, ch", "except_regions": "FR"})
    rule = store.admin.rules("acme")[-1]
    assert (rule.name, rule.regions, rule.except_regions) == ("intl-eu", ("EU", "CH"), ("FR",))
    html = page.text("/t/acme/rules?edit=intl-eu")
    assert "EU, CH except FR" in html and 'name="regions" placeholder="EU, CH" value="EU, CH"' in html
    page.post("/t/acme/rules", {"op": "add", "name": "x", "action": "allow", "regions": "Atlantis"})
    assert "unknown region &#39;Atlantis&#39;" in page.text("/t/acme/rules")
