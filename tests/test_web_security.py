"""The portal as an attack surface: CSRF, session fixation, cookies, the PIN
kept out of every page, log and audit entry, XSS, and login floods."""

from __future__ import annotations

import http.cookiejar
import logging
import re
import time
import urllib.parse
import urllib.request

import pytest

from controller.web.server import serve
from tests.webkit import PASSWORDS, csrf_of, login, make_app, token, api

pytestmark = pytest.mark.redis
HTTPS = {"base_url": "https://localhost"}
SECRET_PIN = "7391584"


def page(client, path, ip="10.0.0.7"):
    return client.get(path, environ_base={"REMOTE_ADDR": ip}, **HTTPS)


def post(client, path, data, ip="10.0.0.7"):
    return client.post(path, data=data, environ_base={"REMOTE_ADDR": ip},
                       headers={"Referer": "https://localhost" + path}, **HTTPS)


@pytest.fixture
def web(redis_url):
    return make_app(redis_url)


def test_forms_without_the_csrf_token_are_refused_and_change_nothing(web):
    app, store = web
    c = app.test_client()
    assert login(c, "alice").status_code == 302
    form = {"first_name": "Eve", "last_name": "X", "phone": "0612345678", "state": "enabled", "list": "direction"}
    assert post(c, "/t/acme/numbers", form).status_code == 400
    other = app.test_client()
    login(other, "prov")
    stolen = csrf_of(page(other, "/t/acme/numbers").data)  # another session's token
    assert post(c, "/t/acme/numbers", {**form, "csrf_token": stolen}).status_code == 400
    assert post(c, "/logout", {}).status_code == 400
    assert [e["first_name"] for e in store.admin.entries("acme")] == ["Élise"]
    good = csrf_of(page(c, "/t/acme/numbers").data)
    assert post(c, "/t/acme/numbers", {**form, "csrf_token": good}).status_code == 302
    assert len(store.admin.entries("acme")) == 2


def _cookie(client, name="tg_session"):
    found = client.get_cookie(name, domain="localhost")
    return found.value if found else None


def test_a_session_planted_before_login_is_worth_nothing_after_it(web):
    app, store = web
    victim = app.test_client()
    page(victim, "/login")
    planted = _cookie(victim)
    assert planted  # the login form's CSRF secret lives in a session
    assert login(victim, "alice").status_code == 302
    assert _cookie(victim) != planted
    attacker = app.test_client()
    attacker.set_cookie("tg_session", planted, domain="localhost")
    assert page(attacker, "/t/acme/numbers").status_code == 302  # to the login page
    # and a session ended in the store is refused everywhere at once
    stolen = _cookie(victim)
    assert page(victim, "/t/acme/numbers").status_code == 200
    store.accounts.end_sessions("alice")
    thief = app.test_client()
    thief.set_cookie("tg_session", stolen, domain="localhost")
    assert page(thief, "/t/acme/numbers").status_code == 302


def test_cookies_are_secure_httponly_samesite_and_pages_carry_security_headers(web):
    app, _ = web
    c = app.test_client()
    r = login(c, "alice")
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("tg_session=")][0]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    r = page(c, "/t/acme/numbers")
    assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["Cache-Control"] == "no-store"
    # no open redirect through the language switch
    assert page(c, "/lang/fr?next=//evil.example/x").headers["Location"] in ("/", "https://localhost/")
    assert page(c, "/lang/de?next=/t/acme/rules").headers["Location"].endswith("/t/acme/rules")


def test_a_first_name_with_markup_is_shown_as_text(web):
    app, store = web
    c = app.test_client()
    login(c, "alice")
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    token_ = csrf_of(page(c, "/t/acme/numbers").data)
    post(c, "/t/acme/numbers", {"first_name": evil, "last_name": "O'Brien & Co", "phone": "06 12 34 56 78",
                                "state": "enabled", "list": "direction", "csrf_token": token_})
    html = page(c, "/t/acme/numbers").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    audit = page(c, "/t/acme/audit").get_data(as_text=True)
    assert "<script>alert(1)" not in audit and "&lt;script&gt;" in audit
    exported = page(c, "/t/acme/numbers/export.csv").get_data(as_text=True)
    assert "O'Brien & Co" in exported


def test_the_pin_never_appears_in_a_page_a_log_or_the_audit(redis_url, caplog):
    """Over real HTTP through gevent's server: set a PIN from the page and the
    API, then search every response, the access log, the audit and Redis."""
    caplog.set_level(logging.DEBUG)
    app, store = make_app(redis_url)
    store.admin.update_tenant("acme", {"pin_feature": "on"})
    app.config["SESSION_COOKIE_SECURE"] = False
    app.config["WTF_CSRF_SSL_STRICT"] = False
    server = serve(app, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_port}"
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    bodies = []

    def fetch(path, data=None, headers=None):
        req = urllib.request.Request(base + path, data=urllib.parse.urlencode(data).encode() if data else None,
                                     headers=headers or {})
        try:
            with opener.open(req, timeout=10) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode()
        bodies.append(text)
        return text

    try:
        html = fetch("/login")
        fetch("/login", {"username": "alice", "password": PASSWORDS["alice"], "csrf_token": csrf_of(html.encode())})
        html = fetch("/t/acme/extensions/1001")
        fetch("/t/acme/extensions/1001", {"op": "pin", "holder": "Anna", "pin": SECRET_PIN, "pin2": SECRET_PIN,
                                          "csrf_token": csrf_of(html.encode())})
        html = fetch("/t/acme/extensions/1001")
        assert "Anna" in html
        fetch("/t/acme/extensions/1001", {"op": "pin", "holder": "Ben", "pin": SECRET_PIN, "pin2": SECRET_PIN + "0",
                                          "csrf_token": csrf_of(html.encode())})
        fetch("/t/acme/extensions/1001", {"op": "pin", "holder": "Ben", "pin": "12ab" + SECRET_PIN,
                                          "pin2": "12ab" + SECRET_PIN, "csrf_token": csrf_of(html.encode())})
        tok = token(store, "alice")
        for pin in (SECRET_PIN, SECRET_PIN + "99999999"):
            req = urllib.request.Request(base + "/api/v1/tenants/acme/extensions/1001/pins/Carl", method="PUT",
                                         data=('{"pin": "%s"}' % pin).encode(),
                                         headers={"Authorization": f"Bearer {tok}",
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    bodies.append(resp.read().decode())
            except urllib.error.HTTPError as exc:
                bodies.append(exc.read().decode())
        for path in ("/t/acme/audit", "/t/acme/usage", "/account", "/t/acme/extensions"):
            fetch(path)
        bodies.append(api(app, tok).get("/tenants/acme/audit?limit=1000").get_data(as_text=True))
    finally:
        server.stop(timeout=2)
    assert sorted(store.admin.get_extension("acme", "1001").pins) == ["Anna", "Carl"]
    access = [r.getMessage() for r in caplog.records if r.name.startswith("tollgate.web")]
    assert any("PUT /api/v1/tenants/acme/extensions/1001/pins/Carl" in line for line in access)
    everything = bodies + access + [r.getMessage() for r in caplog.records]
    for key in store.r.scan_iter(count=1000):
        kind = store.r.type(key)
        if kind == "stream":
            everything += [str(f) for _, f in store.r.xrange(key)]
        elif kind == "hash":
            everything += [str(store.r.hgetall(key))]
        elif kind == "string":
            everything += [str(store.r.get(key))]
    leaks = [text[:80] for text in everything if SECRET_PIN in text]
    assert not leaks, leaks


def test_a_thousand_wrong_logins_do_not_lock_the_service(web):
    app, store = web
    attacker = app.test_client()
    started = time.monotonic()
    codes = [login(attacker, "alice", "wrong-password", ip="203.0.113.9").status_code for _ in range(1000)]
    elapsed = time.monotonic() - started
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    # only five passwords were checked (argon2 costs the attacker, not the server)
    log = store.accounts.read_log(2000)
    assert sum(e["event"] == "login.failed" for e in log) == 5
    # the 995 refusals are counted, logged at the 1st, 10th and 100th
    assert [int(e["count"]) for e in log if e["event"] == "login.throttled"] == [100, 10, 1]
    assert elapsed < 60
    # the real person, from their own address, gets in at once; so do others
    alice = app.test_client()
    assert login(alice, "alice", ip="10.0.0.7").status_code == 302
    assert page(alice, "/t/acme/numbers").status_code == 200
    assert login(app.test_client(), "prov", ip="10.0.0.8").status_code == 302
    # a sprayer trying many names from one address is cut off after 50
    sprayer = app.test_client()
    codes = [login(sprayer, f"user{i}", "guess-guess-1", ip="198.51.100.4").status_code for i in range(200)]
    assert codes.count(401) == 50 and codes.count(429) == 150
    # the failures are in the tenant's access log, with the address (not in its audit)
    assert any(e["event"] == "login.failed" and e.get("ip") == "203.0.113.9"
               for e in store.accounts.read_log(100, tenant="acme"))


def test_a_one_time_login_link_works_once(web):
    app, store = web
    link = store.accounts.once_link("alice", actor="test")
    c = app.test_client()
    html = page(c, f"/login/once/{link}").data
    r = post(c, f"/login/once/{link}", {"csrf_token": csrf_of(html)})
    assert r.status_code == 302 and page(c, "/t/acme/numbers").status_code == 200
    again = app.test_client()
    html = page(again, f"/login/once/{link}").data
    assert post(again, f"/login/once/{link}", {"csrf_token": csrf_of(html)}).status_code == 400
    assert re.search(r"login\.once", str(store.accounts.read_log(10)))
