"""The `tollgate` command: the seed documents' scenarios, CSV, errors."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from controller.cli import main
from controller.store.connection import connect

pytestmark = pytest.mark.redis

PEPPER = "test-pepper-0123456789abcdef"


@pytest.fixture
def tg(redis_url, capsys, monkeypatch):
    monkeypatch.setenv("TOLLGATE_REDIS_URL", redis_url)
    monkeypatch.setenv("TOLLGATE_PEPPER", PEPPER)

    def run(*args, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    return run


def ok(tg, *args, **kw):
    rc, out, err = tg(*args, **kw)
    assert rc == 0, err
    return out


def check(tg, *args):
    return json.loads(ok(tg, "check", "acme", *args, "--json"))


@pytest.fixture
def acme(tg):
    """The sample tenant of the seed documents."""
    ok(tg, "tenant", "create", "acme", "country=FR")
    for n in ("1001", "1002", "1003"):
        ok(tg, "ext", "add", "acme", n)
    ok(tg, "lists", "create", "acme", "direction")
    ok(tg, "lists", "create", "acme", "sales")
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Élise", "--last", "Dupont", "--phone", "1001")
    ok(tg, "numbers", "add", "acme", "sales", "--first", "Karl", "--last", "Weber", "--phone", "1002")
    ok(tg, "rules", "add", "acme", "premium-intl", "--action", "allow", "--class", "premium",
       "--class", "international", "--list", "direction")
    return tg


def test_french_seed_authorized_numbers(acme):
    tg = acme
    # An authorized person on an enabled entry reaches a premium number.
    got = check(tg, "--from", "1001", "--to", "08 99 12 34 56")
    assert got["verdict"] == "ALLOW" and got["class"] == "premium" and got["e164"] == "+33899123456"
    assert got["rule"] == "premium-intl" and got["reason"] == "allowed"
    # The same entry disabled is refused.
    ok(tg, "numbers", "disable", "acme", "direction", "1001")
    got = check(tg, "--from", "1001", "--to", "0899123456")
    assert (got["verdict"], got["reason"]) == ("DENY", "not_authorized")
    # ... and enabled again passes on the next call.
    ok(tg, "numbers", "enable", "acme", "direction", "1001")
    assert check(tg, "--from", "1001", "--to", "0044207946000")["verdict"] == "ALLOW"
    # A person on another list is refused.
    got = check(tg, "--from", "1002", "--to", "0899123456")
    assert (got["verdict"], got["reason"]) == ("DENY", "not_authorized")
    # A listed mobile number identifies its owner only where the switch vouches
    # for it: as one of the caller's own extension numbers, or as the caller ID
    # of a call from a trunk the tenant trusts. Presented by 1003, it is a lie.
    ok(tg, "numbers", "add", "acme", "direction", "--first", "Jean", "--phone", "+33 6 12 34 56 78")
    spoofed = check(tg, "--from", "1003", "--caller-id", "0612345678", "--to", "0899123456")
    assert (spoofed["verdict"], spoofed["reason"], spoofed["identity"]) == ("DENY", "not_authorized", "extension")
    untrusted = check(tg, "--caller-id", "0612345678", "--source", "mobile-trunk", "--to", "0899123456")
    assert (untrusted["verdict"], untrusted["reason"], untrusted["identity"]) == ("DENY", "unknown_caller", "none")
    ok(tg, "tenant", "set", "acme", "trusted_sources=mobile-trunk")
    trusted = check(tg, "--caller-id", "0612345678", "--source", "mobile-trunk", "--to", "0899123456")
    assert (trusted["verdict"], trusted["identity"], trusted["identity_number"]) == \
        ("ALLOW", "trusted_caller_id", "+33612345678")
    ok(tg, "ext", "set", "acme", "1003", "--caller-id", "06 12 34 56 78")
    assert check(tg, "--from", "1003", "--to", "0899123456")["verdict"] == "ALLOW"


def test_german_seed_pin_protection(acme):
    tg = acme
    ok(tg, "tenant", "set", "acme", "pin_feature=on")
    ok(tg, "ext", "enable", "acme", "1003")
    ok(tg, "ext", "pin", "set", "acme", "1003", "--holder", "empfang", stdin="4711\n")
    national = check(tg, "--from", "1003", "--to", "0140000000")
    assert (national["verdict"], national["reason"]) == ("CHALLENGE", "pin_required")
    assert check(tg, "--from", "1003", "--to", "1001")["class"] == "internal"
    assert check(tg, "--from", "1003", "--to", "1001")["verdict"] == "ALLOW"
    assert check(tg, "--from", "1003", "--to", "*97")["verdict"] == "ALLOW"
    assert check(tg, "--from", "1003", "--to", "112")["verdict"] == "ALLOW"
    # Without the provider's PIN feature nobody is challenged.
    ok(tg, "tenant", "set", "acme", "pin_feature=off")
    assert check(tg, "--from", "1003", "--to", "0140000000")["verdict"] == "ALLOW"


def test_pin_is_read_from_stdin_and_never_stored_or_echoed(acme, redis_url):

    tg = acme
    ok(tg, "tenant", "set", "acme", "pin_feature=on")
    rc, out, err = tg("ext", "pin", "set", "acme", "1001", "--holder", "alice", stdin="97531\n")
    assert rc == 0 and "97531" not in out + err
    r = connect(redis_url, timeout=2)
    dump = [str(r.dump(k)) + k for k in r.keys("*")] + [str(v) for k in r.keys("*:audit") for v in r.xrange(k)]
    assert not any("97531" in x for x in dump)
    rc, _, err = tg("ext", "pin", "set", "acme", "1001", stdin="12ab\n")
    assert rc == 2 and "12ab" not in err and err.count("\n") == 1


def test_csv_round_trip_with_accents_and_commas(acme, tmp_path):
    tg = acme
    src = tmp_path / "in.csv"
    with open(src, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["list", "first_name", "last_name", "phone", "state"])
        w.writerow(["compta", "Zoë", "Müller, née Lefèvre", "01 40 00 00 01", "enabled"])
        w.writerow(["compta", "François", "O'Brien \"Jr\"", "+41 44 123 45 67", "disabled"])
    rc, _, err = tg("numbers", "import", "acme", str(src))
    assert rc == 2 and "no list 'compta'" in err
    out = ok(tg, "numbers", "import", "acme", str(src), "--create-lists")
    assert "imported 2 new" in out
    exported = ok(tg, "numbers", "export", "acme", "--list", "compta")
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [(r["first_name"], r["last_name"], r["phone"], r["state"]) for r in rows] == [
        ("Zoë", "Müller, née Lefèvre", "+33140000001", "enabled"),
        ("François", "O'Brien \"Jr\"", "+41441234567", "disabled"),
    ]
    again = tmp_path / "again.csv"
    again.write_text(exported, encoding="utf-8")
    rc, _, err = tg("numbers", "import", "acme", str(again))
    assert rc == 2 and "already on list" in err
    assert "2 updated" in ok(tg, "numbers", "import", "acme", str(again), "--replace")


def test_bad_csv_row_imports_nothing(acme, tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("list,first_name,last_name,phone,state\nsales,A,B,0612345670,enabled\nsales,C,D,xyz,enabled\n")
    rc, _, err = acme("numbers", "import", "acme", str(src))
    assert rc == 2 and "line 3" in err
    assert "0612345670" not in ok(acme, "numbers", "list", "acme")


@pytest.mark.parametrize("args,fragment", [
    (["tenant", "set", "acme", "colour=red"], "unknown tenant setting 'colour'"),
    (["tenant", "set", "acme", "pin_tries=0"], "pin_tries"),
    (["rules", "add", "acme", "x", "--action", "maybe"], "'maybe' is not one of"),
    (["rules", "add", "acme", "x", "--action", "allow", "--prefix", "44"], "E.164"),
    (["rules", "add", "acme", "x", "--action", "allow", "--list", "ghost"], "no list 'ghost'"),
    (["rules", "move", "acme", "premium-intl", "9"], "outside 1..1"),
    (["ext", "add", "acme", "12a"], "invalid extension"),
    (["check", "nope", "--from", "1001", "--to", "112"], "no tenant 'nope'"),
    (["numbers", "add", "acme", "sales", "--first", "A", "--phone", "sip:x@y"], "not a phone number"),
    (["tenatn", "list"], "No such command"),
])
def test_bad_input_exits_2_with_one_line(acme, args, fragment):
    rc, out, err = acme(*args)
    assert rc == 2
    assert fragment in err and err.strip().count("\n") == 0


def test_rules_order_and_audit_listing(acme):
    tg = acme
    ok(tg, "rules", "add", "acme", "no-intl", "--action", "deny", "--class", "international", "--position", "1")
    assert check(tg, "--from", "1001", "--to", "+442079460000")["rule"] == "no-intl"
    ok(tg, "rules", "move", "acme", "no-intl", "2")
    assert check(tg, "--from", "1001", "--to", "+442079460000")["rule"] == "premium-intl"
    names = [r["name"] for r in json.loads(ok(tg, "rules", "list", "acme", "--json"))]
    assert names == ["premium-intl", "no-intl"]
    lines = ok(tg, "audit", "acme", "--json", "--count", "3").strip().splitlines()
    assert [json.loads(x)["action"] for x in lines] == ["rule.add", "rule.add", "rule.move"]


def test_console_script_runs_in_a_fresh_process(redis_url):
    env = {**os.environ, "TOLLGATE_REDIS_URL": redis_url}
    proc = subprocess.run([sys.executable, "-m", "controller", "tenant", "create", "x1", "country=CH"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "controller", "check", "x1", "--from", "10", "--to", "144",
                           "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(proc.stdout)["class"] == "emergency"


def test_audit_follow_prints_new_entries_as_they_come(acme, redis_url):
    from controller.store import Store

    env = {**os.environ, "TOLLGATE_REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", "controller", "audit", "acme", "--follow", "--json",
                             "--count", "1"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        first = json.loads(proc.stdout.readline())  # the newest existing entry
        assert first["action"] == "rule.add"
        Store.open(redis_url, actor="follow-test").admin.create_list("acme", "late")
        later = json.loads(proc.stdout.readline())
        assert (later["action"], later["object"], later["actor"]) == ("list.create", "late", "follow-test")
    finally:
        proc.terminate()
        proc.wait(10)


def test_check_names_the_identity_and_the_region_of_a_shared_calling_code(tg):
    ok(tg, "tenant", "create", "usco", "country=US")
    ok(tg, "ext", "add", "usco", "2001")
    got = json.loads(ok(tg, "check", "usco", "--from", "2001", "--to", "1 876 555 0123", "--json"))
    assert (got["class"], got["region"], got["identity"]) == ("international", "JM", "extension")
    assert "JM (+1)" in got["detail"]
    home = json.loads(ok(tg, "check", "usco", "--from", "2001", "--to", "(212) 555-0123", "--json"))
    assert (home["class"], home["region"]) == ("national", "US")
    nobody = json.loads(ok(tg, "check", "usco", "--caller-id", "2001", "--to", "(212) 555-0123", "--json"))
    assert (nobody["verdict"], nobody["reason"], nobody["identity"]) == ("DENY", "unknown_caller", "none")
    human = ok(tg, "check", "usco", "--from", "2001", "--to", "+1 876 555 0123")
    assert "JM" in human and "extension 2001" in human


def test_fraud_control_verbs_and_their_errors(acme, tg):
    ok(tg, "limits", "add", "acme", "intl-hourly", "--class", "international", "--max", "1", "--window", "1h")
    ok(tg, "limits", "add", "acme", "abroad-10m", "--kind", "duration", "--class", "international",
       "--duration", "10m")
    listed = json.loads(ok(tg, "limits", "list", "acme", "--json"))
    assert [x["name"] for x in listed] == ["intl-hourly", "abroad-10m"] and listed[1]["seconds"] == 600
    got = check(tg, "--from", "1001", "--to", "+44 20 7946 0000")
    assert (got["verdict"], got["max_seconds"]) == ("ALLOW", 600)
    for bad in (["limits", "add", "acme", "x", "--max", "1", "--window", "1x"],
                ["limits", "add", "acme", "x", "--kind", "duration"],
                ["limits", "add", "acme", "x", "--max", "0"],
                ["limits", "add", "acme", "intl-hourly", "--max", "3"],
                ["limits", "remove", "acme", "nope"],
                ["rules", "add", "acme", "r", "--action", "allow", "--days", "monday"],
                ["rules", "add", "acme", "r", "--action", "allow", "--hours", "8-18"],
                ["tenant", "set", "acme", "timezone=Mars/Base"],
                ["alerts", "acme", "--lift"]):
        rc, _, err = tg(*bad)
        assert rc == 2 and err.count("\n") == 1 and err.startswith("tollgate: error:"), (bad, err)
    ok(tg, "rules", "add", "acme", "night-pin", "--action", "deny", "--class", "premium", "--days", "sat-sun",
       "--position", "1")
    table_out = ok(tg, "rules", "list", "acme")
    assert "sat,sun 00:00-24:00" in table_out
    fwd = check(tg, "--from", "1001", "--to", "0899123456", "--unattended", "forward")
    assert fwd["unattended"] == "forward"
    alerts_out = json.loads(ok(tg, "alerts", "acme", "--json"))
    assert alerts_out == {"alerts": [], "suspended": {}}
    ok(tg, "limits", "remove", "acme", "intl-hourly")
