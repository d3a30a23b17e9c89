"""Only what FreeSWITCH authenticated identifies a caller (issue 14, part 1).

A caller-ID number is what the phone writes in its SIP From header. These tests
present the numbers a fraudster would try (listed numbers in every form, another
user's extension, another tenant's listed number) from a registered phone and
from a channel nobody authenticated, in the policy, in the store's load and in
`check`, and search with hypothesis for any presented caller ID that turns a
refusal into a call.
"""

from __future__ import annotations

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.store.accounts import Accounts
from controller.store import Store
from controller.store.admin import Admin
from controller.store.audit import Audit
from controller.store.calls import CallStore
from controller.store.alerts import Alerts
from controller.store.limits import Limits
from policies.classes import CallClass as C
from policies.decide import decide
from policies.identity import UNKNOWN_CALLER, Identity, IdentityKind, resolve
from policies.model import CallerAuth, Extension, Rule, Snapshot, TenantSettings, Verdict

LISTED_MOBILE = "+33612345678"
# Every way a person (or a phone) writes the listed mobile number.
LISTED_FORMS = ["+33612345678", "0612345678", "06 12 34 56 78", "0033612345678", "+33 6 12 34 56 78",
                "33612345678", "+33(0)612345678"]
GLOBEX_LISTED = "+33698765432"
PREMIUM = ["0899123456", "08 99 12 34 56", "+33899123456", "3949"]
INTERNATIONAL = ["+447911123456", "0044207946000", "+12125550123"]


def fresh_store() -> Store:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    audit = Audit(r)
    admin = Admin(r, audit, "test")
    return Store(r=r, audit=audit, admin=admin, calls=CallStore(r, audit), limits=Limits(admin),
                 alerts=Alerts(admin), accounts=Accounts(r, audit))


@pytest.fixture(scope="module")
def store() -> Store:
    s = fresh_store()
    a = s.admin
    a.create_tenant("acme", {"country": "FR", "pin_feature": "on"})
    a.create_tenant("globex", {"country": "FR"})
    for n in ("1001", "1003", "1005"):
        a.put_extension("acme", n, create=True)
    a.create_list("acme", "direction")
    a.add_entry("acme", "direction", "Élise", "Dupont", "1001")
    a.add_entry("acme", "direction", "Jean", "Martin", LISTED_MOBILE)
    a.add_rule("acme", "premium-intl", "allow", classes=["premium", "international"], lists=["direction"])
    a.create_list("globex", "board")
    a.add_entry("globex", "board", "Hans", "Roth", GLOBEX_LISTED)
    return s


def verdict(store: Store, extension: str, caller_id: str, dialed: str, source: str = "", tenant: str = "acme"):
    snap = store.calls.load(tenant, extension, caller_id, dialed, source=source, country_hint="FR").snapshot
    return decide(snap)


# -- the pure identity rule -----------------------------------------------------------
def test_resolve_prefers_the_authenticated_extension_and_trusts_nothing_else_by_default():
    trusted = frozenset({"mobile-gw"})
    assert resolve("1005", LISTED_MOBILE, "", frozenset()) == Identity(IdentityKind.EXTENSION, "1005")
    assert resolve("1005", LISTED_MOBILE, "mobile-gw", trusted).kind is IdentityKind.EXTENSION
    assert resolve("", LISTED_MOBILE, "", trusted) is UNKNOWN_CALLER
    assert resolve("", LISTED_MOBILE, "other-gw", trusted) is UNKNOWN_CALLER
    assert resolve("", LISTED_MOBILE, "mobile-gw", frozenset()) is UNKNOWN_CALLER
    assert resolve("", None, "mobile-gw", trusted) is UNKNOWN_CALLER
    assert resolve("", LISTED_MOBILE, "mobile-gw", trusted) == \
        Identity(IdentityKind.TRUSTED_CALLER_ID, LISTED_MOBILE, "mobile-gw")
    for not_an_extension in ("sipp", "1001@acme", "+33612345678", "1" * 17, "10 01"):
        assert resolve(not_an_extension, None, "", frozenset()) is UNKNOWN_CALLER


def _snap(dialed: str, identity: Identity, rules=(), auth=None, pin=False) -> Snapshot:
    return Snapshot(tenant="acme", settings=TenantSettings(country="FR", pin_feature=True),
                    extension=Extension("1003", pin_enabled=pin, pins={"anna": "h"})
                    if identity.kind is IdentityKind.EXTENSION else None,
                    dialed=dialed, rules=tuple(rules), caller_auth=CallerAuth(auth or {}), identity=identity)


@pytest.mark.parametrize("dialed,cls", [("0140000000", C.NATIONAL), ("0612345678", C.MOBILE),
                                        ("0899123456", C.PREMIUM), ("+4930123456", C.INTERNATIONAL),
                                        ("0810123456", C.SHARED_COST), ("0999999999999", C.UNKNOWN)])
def test_an_unknown_caller_is_refused_every_chargeable_class(dialed, cls):
    d = decide(_snap(dialed, UNKNOWN_CALLER))
    assert (d.verdict, d.call_class, d.reason, d.identity) == (Verdict.DENY, cls, "unknown_caller", "none")
    # a rule offering a PIN cannot help: no PIN belongs to an unknown caller
    with_pin = decide(_snap(dialed, UNKNOWN_CALLER, rules=[Rule("pin-all", "allow", pin=True)]))
    assert (with_pin.verdict, with_pin.reason) == (Verdict.DENY, "unknown_caller")


@pytest.mark.parametrize("dialed,reason", [("112", "emergency"), ("15", "emergency"), ("0800123456", "allowed"),
                                           ("*97", "service")])
def test_an_unknown_caller_still_reaches_emergency_tollfree_and_services(dialed, reason):
    d = decide(_snap(dialed, UNKNOWN_CALLER))
    assert (d.verdict, d.reason) == (Verdict.ALLOW, reason)


def test_a_rule_that_denies_says_so_before_the_unknown_caller():
    d = decide(_snap("+4930123456", UNKNOWN_CALLER, rules=[Rule("no-intl", "deny", classes=(C.INTERNATIONAL,))]))
    assert (d.verdict, d.reason) == (Verdict.DENY, "rule_deny")


# -- spoofed caller IDs against the store's load and the policy --------------------------
@pytest.mark.parametrize("presented", LISTED_FORMS + ["1001", GLOBEX_LISTED, "+33698765432"])
@pytest.mark.parametrize("extension", ["1005", "1003", "", "4242"], ids=["registered", "registered-pin", "unauthenticated", "unknown-ext"])
@pytest.mark.parametrize("source", ["", "carrier-in"], ids=["phone", "untrusted-trunk"])
def test_a_spoofed_caller_id_never_reaches_premium_or_international(store, presented, extension, source):
    for dialed in PREMIUM + INTERNATIONAL:
        d = verdict(store, extension, presented, dialed, source)
        assert d.verdict is not Verdict.ALLOW, (presented, extension, source, dialed, d.reason)
        assert d.identity == ("extension" if extension else "none")
        assert d.reason in ("not_authorized", "unknown_caller", "pin_required"), d.reason


def test_the_listed_people_still_pass_by_what_the_switch_vouches_for(store):
    # 1001 is listed by its extension number.
    assert verdict(store, "1001", "", "0899123456").verdict is Verdict.ALLOW
    # 1003 presenting someone's listed mobile is refused ...
    assert verdict(store, "1003", LISTED_MOBILE, "0899123456").reason == "not_authorized"
    # ... and passes once the operator says that mobile is 1003's own number.
    store.admin.put_extension("acme", "1003", caller_ids=["06 12 34 56 78"])
    try:
        d = verdict(store, "1003", "", "0899123456")
        assert (d.verdict, d.authorized_list, d.identity) == (Verdict.ALLOW,
                                                               "direction", "extension")
    finally:
        store.admin.put_extension("acme", "1003", caller_ids=[])


def test_a_trusted_source_makes_the_caller_id_count_and_only_there(store):
    store.admin.update_tenant("acme", {"trusted_sources": "mobile-gw, pbx-fmc"})
    try:
        for form in LISTED_FORMS:
            d = verdict(store, "", form, "0899123456", source="mobile-gw")
            assert (d.verdict, d.identity, d.authorized_list) == (Verdict.ALLOW, "trusted_caller_id", "direction")
        assert verdict(store, "", LISTED_MOBILE, "0899123456", source="carrier-in").reason == "unknown_caller"
        # another tenant's listed number is nobody here, trusted source or not
        assert verdict(store, "", GLOBEX_LISTED, "0899123456", source="mobile-gw").reason == "not_authorized"
        # an authenticated extension is still judged as itself
        assert verdict(store, "1005", LISTED_MOBILE, "0899123456", source="mobile-gw").reason == "not_authorized"
    finally:
        store.admin.update_tenant("acme", {"trusted_sources": ""})


def test_trusted_sources_are_validated():
    with pytest.raises(ValueError, match="trusted_sources"):
        TenantSettings().with_changes({"trusted_sources": "gw one"})
    assert TenantSettings().with_changes({"trusted_sources": "b, a,a"}).trusted_sources == "a,b"


# -- the property: a presented caller ID alone never turns DENY into ALLOW ------------------
caller_ids = st.one_of(
    st.sampled_from(LISTED_FORMS + ["1001", "1003", "1005", GLOBEX_LISTED, "", "anonymous", "+", "0"]),
    st.text(alphabet="0123456789+ ()-.", max_size=20),
)
dialed_numbers = st.sampled_from(PREMIUM + INTERNATIONAL + ["0140000000", "0612345678", "112", "0800123456"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(caller_ids, st.sampled_from(["1001", "1003", "1005", "", "9999"]), st.sampled_from(["", "carrier-in", "x"]),
       dialed_numbers)
def test_no_presented_caller_id_alone_turns_a_deny_into_an_allow(store, presented, extension, source, dialed):
    without = verdict(store, extension, "", dialed, source)
    with_it = verdict(store, extension, presented, dialed, source)
    if without.verdict is Verdict.DENY:
        assert with_it.verdict is Verdict.DENY, (presented, extension, source, dialed)
    assert with_it.verdict == without.verdict and with_it.reason == without.reason
