"""Helpers for the web tests: an app on a real redis-server, accounts, clients."""

from __future__ import annotations

import re

from controller.store import Store
from controller.web import create_app

PEPPER = b"web-test-pepper-0123456789abcdef"
PASSWORDS = {"prov": "provider-pass-1", "alice": "alice-pass-123", "gina": "gina-pass-1234"}


def make_app(redis_url: str, csrf: bool = True, timeout: float = 0.5):
    store = Store.open(redis_url, actor="test", warn=False, timeout=timeout)
    a = store.admin
    a.create_tenant("acme", {"country": "FR", "language": "fr"})
    a.create_tenant("globex", {"country": "DE", "pin_feature": "on"})
    for t in ("acme", "globex"):
        a.put_extension(t, "1001", create=True, display_name="Élise")
        a.create_list(t, "direction")
        a.add_entry(t, "direction", "Élise", "Dupont", "1001")
        a.add_rule(t, "premium", "allow", classes=["premium", "international"], lists=["direction"])
    acc = store.accounts
    acc.add("prov", "provider", "", PASSWORDS["prov"], actor="test")
    acc.add("alice", "admin", "acme", PASSWORDS["alice"], actor="test")
    acc.add("gina", "admin", "globex", PASSWORDS["gina"], actor="test")
    app = create_app(store, PEPPER, secret_key=b"k" * 32)
    app.config["WTF_CSRF_ENABLED"] = csrf
    return app, store


def token(store, user: str) -> str:
    return store.accounts.create_token(user, "test", actor="test")[1]


def api(app, tok: str):
    """A test client whose requests carry the token."""
    client = app.test_client()
    hdr = {"Authorization": f"Bearer {tok}"}

    class C:
        def __getattr__(self, method):
            def call(path, **kw):
                kw.setdefault("headers", {}).update(hdr)
                return getattr(client, method)("/api/v1" + path, base_url="https://localhost", **kw)

            return call

    return C()


def browser(app):
    return app.test_client()


def csrf_of(html: bytes) -> str:
    m = re.search(rb'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1).decode()


def login(client, user: str, password: str | None = None, ip: str = "10.0.0.7"):
    page = client.get("/login", base_url="https://localhost", environ_base={"REMOTE_ADDR": ip})
    return client.post("/login", base_url="https://localhost", environ_base={"REMOTE_ADDR": ip},
                       headers={"Referer": "https://localhost/login"},
                       data={"username": user, "password": password or PASSWORDS.get(user, ""),
                             "csrf_token": csrf_of(page.data)})
