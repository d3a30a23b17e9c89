"""The portal in a real headless Chromium (Debian's package, driven by
Playwright), against `tollgate web` as its own process on a real redis-server:
a new administrator does what the two product documents describe, and after
each step the verdict is the one the documents promise.

TOLLGATE_SCREENSHOTS=<dir> keeps a screenshot of each main page there (the
ones in docs/operations.md come from docs/screenshots, made this way)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from controller.store import Store
from controller.testing import free_port

pytestmark = [pytest.mark.redis, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PEPPER = "browser-test-pepper-0123456789"
PASSWORD = "élise-admin-pass-1"


def _check(redis_url, extension, dialed):
    out = subprocess.run([sys.executable, "-m", "controller", "--redis-url", redis_url, "check", "acme",
                          "--from", extension, "--to", dialed, "--json"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "TOLLGATE_PEPPER": PEPPER})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def portal(redis_url, tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    store = Store.open(redis_url, warn=False)
    a = store.admin
    # What the provider set up: the tenant, its PIN feature (seed 001), a premium rule for the lists.
    a.create_tenant("acme", {"country": "FR", "pin_feature": "on", "language": "fr"})
    a.put_extension("acme", "1002", create=True, display_name="Élise Dupont", caller_ids=["06 12 34 56 78"])
    a.put_extension("acme", "1003", create=True, display_name="Accueil (partagé)")
    a.put_extension("acme", "1010", create=True, caller_ids=["06 00 00 01 50"])
    a.create_list("acme", "direction")
    a.add_rule("acme", "premium-international", "allow", classes=["premium", "international"], lists=["direction"])
    env = {**os.environ, "TOLLGATE_PEPPER": PEPPER}
    # The new administrator's account, made the way the README says.
    made = subprocess.run([sys.executable, "-m", "controller", "--redis-url", redis_url, "users", "add", "elise",
                           "--role", "admin", "--tenant", "acme"], input=PASSWORD + "\n", text=True,
                          capture_output=True, timeout=60, env=env)
    assert made.returncode == 0, made.stderr
    port = free_port()
    log = open(tmp_path / "web.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "controller", "--redis-url", redis_url, "web", "--listen",
                             f"127.0.0.1:{port}", "--insecure-cookies"], stdout=log, stderr=subprocess.STDOUT,
                            env={**env, "TOLLGATE_WEB_SECRET": "s" * 40})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/login", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError("tollgate web did not start: " + (tmp_path / "web.log").read_text())
            time.sleep(0.2)
    yield base, redis_url, store, tmp_path
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    access = (tmp_path / "web.log").read_text()
    assert "GET /t/acme/numbers" in access and "2468135" not in access  # the access log, and no PIN in it


def test_an_administrator_does_what_the_seeds_describe(portal):
    from playwright.sync_api import sync_playwright

    base, redis_url, store, tmp_path = portal
    shots = os.environ.get("TOLLGATE_SCREENSHOTS")
    csv_path = tmp_path / "entries.csv"
    with open(csv_path, "w", encoding="utf-8") as fh:
        fh.write("list,first_name,last_name,phone,state\n")
        for i in range(200):
            fh.write(f"direction,Prénom{i},Nom{i},06 00 00 {i // 100:02d} {i % 100:02d},enabled\n")
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1360, "height": 820}, locale="fr-FR",
                                extra_http_headers={"Accept-Language": "fr-FR,fr;q=0.9"})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: d.accept())

        def shot(name):
            if shots:
                os.makedirs(shots, exist_ok=True)
                page.screenshot(path=os.path.join(shots, f"{name}.png"))

        page.goto(base + "/")
        assert "/login" in page.url
        shot("login")
        page.fill("input[name=username]", "elise")
        page.fill("input[name=password]", PASSWORD)
        page.click("button.primary")
        page.wait_for_url("**/t/acme/numbers")
        assert page.inner_text("h1") == "Numéros autorisés"
        assert _check(redis_url, "1002", "0899 12 34 56")["verdict"] == "DENY"

        # Règles sortantes → Numéros autorisés → Ajouter un Numéro autorisé (seed 000)
        form = page.locator("#add-number")
        form.locator("input[name=first_name]").fill("Élise")
        form.locator("input[name=last_name]").fill("Dupont")
        form.locator("input[name=phone]").fill("06 12 34 56 78")
        form.locator("input[name=state][value=enabled]").check()
        form.locator("select[name=list]").select_option("direction")
        form.get_by_role("button", name="Valider").click()
        row = page.locator("#entries tr[data-phone='+33612345678']")
        assert "06 12 34 56 78" in row.inner_text() and "+33612345678" in row.inner_text()
        assert "Activé" in row.inner_text()
        shot("authorized-numbers")
        got = _check(redis_url, "1002", "0899 12 34 56")
        assert (got["verdict"], got["authorized_list"]) == ("ALLOW", "direction")

        row.get_by_role("button", name="Désactiver").click()
        row = page.locator("#entries tr[data-phone='+33612345678']")
        assert "Désactivé" in row.inner_text()
        got = _check(redis_url, "1002", "0899 12 34 56")
        assert (got["verdict"], got["reason"]) == ("DENY", "not_authorized")

        page.locator("#import input[type=file]").set_input_files(str(csv_path))
        page.locator("#import button").click()
        assert page.locator("#count").inner_text().startswith("201 entrées")
        assert page.locator("#entries tbody tr").count() == 100  # a page of the table
        page.locator("#count a").first.click()
        assert page.locator("#entries tbody tr").count() == 100 and "2 / 3" in page.inner_text("#count")
        assert len(store.admin.entries("acme", "direction")) == 201
        assert _check(redis_url, "1010", "+44 20 7946 0000")["verdict"] == "ALLOW"  # 06 00 00 01 50, imported

        # Durchwahlen → Anrufeinstellungen → IVR-Authentifizierung (seed 001), here in German
        page.goto(base + "/lang/de?next=/t/acme/extensions/1003")
        assert page.locator(".tabs a.on").inner_text() == "Anrufeinstellungen"
        assert _check(redis_url, "1003", "01 40 00 00 00")["verdict"] == "ALLOW"
        page.locator("#ivr button").click()
        assert "aktiv" in page.locator("#ivr").inner_text()
        pin_form = page.locator("#set-pin")
        pin_form.locator("input[name=holder]").fill("Anna")
        pin_form.locator("input[name=pin]").fill("2468135")
        pin_form.locator("input[name=pin2]").fill("2468135")
        pin_form.get_by_role("button").click()
        assert "Anna" in page.locator("#holders").inner_text()
        assert "2468135" not in page.content()
        shot("extension-call-settings")
        got = _check(redis_url, "1003", "01 40 00 00 00")
        assert (got["verdict"], got["pin_holders"]) == ("CHALLENGE", ["Anna"])

        page.goto(base + "/lang/en?next=/t/acme/check")
        page.fill("#check input[name=extension]", "1002")
        page.fill("#check input[name=to]", "0899 12 34 56")
        page.click("#check button")
        assert "DENY" in page.inner_text("#verdict")
        shot("check")
        page.goto(base + "/t/acme/audit")
        assert "web:elise" in page.inner_text("#audit")
        shot("audit")
        page.goto(base + "/t/acme/rules")
        shot("rules")
        page.goto(base + "/t/acme/settings")
        assert page.locator("input[name=set_pin_feature]").count() == 0  # the provider's switch, shown only
        shot("settings")
        browser.close()
    assert not problems, problems  # no script error, no refused resource (CSP)
