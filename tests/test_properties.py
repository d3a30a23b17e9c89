"""Property tests: no input crashes normalization; emergency is never stopped."""

from hypothesis import given, settings, strategies as st

from policies.classes import CallClass
from policies.decide import decide
from policies.model import Extension, Rule, Snapshot, TenantSettings, Verdict
from policies.numbers import classify, normalize_phone

COUNTRIES = st.sampled_from(["FR", "DE", "CH", "GB", "US", "BE", "IT"])
DIALLISH = st.text(alphabet="0123456789+*# -()./", max_size=30)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), DIALLISH), COUNTRIES, st.sampled_from(["", "0", "9"]))
def test_classify_never_crashes(text, country, prefix):
    got = classify(text, country, outside_line_prefix=prefix)
    assert isinstance(got.call_class, CallClass)
    assert got.e164 is None or got.e164.startswith("+")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), DIALLISH), COUNTRIES)
def test_normalize_phone_raises_only_valueerror(text, country):
    try:
        out = normalize_phone(text, country)
    except ValueError:
        return
    assert out.startswith("+") or out.isdigit()


EMERGENCY = {"FR": ["112", "15", "17", "18"], "DE": ["110", "112"], "CH": ["112", "117", "118", "144"]}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([(c, n) for c, ns in EMERGENCY.items() for n in ns]),
    st.booleans(), st.booleans(), st.integers(0, 10_000), st.sampled_from(["allow", "deny"]),
    st.lists(st.builds(Rule, name=st.just("r"), action=st.sampled_from(["allow", "deny"]),
                       classes=st.lists(st.sampled_from(list(CallClass)), max_size=3).map(tuple),
                       pin=st.booleans()), max_size=4),
    st.sampled_from(["", "0", "9"]), st.booleans(),
)
def test_emergency_is_never_challenged_or_denied(cn, pin_feature, pin_enabled, locked, default, rules,
                                                 prefix, tenant_exists):
    country, number = cn
    snap = Snapshot(
        tenant="t", settings=TenantSettings(country=country, pin_feature=pin_feature,
                                            default_action=default, outside_line_prefix=prefix),
        extension=Extension("1001", pin_enabled=pin_enabled, pins={"a": "x"}),
        dialed=prefix + number, rules=tuple(rules), locked_seconds=locked,
        class_overrides={"+": CallClass.PREMIUM}, tenant_exists=tenant_exists,
    )
    d = decide(snap)
    assert d.verdict is Verdict.ALLOW and d.call_class is CallClass.EMERGENCY
