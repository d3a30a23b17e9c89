"""The HTTP API (/api/v1) against a real redis-server: every endpoint, its
errors, the permission matrix, tokens, and the OpenAPI document."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

import controller.web.api_entries  # noqa: F401 (registers the endpoints listed in ENDPOINTS)
import controller.web.api_reports  # noqa: F401
import controller.web.api_tenants  # noqa: F401
from controller.web.api import ENDPOINTS
from tests.webkit import api, make_app, token

pytestmark = pytest.mark.redis


@pytest.fixture
def web(redis_url):
    app, store = make_app(redis_url)
    return app, store, api(app, token(store, "prov")), api(app, token(store, "alice"))


def test_openapi_document_is_valid_and_lists_exactly_the_routes(web):
    app = web[0]
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(doc)
    served = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule), m.lower()) for r in app.url_map.iter_rules()
              if r.rule.startswith("/api/v1/") and r.rule != "/api/v1/openapi.json"
              for m in r.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    assert len(documented) == len(ENDPOINTS) >= 40


def test_every_endpoint_does_what_it_says(web):
    app, store, prov, alice = web
    hit = set()

    @app.after_request
    def _seen(resp):
        from flask import request

        if request.url_rule is not None and resp.status_code < 400:
            hit.add((request.method, request.url_rule.rule.removeprefix("/api/v1")))
        return resp

    assert prov.get("/me").get_json()["role"] == "provider"
    assert prov.get("/tenants").get_json() == ["acme", "globex"]
    assert alice.get("/tenants").get_json() == ["acme"]
    r = prov.post("/tenants", json={"name": "initech", "settings": {"country": "CH"}})
    assert r.status_code == 201 and r.get_json()["country"] == "CH"
    assert prov.patch("/tenants/initech", json={"settings": {"pin_feature": True}}).get_json()["pin_feature"] == "on"
    assert prov.get("/tenants/initech").get_json()["pin_feature"] == "on"
    assert prov.put("/tenants/initech/overrides/+881", json={"class": "premium"}).status_code == 200
    assert prov.get("/tenants/initech/overrides").get_json() == {"+881": "premium"}
    assert prov.delete("/tenants/initech/overrides/+881").status_code == 200
    # extensions and PINs
    r = prov.post("/tenants/initech/extensions", json={"number": "1003", "name": "Accueil",
                                                       "caller_ids": ["044 668 18 00"]})
    assert r.status_code == 201 and r.get_json()["caller_ids"] == ["+41446681800"]
    assert prov.patch("/tenants/initech/extensions/1003", json={"pin_enabled": True}).get_json()["pin_enabled"]
    r = prov.put("/tenants/initech/extensions/1003/pins/Anna", json={"pin": "2468"})
    assert r.status_code == 200 and "2468" not in r.get_data(as_text=True)
    assert prov.get("/tenants/initech/extensions/1003").get_json()["pin_holders"] == ["Anna"]
    assert [e["extension"] for e in prov.get("/tenants/initech/extensions").get_json()] == ["1003"]
    assert prov.post("/tenants/initech/extensions/1003/unlock").get_json() == {"extension": "1003",
                                                                               "was_locked": False}
    c = prov.post("/tenants/initech/check", json={"extension": "1003", "to": "044 668 18 00"}).get_json()
    assert c["verdict"] == "CHALLENGE" and c["pin_holders"] == ["Anna"]
    assert prov.delete("/tenants/initech/extensions/1003/pins/Anna").status_code == 200
    assert prov.post("/tenants/initech/extensions", json={"number": "1009"}).status_code == 201
    assert prov.delete("/tenants/initech/extensions/1009").status_code == 200
    assert prov.get("/tenants/initech/extensions/1009").status_code == 404
    # lists and entries
    assert prov.post("/tenants/initech/lists", json={"name": "direction"}).status_code == 201
    r = prov.post("/tenants/initech/entries", json={"list": "direction", "first_name": "Élise",
                                                    "last_name": "Dupont", "phone": "079 123 45 67"})
    assert r.status_code == 201 and r.get_json()["phone"] == "+41791234567"
    assert prov.get("/tenants/initech/lists").get_json() == {"direction": 1}
    assert prov.patch("/tenants/initech/entries/direction/+41791234567",
                      json={"state": "disabled"}).get_json()["state"] == "disabled"
    assert prov.get("/tenants/initech/entries/direction/079 123 45 67").get_json()["state"] == "disabled"
    assert prov.get("/tenants/initech/entries?q=dupont").get_json()[0]["first_name"] == "Élise"
    assert prov.get("/tenants/initech/entries?state=enabled").get_json() == []
    csv_text = "list,first_name,last_name,phone,state\ndirection,Karl,Weber,079 765 43 21,enabled\n"
    assert prov.post("/tenants/initech/entries/import", data=csv_text,
                     content_type="text/csv").get_json() == {"added": 1, "updated": 0}
    exported = prov.get("/tenants/initech/entries/export")
    assert exported.mimetype == "text/csv" and "+41797654321" in exported.get_data(as_text=True)
    assert prov.get("/tenants/initech/entries/stale?days=1").get_json() == []
    assert prov.get("/tenants/initech/entries/expiring?days=30").get_json() == []
    assert prov.delete("/tenants/initech/entries/direction/+41797654321").status_code == 200
    # rules
    r = prov.post("/tenants/initech/rules", json={"name": "intl", "action": "allow", "classes": ["international"],
                                                  "lists": ["direction"], "days": "mon-fri", "hours": "08:00-18:00"})
    assert r.status_code == 201 and r.get_json()["schedule"]
    prov.post("/tenants/initech/rules", json={"name": "premium-deny", "action": "deny", "classes": ["premium"]})
    assert prov.post("/tenants/initech/rules/premium-deny/move", json={"position": 1}).status_code == 200
    assert [r["name"] for r in prov.get("/tenants/initech/rules").get_json()] == ["premium-deny", "intl"]
    r = prov.patch("/tenants/initech/rules/intl", json={"classes": ["international", "premium"], "days": ""})
    assert r.get_json()["classes"] == ["international", "premium"] and "schedule" not in r.get_json()
    assert prov.get("/tenants/initech/rules").get_json()[1]["position"] == 2
    assert prov.delete("/tenants/initech/rules/premium-deny").status_code == 200
    # audit, usage, calls, tokens, log
    page = prov.get("/tenants/initech/audit?limit=3").get_json()
    assert len(page["entries"]) == 3 and page["next_cursor"]
    older = prov.get(f"/tenants/initech/audit?limit=3&cursor={page['next_cursor']}").get_json()
    assert {e["id"] for e in older["entries"]}.isdisjoint({e["id"] for e in page["entries"]})
    assert all(e["actor"].startswith("api:prov/") for e in page["entries"] if e["kind"] == "change")
    assert prov.get("/tenants/initech/audit?kind=change&actor=prov&since=1h").get_json()["entries"]
    csv_audit = prov.get("/tenants/initech/audit/export?kind=change").get_data(as_text=True)
    assert csv_audit.startswith("id,time,tenant,kind,actor") and "rule.add" in csv_audit
    assert prov.get("/tenants/initech/usage").get_json() == []
    assert prov.get("/calls").get_json() == []
    r = prov.post("/tokens", json={"label": "script"})
    assert r.status_code == 201 and r.get_json()["token"].startswith("tg_")
    assert any(t["label"] == "script" for t in prov.get("/tokens").get_json())
    assert prov.delete(f"/tokens/{r.get_json()['id']}").status_code == 200
    assert any(e["event"] == "token.create" for e in prov.get("/access-log").get_json())
    assert prov.delete("/tenants/initech/lists/direction?force=true").status_code == 200
    assert prov.delete("/tenants/initech").status_code == 200
    assert prov.get("/tenants").get_json() == ["acme", "globex"]
    assert hit == {(e["method"], e["path"]) for e in ENDPOINTS}  # every endpoint answered with success


@pytest.mark.parametrize("method,path,payload,status,code", [
    ("post", "/tenants/acme/entries", {"list": "direction", "first_name": "X", "phone": "not a number"},
     400, "invalid_input"),
    ("post", "/tenants/acme/entries", {"list": "nope", "first_name": "X", "phone": "0612345678"}, 404, "not_found"),
    ("post", "/tenants/acme/entries", {"list": "direction", "first_name": "X", "phone": "1001"}, 409,
     "already_exists"),
    ("post", "/tenants/acme/entries", "not json", 400, "invalid_input"),
    ("post", "/tenants/acme/entries", ["a", "list"], 400, "invalid_input"),
    ("post", "/tenants/acme/rules", {"name": "x", "action": "maybe"}, 400, "invalid_input"),
    ("post", "/tenants/acme/rules", {"name": "x", "action": "allow", "pin": "yes"}, 400, "invalid_input"),
    ("post", "/tenants/acme/rules/premium/move", {"position": 9}, 400, "invalid_input"),
    ("patch", "/tenants/acme", {"settings": {"country": "XX"}}, 400, "invalid_input"),
    ("patch", "/tenants/acme", {"settings": {"pin_tries": "many"}}, 400, "invalid_input"),
    ("put", "/tenants/acme/extensions/1001/pins/Anna", {"pin": "12"}, 400, "invalid_input"),
    ("put", "/tenants/acme/extensions/1001/pins/Anna", {"pin": "1234"}, 200, None),
    ("patch", "/tenants/acme/extensions/1001", {"pin_enabled": True}, 400, "invalid_input"),
    ("get", "/tenants/acme/extensions/9999", None, 404, "not_found"),
    ("get", "/tenants/acme/entries/stale?days=x", None, 400, "invalid_input"),
    ("get", "/tenants/acme/entries/expiring?days=-1", None, 400, "invalid_input"),
    ("post", "/tenants/acme/entries", {"list": "direction", "first_name": "X", "phone": "0612345678",
                                       "valid_until": "next week"}, 400, "invalid_input"),
    ("patch", "/tenants/acme/entries/direction/1001", {"valid_from": "2026-07-01", "valid_until": "2026-06-01"},
     400, "invalid_input"),
    ("get", "/tenants/acme/audit?since=yesterday", None, 400, "invalid_input"),
    ("get", "/tenants/acme/audit?cursor=x", None, 400, "invalid_input"),
    ("post", "/tenants/acme/entries/import", "list,first_name\nx,y\n", 400, "invalid_input"),
    ("post", "/tenants/acme/check", {"extension": "1001"}, 400, "invalid_input"),
    ("delete", "/tenants/acme/lists/direction", None, 400, "invalid_input"),
    ("get", "/nothing/here", None, 404, "not_found"),
    ("put", "/tenants", None, 405, "method_not_allowed"),
])
def test_errors_are_json_with_a_stable_code_and_change_nothing(web, method, path, payload, status, code):
    app, store, prov, _ = web
    before = store.admin.entries("acme"), store.admin.rules("acme"), store.admin.get_tenant("acme")
    kw = {"json": payload} if isinstance(payload, (dict, list)) else {"data": payload} if payload else {}
    r = getattr(prov, method)(path, **kw)
    assert r.status_code == status, r.get_data(as_text=True)
    if code:
        err = r.get_json()["error"]
        assert err["code"] == code and err["message"] and "\n" not in err["message"]
        assert (store.admin.entries("acme"), store.admin.rules("acme"), store.admin.get_tenant("acme")) == before


def _fill(path: str, tenant: str) -> str:
    values = {"tenant": tenant, "number": "1001", "holder": "Anna", "name": "direction", "phone": "1001",
              "prefix": "+881", "token_id": "x"}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize("e", [e for e in ENDPOINTS if "<tenant>" in e["path"]],
                         ids=lambda e: f"{e['method']} {e['path']}")
def test_a_tenant_admin_gets_404_on_every_object_of_another_tenant(web, e):
    app, store, _, alice = web
    before = store.r.dbsize()
    r = getattr(alice, e["method"].lower())(_fill(e["path"], "globex"), json={"name": "x", "pin": "1234",
                                                                              "settings": {}})
    # the provider's own endpoints say 403 to every administrator, whether the tenant exists or not
    expected = (403, "forbidden") if e["provider"] else (404, "not_found")
    assert (r.status_code, r.get_json()["error"]["code"]) == expected
    assert "globex" not in r.get_data(as_text=True)
    assert store.r.dbsize() == before  # nothing written, not even an audit entry


@pytest.mark.parametrize("method,path,payload", [
    ("patch", "/tenants/acme", {"settings": {"pin_feature": "on"}}),
    ("patch", "/tenants/acme", {"settings": {"route": "sofia/gateway/other/{e164}"}}),
    ("patch", "/tenants/acme", {"settings": {"trusted_sources": "trunk1"}}),
    ("post", "/tenants", {"name": "mine"}),
    ("delete", "/tenants/acme", None),
])
def test_a_tenant_admin_cannot_touch_the_providers_switches(web, method, path, payload):
    app, store, prov, alice = web
    r = getattr(alice, method)(path, **({"json": payload} if payload else {}))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert store.admin.get_tenant("acme").pin_feature is False
    assert store.admin.tenants() == ["acme", "globex"]
    # the administrator may change the tenant's own settings
    assert alice.patch("/tenants/acme", json={"settings": {"language": "de"}}).status_code == 200
    assert prov.patch("/tenants/acme", json={"settings": {"pin_feature": "on"}}).status_code == 200


def test_a_revoked_token_is_refused_at_once_and_bad_tokens_never_pass(web):
    app, store, prov, _ = web
    token_id, tok = store.accounts.create_token("alice", "doomed", actor="test")
    me = api(app, tok)
    assert me.get("/tenants/acme").status_code == 200
    store.accounts.revoke_token("alice", token_id, actor="test")
    r = me.get("/tenants/acme")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
    client = app.test_client()
    for hdr in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer tg_forged"},
                {"Authorization": "Basic YWxpY2U6YWxpY2UtcGFzcy0xMjM="}):
        assert client.get("/api/v1/tenants", headers=hdr).status_code == 401
    # an account removed takes its tokens with it
    tok2 = token(store, "gina")
    store.accounts.remove("gina", actor="test")
    assert api(app, tok2).get("/tenants").status_code == 401


def test_the_api_ignores_browser_sessions(web):
    """No cookie is honoured under /api: another site cannot ride a browser session."""
    from tests.webkit import login

    app = web[0]
    client = app.test_client()
    assert login(client, "alice").status_code == 302
    assert client.get("/t/acme/numbers", base_url="https://localhost",
                      environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 200
    assert client.get("/api/v1/tenants", base_url="https://localhost",
                      environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 401


def test_check_answers_the_json_of_the_cli(web, redis_url):
    app, store, prov, _ = web
    got = prov.post("/tenants/acme/check", json={"extension": "1001", "to": "0899 12 34 56"}).get_json()
    cli = subprocess.run([sys.executable, "-m", "controller", "--redis-url", redis_url, "check", "acme",
                          "--from", "1001", "--to", "0899 12 34 56", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout) == got
    assert got["verdict"] == "ALLOW" and got["authorized_list"] == "direction"


def test_restricted_feature_use_is_counted_per_person(web):
    """Seed 000, practice 4: who used the restricted features, allowed or refused."""
    app, store, prov, alice = web
    calls = [("1001", "", "premium", "ALLOW", "+33899123456"), ("1001", "", "premium", "ALLOW", "+33899123457"),
             ("1002", "", "international", "DENY", "+442079460000"), ("1003", "Anna", "national", "ALLOW",
                                                                        "+33140000000"),
             ("1003", "", "national", "ALLOW", "+33140000001"), ("1004", "", "tollfree", "ALLOW", "+33800123456")]
    for i, (ext, holder, cls, verdict, e164) in enumerate(calls):
        store.audit.append("verdict", "acme", uuid=f"u{i}", extension=ext, pin_holder=holder, verdict=verdict,
                           e164=e164, dialed=e164, outcome="bridge_sent", **{"class": cls})
    rows = {(r["extension"], r["pin_holder"], r["class"]): r for r in alice.get("/tenants/acme/usage").get_json()}
    assert set(rows) == {("1001", "", "premium"), ("1002", "", "international"), ("1003", "Anna", "national")}
    assert (rows[("1001", "", "premium")]["allowed"], rows[("1001", "", "premium")]["last_dialed"]) == \
        (2, "+33899123457")
    assert rows[("1002", "", "international")]["refused"] == 1
    from tests.webkit import login

    c = app.test_client()
    login(c, "alice")
    text = c.get("/t/acme/usage?export=csv", base_url="https://localhost",
                 environ_base={"REMOTE_ADDR": "10.0.0.7"}).get_data(as_text=True)
    assert text.splitlines()[0].startswith("extension,pin_holder,class") and "Anna" in text


def test_an_export_imports_back_unchanged(web):
    """Empty cells stay empty (a quote is only for what a spreadsheet would run)."""
    app, store, prov, _ = web
    store.admin.add_entry("acme", "direction", "", "Solo", "06 12 34 56 78")
    store.admin.add_entry("acme", "direction", "=HYPERLINK(1)", "", "06 12 34 56 79", "disabled")
    text = prov.get("/tenants/acme/entries/export").get_data(as_text=True)
    rows = text.splitlines()
    assert "direction,,Solo,+33612345678,enabled," in text and ",'," not in text
    assert any(r.startswith("direction,'=HYPERLINK(1),,+33612345679,disabled,") for r in rows)
    assert prov.post("/tenants/globex/entries/import?replace=true", data=text,
                     content_type="text/csv").status_code == 200
    fields = ("list", "first_name", "last_name", "phone", "state")
    got = {tuple(r[k] for k in fields) for r in store.admin.entries("globex")}
    assert ("direction", "", "Solo", "+33612345678", "enabled") in got
    assert ("direction", "'=HYPERLINK(1)", "", "+33612345679", "disabled") in got
