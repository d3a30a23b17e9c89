"""Every form of the portal, through Flask's test client with real CSRF tokens,
on a real redis-server: each turns into one store call, visible in the audit
under the person's name; refusals are one line and change nothing."""

from __future__ import annotations

import pytest

from tests.webkit import csrf_of, login, make_app

pytestmark = pytest.mark.redis
IP = {"REMOTE_ADDR": "10.0.0.7"}


class Browser:
    def __init__(self, app, user):
        self.c = app.test_client()
        assert login(self.c, user).status_code == 302

    def get(self, path):
        return self.c.get(path, base_url="https://localhost", environ_base=IP)

    def post(self, path, data, form_page=None):
        token = csrf_of(self.get(form_page or path.split("?")[0]).data)
        return self.c.post(path, data={**data, "csrf_token": token}, base_url="https://localhost",
                           environ_base=IP, headers={"Referer": "https://localhost" + path})

    def text(self, path):
        r = self.get(path)
        assert r.status_code == 200, (path, r.status_code)
        return r.get_data(as_text=True)


@pytest.fixture
def web(redis_url):
    app, store = make_app(redis_url)
    return app, store, Browser(app, "alice"), Browser(app, "prov")


def test_rules_are_added_edited_moved_switched_and_removed(web):
    app, store, alice, _ = web
    alice.post("/t/acme/rules", {"op": "add", "name": "mobile-office", "action": "allow", "classes": ["mobile"],
                                 "lists": ["direction"], "days": "mon-fri", "hours": "08:00-18:00"})
    assert [r.name for r in store.admin.rules("acme")] == ["premium", "mobile-office"]
    html = alice.text("/t/acme/rules?edit=mobile-office")
    assert 'value="mon,tue,wed,thu,fri"' in html and 'name="original" value="mobile-office"' in html
    alice.post("/t/acme/rules", {"op": "edit", "original": "mobile-office", "name": "mobile", "action": "deny",
                                 "classes": ["mobile", "shared_cost"], "days": "", "hours": ""})
    rule = store.admin.rules("acme")[1]
    assert (rule.name, rule.action, [c.value for c in rule.classes], rule.schedule) == \
        ("mobile", "deny", ["mobile", "shared_cost"], None)
    alice.post("/t/acme/rules", {"op": "up", "name": "mobile"})
    assert [r.name for r in store.admin.rules("acme")] == ["mobile", "premium"]
    alice.post("/t/acme/rules", {"op": "disable", "name": "mobile"})
    assert store.admin.rules("acme")[0].enabled is False
    bad = alice.post("/t/acme/rules", {"op": "add", "name": "x", "action": "deny", "lists": ["direction"]})
    assert bad.status_code == 302 and "deny rule cannot name lists" in alice.text("/t/acme/rules")
    alice.post("/t/acme/rules", {"op": "remove", "name": "mobile"})
    assert [r.name for r in store.admin.rules("acme")] == ["premium"]
    actors = {f.get("actor") for _, f in store.audit.read("acme", 100) if f.get("action", "").startswith("rule.")}
    assert actors == {"web:alice", "test"}


def test_lists_extensions_pins_and_settings(web):
    app, store, alice, _ = web
    alice.post("/t/acme/lists", {"name": "ventes"})
    assert store.admin.lists("acme") == {"direction": 1, "ventes": 0}
    alice.post("/t/acme/lists", {"delete": "direction"})
    assert "direction" in store.admin.lists("acme")  # it has an entry: refused without "also remove"
    alice.post("/t/acme/extensions", {"number": "1003", "name": "Accueil"})
    alice.post("/t/acme/extensions/1003", {"op": "general", "name": "Hall", "language": "de",
                                           "caller_ids": "01 40 00 00 00; 06 11 22 33 44"})
    e = store.admin.get_extension("acme", "1003")
    assert (e.display_name, e.language, e.caller_ids) == ("Hall", "de", ("+33140000000", "+33611223344"))
    # IVR authentication needs the provider's switch first (seed 001)
    alice.post("/t/acme/extensions/1003", {"op": "ivr", "pin_enabled": "on"})
    assert store.admin.get_extension("acme", "1003").pin_enabled is False
    assert "PIN feature" in alice.text("/t/acme/extensions/1003")
    alice.post("/t/acme/settings", {"has_pin_feature": "1", "set_pin_feature": "on"})
    assert store.admin.get_tenant("acme").pin_feature is False  # the provider's switch
    alice.post("/t/acme/settings", {"set_language": "de", "set_pin_tries": "4"})
    assert (store.admin.get_tenant("acme").language, store.admin.get_tenant("acme").pin_tries) == ("de", 4)
    store.admin.update_tenant("acme", {"pin_feature": "on"})
    alice.post("/t/acme/extensions/1003", {"op": "ivr", "pin_enabled": "on"})
    alice.post("/t/acme/extensions/1003", {"op": "pin", "holder": "Anna", "pin": "2468", "pin2": "2486"})
    assert store.admin.get_extension("acme", "1003").pins == {}
    alice.post("/t/acme/extensions/1003", {"op": "pin", "holder": "Anna", "pin": "2468", "pin2": "2468"})
    ext = store.admin.get_extension("acme", "1003")
    assert ext.pin_enabled and list(ext.pins) == ["Anna"]
    store.r.set("tg:{acme}:ext:1003:locked", "1", ex=600)
    assert "600 s" in alice.text("/t/acme/extensions/1003") or "599 s" in alice.text("/t/acme/extensions/1003")
    alice.post("/t/acme/extensions/1003", {"op": "unlock"})
    assert not store.r.exists("tg:{acme}:ext:1003:locked")
    alice.post("/t/acme/extensions/1003", {"op": "remove_pin", "holder": "Anna"})
    assert store.admin.get_extension("acme", "1003").pins == {}
    alice.post("/t/acme/settings", {"op": "override", "prefix": "+881", "class": "premium"})
    assert {p: c.value for p, c in store.admin.overrides("acme").items()} == {"+881": "premium"}
    alice.post("/t/acme/settings", {"op": "remove_override", "prefix": "+881"})
    assert store.admin.overrides("acme") == {}
    alice.post("/t/acme/extensions/1003?tab=general", {"op": "remove"}, form_page="/t/acme/extensions/1003")
    assert "1003" not in store.admin.extensions("acme")


def test_numbers_search_state_stale_and_export(web):
    app, store, alice, _ = web
    alice.post("/t/acme/numbers", {"first_name": "Karl", "last_name": "Weber", "phone": "+49 30 1234567",
                                   "state": "disabled", "list": "direction"})
    html = alice.text("/t/acme/numbers?q=weber")
    assert "Karl" in html and "Élise" not in html and "030 1234567" in html and "+49301234567" in html
    assert "Karl" in alice.text("/t/acme/numbers?q=301234") and "Karl" not in alice.text("/t/acme/numbers?q=zzz")
    alice.post("/t/acme/numbers/state", {"list": "direction", "phone": "+49301234567", "state": "enabled"},
               form_page="/t/acme/numbers")
    assert store.admin.get_entry("acme", "direction", "+49301234567")["state"] == "enabled"
    store.r.hset("tg:{acme}:entry:direction:+49301234567", "created", "1000")
    stale = alice.text("/t/acme/numbers?stale=90")
    assert "Karl" in stale and "Élise" not in stale
    csv_text = alice.get("/t/acme/numbers/export.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == ("list,first_name,last_name,phone,state,valid_from,valid_until,"
                                        "created,updated,last_used")
    alice.post("/t/acme/numbers/remove", {"list": "direction", "phone": "+49301234567"}, form_page="/t/acme/numbers")
    assert len(store.admin.entries("acme")) == 1
    bad = alice.post("/t/acme/numbers", {"first_name": "X", "phone": "call me", "state": "enabled", "list": "direction"})
    assert bad.status_code == 302 and len(store.admin.entries("acme")) == 1


def test_check_audit_calls_account_and_tenants(web):
    app, store, alice, prov = web
    html = alice.post("/t/acme/check", {"extension": "1001", "to": "0899 12 34 56"}).get_data(as_text=True)
    assert "ALLOW" in html and "direction" in html
    for i in range(60):
        store.audit.append("change", "acme", actor="test", action="entry.update", object=f"direction/{i}",
                           before={"state": "enabled", "first_name": "A"}, after={"state": "disabled",
                                                                                  "first_name": "A"})
    page1 = alice.text("/t/acme/audit?kind=change")
    assert "state=enabled" in page1 and "first_name=A" not in page1  # only what changed
    assert "cursor=" in page1
    assert alice.text("/t/acme/audit?kind=verdict").count("<tr>") <= 2
    assert "since" in alice.text("/t/acme/audit?since=soon")  # one-line error, page still served
    csv_text = alice.get("/t/acme/audit?export=csv&kind=change").get_data(as_text=True)
    assert len(csv_text.splitlines()) >= 61
    assert alice.text("/calls").count("<tr>") == 2  # header and "no call"
    html = alice.post("/account", {"label": "sync"}).get_data(as_text=True)
    token_id = store.accounts.tokens("alice")[0]["id"]
    assert "tg_" in html and token_id in html
    alice.post("/account", {"revoke": token_id})
    assert store.accounts.tokens("alice") == []
    assert alice.post("/tenants", {"name": "mine"}).status_code == 403
    assert alice.get("/t/globex/settings").status_code == 404
    prov.post("/tenants", {"name": "initech", "country": "CH", "language": "de"})
    assert store.admin.get_tenant("initech").country == "CH"
    prov.post("/tenants", {"delete": "initech", "confirm": "wrong"})
    assert "initech" in store.admin.tenants()
    prov.post("/tenants", {"delete": "initech", "confirm": "initech"})
    assert "initech" not in store.admin.tenants()
    prov.post("/t/acme/settings", {"has_pin_feature": "1", "set_pin_feature": "on"})
    assert store.admin.get_tenant("acme").pin_feature is True
    assert "prov" in prov.text("/account") and "Anmelden" in app.test_client().get(
        "/login", headers={"Accept-Language": "de"}).get_data(as_text=True)


def test_a_corrupt_value_in_redis_gives_one_line_and_the_rest_keeps_serving(web):
    app, store, alice, prov = web
    store.r.hset("tg:{acme}:tenant", "pin_tries", "lots")
    assert alice.get("/t/acme/numbers").status_code == 200  # pages that do not read the settings
    r = alice.get("/t/acme/settings")
    assert r.status_code == 500 and "pin_tries" in r.get_data(as_text=True)
    assert "Traceback" not in r.get_data(as_text=True)
    assert prov.get("/t/globex/numbers").status_code == 200
