"""`tollgate users ...`: accounts and tokens from the command line, on a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controller.store import Store

pytestmark = pytest.mark.redis


def tg(redis_url, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "controller", "--redis-url", redis_url, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_users_and_tokens_from_the_command_line(redis_url):
    store = Store.open(redis_url, warn=False)
    store.admin.create_tenant("acme", {})
    assert tg(redis_url, "users", "add", "ops", "--role", "provider", stdin="correct-horse-1\n").returncode == 0
    short = tg(redis_url, "users", "add", "bob", "--role", "admin", "--tenant", "acme", stdin="short\n")
    assert short.returncode == 2 and "10 to 256" in short.stderr and "short" not in short.stderr.split(":")[-1]
    nowhere = tg(redis_url, "users", "add", "bob", "--role", "admin", "--tenant", "globex", stdin="long-enough-1\n")
    assert nowhere.returncode == 2 and "existing tenant" in nowhere.stderr
    assert tg(redis_url, "users", "add", "bob", "--role", "admin", "--tenant", "acme",
              stdin="long-enough-1\n").returncode == 0
    assert tg(redis_url, "users", "add", "bob", "--role", "admin", "--tenant", "acme",
              stdin="long-enough-1\n").returncode == 2
    listed = json.loads(tg(redis_url, "users", "list", "--json").stdout)
    assert listed == [{"name": "bob", "role": "admin", "tenant": "acme"},
                      {"name": "ops", "role": "provider", "tenant": None}]
    made = tg(redis_url, "users", "token", "create", "bob", "--label", "sync")
    value = made.stdout.split()[-1]
    assert made.returncode == 0 and value.startswith("tg_")
    assert store.accounts.token_user(value)[0].name == "bob"
    tokens = json.loads(tg(redis_url, "users", "token", "list", "bob", "--json").stdout)
    assert [t["label"] for t in tokens] == ["sync"] and value not in json.dumps(tokens)
    assert value not in str([store.r.hgetall(k) for k in store.r.scan_iter("tg:web:*") if store.r.type(k) == "hash"])
    assert tg(redis_url, "users", "token", "revoke", "bob", tokens[0]["id"]).returncode == 0
    assert store.accounts.token_user(value) is None
    link = tg(redis_url, "users", "login-link", "bob", "--base-url", "https://pbx.example")
    assert link.stdout.startswith("https://pbx.example/login/once/")
    sid = store.accounts.open_session(store.accounts.get("bob"))
    assert tg(redis_url, "users", "passwd", "bob", stdin="another-pass-2\n").returncode == 0
    assert store.accounts.session_user(sid) is None  # a new password ends the sessions
    assert store.accounts.authenticate("bob", "another-pass-2", "127.0.0.1").name == "bob"
    # a new password revokes the API tokens too, unless the operator keeps them
    kept, gone = store.accounts.create_token("bob", "sync", actor="t")[1], store.accounts.create_token(
        "bob", "old", actor="t")[1]
    changed = tg(redis_url, "users", "passwd", "bob", stdin="third-pass-33\n")
    assert changed.returncode == 0 and "2 API tokens revoked" in changed.stdout
    assert store.accounts.token_user(kept) is None and store.accounts.token_user(gone) is None
    kept = store.accounts.create_token("bob", "sync", actor="t")[1]
    changed = tg(redis_url, "users", "passwd", "bob", "--keep-tokens", stdin="fourth-pass-4\n")
    assert changed.returncode == 0 and "0 API tokens revoked, 1 kept" in changed.stdout
    assert store.accounts.token_user(kept)[0].name == "bob"
    assert tg(redis_url, "users", "remove", "bob").returncode == 0
    assert tg(redis_url, "users", "remove", "bob").returncode == 2
    events = [e["event"] for e in store.accounts.read_log(50)]
    assert {"user.add", "token.create", "token.revoke", "user.password", "user.remove", "login.ok"} <= set(events)
