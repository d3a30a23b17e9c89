"""Time-limited authorizations (issue 26, part 3; seed 000, good practice 3):
an entry may hold from / until an instant; outside it the next call is
refused with no job to run, and the audit says why."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from zoneinfo import ZoneInfo

import pytest

from controller.store import Store
from policies.classes import CallClass as C
from policies.decide import decide
from policies.identity import Identity, IdentityKind
from policies.model import CallerAuth, Extension, Rule, Snapshot, TenantSettings, Verdict
from policies.validity import Grant, decode_grant, encode_grant, parse_instant
from tests.test_cli import ok, tg  # noqa: F401 (fixture)

PARIS = ZoneInfo("Europe/Paris")
JUNE_1 = int(dt.datetime(2026, 6, 1, tzinfo=PARIS).timestamp())
JULY_1 = int(dt.datetime(2026, 7, 1, tzinfo=PARIS).timestamp())
PREMIUM = Rule("premium", "allow", classes=(C.PREMIUM,), lists=("direction",))


def at(now, timed=None, plain=None, rules=(PREMIUM,)):
    auth = CallerAuth(plain or {}, timed if timed is not None else {"direction": (Grant("1001", JUNE_1, JULY_1),)})
    return decide(Snapshot(tenant="acme", settings=TenantSettings(country="FR"), dialed="0899123456",
                           extension=Extension("1001"), caller_auth=auth, rules=tuple(rules), now=now,
                           identity=Identity(IdentityKind.EXTENSION, "1001")))


# -- the policy -----------------------------------------------------------------------------
def test_an_entry_holds_only_within_its_window_and_the_refusal_says_why():
    before, inside, after = at(JUNE_1 - 1), at(JUNE_1), at(JULY_1)
    assert (before.verdict, before.reason) == (Verdict.DENY, "authorization_not_yet_valid")
    assert "only from 2026-06-01 00:00 Europe/Paris" in before.detail
    assert (inside.verdict, inside.authorized_list, inside.authorized_phone) == (Verdict.ALLOW, "direction", "1001")
    assert (at(JULY_1 - 1).verdict, after.verdict, after.reason) == (Verdict.ALLOW, Verdict.DENY,
                                                                      "authorization_expired")
    assert "only until 2026-07-01 00:00 Europe/Paris" in after.detail and after.rule == "premium"


def test_a_grant_without_a_window_or_another_that_holds_lets_the_caller_through():
    assert at(JULY_1, plain={"direction": "1001"}).verdict is Verdict.ALLOW
    two = {"direction": (Grant("+33612345678", 0, JUNE_1), Grant("1001", JUNE_1, 0))}
    assert at(JULY_1, timed=two).authorized_phone == "1001"
    assert at(JULY_1, timed={}).reason == "not_authorized"


def test_index_values_keep_their_old_form_without_a_window_and_corrupt_ones_hold_never():
    assert encode_grant("direction") == "direction" and decode_grant("direction") == ("direction", 0, 0)
    assert decode_grant(encode_grant("+33612345678", 0, JULY_1)) == ("+33612345678", 0, JULY_1)
    for corrupt in ("direction|", "direction|x|", "direction|||", "direction|12|y"):
        grant = Grant(*decode_grant(corrupt))
        assert not any(grant.holds(t) for t in (0, JUNE_1, JULY_1, 4102444799)), corrupt


def test_operators_write_dates_as_people_do():
    assert parse_instant("2026-06-01", PARIS) == JUNE_1
    assert parse_instant("2026-06-30", PARIS, end=True) == JULY_1  # through that day
    assert parse_instant("2026-06-30T22:00:00Z", None) == JULY_1
    assert parse_instant("2026-07-01T00:00+02:00", None) == parse_instant("2026-07-01 00:00", PARIS) == JULY_1
    assert parse_instant("", PARIS) == 0
    for bad, zone, words in (("next week", PARIS, "is not a date"), ("1999-12-31", PARIS, "between 2000"),
                             ("2026-06-01", None, "several time zones")):
        with pytest.raises(ValueError, match=words):
            parse_instant(bad, zone)


# -- the store: the window rides with the grant a call reads --------------------------------
@pytest.fixture
def store(redis_url):
    s = Store.open(redis_url, actor="test", warn=False)
    a = s.admin
    a.create_tenant("acme", {"country": "FR", "trusted_sources": "fmc"})
    a.put_extension("acme", "1001", create=True)
    a.create_list("acme", "direction")
    a.add_rule("acme", "premium", "allow", classes=["premium"], lists=["direction"])
    return s


def verdict_at(store, now, **who):
    loaded = store.calls.load("acme", who.get("ext", "1001"), who.get("cid", ""), "0899123456",
                              source=who.get("source", ""), now=now)
    return decide(loaded.snapshot)


@pytest.mark.redis
def test_expiry_takes_effect_on_the_next_call_with_no_job_to_run(store):
    a = store.admin
    row = a.add_entry("acme", "direction", "Élise", "Dupont", "1001", valid_from="2026-06-01",
                      valid_until="2026-06-30")
    assert (row["valid_from"], row["valid_until"]) == ("2026-06-01T00:00:00+02:00", "2026-07-01T00:00:00+02:00")
    a.add_entry("acme", "direction", "Jean", "Martin", "+33612345678", valid_until="2026-06-30T18:00")
    reasons = [verdict_at(store, t).reason for t in (JUNE_1 - 60, JUNE_1 + 60, JULY_1 + 60)]
    assert reasons == ["authorization_not_yet_valid", "allowed", "authorization_expired"]
    cid = dict(cid="0612345678", source="fmc", ext="")  # a trusted source's caller ID carries its window too
    assert [verdict_at(store, t, **cid).reason for t in (JUNE_1, JULY_1 - 3600)] == ["allowed",
                                                                                    "authorization_expired"]
    a.update_entry("acme", "direction", "1001", valid_until="")  # renewed for good: the next call passes
    assert verdict_at(store, JULY_1 + 60).reason == "allowed"
    a.update_entry("acme", "direction", "1001", state="disabled")
    assert verdict_at(store, JULY_1 + 60).reason == "not_authorized"
    a.remove_entry("acme", "direction", "+33612345678")
    assert store.r.smembers("tg:{acme}:auth:+33612345678") == set()
    changes = [f for _, f in store.audit.read("acme", 50) if f.get("action") == "entry.update"]
    assert '"valid_until": ""' in changes[0]["after"]


@pytest.mark.redis
def test_bad_windows_are_refused_and_change_nothing(store):
    a = store.admin
    for kw in ({"valid_until": "tomorrow"}, {"valid_from": "2026-07-01", "valid_until": "2026-06-01"}):
        with pytest.raises(Exception, match="validity"):
            a.add_entry("acme", "direction", "Élise", "Dupont", "1001", **kw)
    assert a.entries("acme") == []


# -- the command, the API, the page ---------------------------------------------------------
@pytest.mark.redis
def test_numbers_review_lists_entries_expiring_soon_or_expired(tg, tmp_path):  # noqa: F811
    ok(tg, "tenant", "create", "acme", "country=FR")
    ok(tg, "lists", "create", "acme", "direction")
    today = dt.date.today()
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Old", "--phone", "1001",
       "--valid-until", str(today - dt.timedelta(days=3)))
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Soon", "--phone", "1002",
       "--valid-until", str(today + dt.timedelta(days=5)))
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Later", "--phone", "1003",
       "--valid-from", str(today), "--valid-until", str(today + dt.timedelta(days=60)))
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Always", "--phone", "1004")
    review = json.loads(ok(tg, "numbers", "review", "acme", "--json"))
    assert [(r["first_name"], r["review"]) for r in review] == [("Old", "expired"), ("Soon", "expiring")]
    assert "expired" in ok(tg, "numbers", "review", "acme")
    listed = ok(tg, "numbers", "list", "acme")
    assert f"until {today + dt.timedelta(days=61)} 00:00" in listed and "always" in listed
    ok(tg, "numbers", "edit", "acme", "direction", "1001", "--valid-until", str(today + dt.timedelta(days=30)))
    assert [r["first_name"] for r in json.loads(ok(tg, "numbers", "review", "acme", "--json"))] == ["Soon"]
    rc, _, err = tg("numbers", "edit", "acme", "direction", "1001", "--valid-until", "soon")
    assert rc == 2 and err.count("\n") == 1 and "validity" in err
    # CSV: exported with the windows, imported back (the columns are optional on import).
    exported = ok(tg, "numbers", "export", "acme")
    rows = {r["first_name"]: r for r in csv.DictReader(io.StringIO(exported))}
    assert rows["Later"]["valid_from"].startswith(str(today)) and rows["Always"]["valid_until"] == ""
    ok(tg, "numbers", "remove", "acme", "direction", "1003")
    src = tmp_path / "in.csv"
    src.write_text(exported, encoding="utf-8")
    assert "1 new and 3 updated" in ok(tg, "numbers", "import", "acme", str(src), "--replace")
    again = {r["first_name"]: r for r in csv.DictReader(io.StringIO(ok(tg, "numbers", "export", "acme")))}
    assert [again[n][k] for n in rows for k in ("valid_from", "valid_until")] == \
        [rows[n][k] for n in rows for k in ("valid_from", "valid_until")]


@pytest.mark.redis
def test_the_api_and_the_page_carry_the_window(redis_url):
    from tests.test_web_pages import Browser
    from tests.webkit import api, make_app, token

    app, store = make_app(redis_url)
    alice = api(app, token(store, "alice"))
    r = alice.post("/tenants/acme/entries", json={"list": "direction", "first_name": "Jean", "phone": "0612345678",
                                                  "valid_until": "2020-01-31"})
    assert r.status_code == 201 and r.get_json()["valid_until"] == "2020-02-01T00:00:00+01:00"
    assert [e["phone"] for e in alice.get("/tenants/acme/entries/expiring").get_json()] == ["+33612345678"]
    r = alice.patch("/tenants/acme/entries/direction/0612345678", json={"valid_until": ""})
    assert r.get_json()["valid_until"] == "" and alice.get("/tenants/acme/entries/expiring").get_json() == []
    page = Browser(app, "alice")
    page.post("/t/acme/numbers", {"first_name": "Karl", "phone": "0612345679", "state": "enabled",
                                  "list": "direction", "valid_from": "2020-01-01", "valid_until": "2020-12-31"})
    assert store.admin.get_entry("acme", "direction", "0612345679")["valid_until"] == "2021-01-01T00:00:00+01:00"
    html = page.text("/t/acme/numbers?expiring=14")
    assert "Karl" in html and "Jean" not in html and "2021-01-01 00:00" in html


@pytest.mark.redis
@pytest.mark.e2e
def test_the_audit_of_the_next_call_says_the_authorization_ended(rig):
    rig.store.admin.update_entry("acme", "direction", "1001", valid_until="2020-01-01")
    rig.controller("c1")
    refused = rig.call("0899123456", caller_id="1001")
    rig.finish(refused)
    v = rig.verdict_of(refused)
    assert (refused.hangup_cause, v["verdict"], v["reason"]) == ("OUTGOING_CALL_BARRED", "DENY",
                                                                  "authorization_expired")
    assert "only until 2020-01-02 00:00 Europe/Paris" in v["detail"]
    rig.store.admin.update_entry("acme", "direction", "1001", valid_until="")
    renewed = rig.call("0899123456", caller_id="1001")
    rig.finish(renewed)
    assert renewed.bridged and rig.verdict_of(renewed)["reason"] == "allowed"
    rig.assert_clean()
