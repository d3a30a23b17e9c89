"""Classification on real numbering plans (libphonenumber data)."""

import pytest

from policies.classes import CallClass as C
from policies.numbers import classify, normalize_phone

FR = [
    ("0140000000", C.NATIONAL, "+33140000000"),
    ("01 40 00 00 00", C.NATIONAL, "+33140000000"),
    ("0612345678", C.MOBILE, "+33612345678"),
    ("0756781234", C.MOBILE, "+33756781234"),
    ("0800123456", C.TOLLFREE, "+33800123456"),
    ("0811123456", C.SHARED_COST, "+33811123456"),
    ("0899123456", C.PREMIUM, "+33899123456"),
    ("3949", C.PREMIUM, None),
    ("3654", C.PREMIUM, None),
    ("112", C.EMERGENCY, None),
    ("15", C.EMERGENCY, None),
    ("17", C.EMERGENCY, None),
    ("18", C.EMERGENCY, None),
    ("0044207946000", C.INTERNATIONAL, "+44207946000"),
    ("+442079460000", C.INTERNATIONAL, "+442079460000"),
    ("0049301234567", C.INTERNATIONAL, "+49301234567"),
    ("+33140000000", C.NATIONAL, "+33140000000"),
    ("*97", C.SERVICE, None),
    ("0123", C.UNKNOWN, None),
]

DE = [
    ("0301234567", C.NATIONAL, "+49301234567"),
    ("015112345678", C.MOBILE, "+4915112345678"),
    ("09001234567", C.PREMIUM, "+499001234567"),
    ("08001234567", C.TOLLFREE, "+498001234567"),
    ("110", C.EMERGENCY, None),
    ("112", C.EMERGENCY, None),
    ("0033140000000", C.INTERNATIONAL, "+33140000000"),
]

CH = [
    ("0441234567", C.NATIONAL, "+41441234567"),
    ("0791234567", C.MOBILE, "+41791234567"),
    ("0900123456", C.PREMIUM, "+41900123456"),
    ("0800123456", C.TOLLFREE, "+41800123456"),
    ("117", C.EMERGENCY, None),
    ("144", C.EMERGENCY, None),
    ("112", C.EMERGENCY, None),
    ("0033140000000", C.INTERNATIONAL, "+33140000000"),
]


@pytest.mark.parametrize("country,dialed,cls,e164",
                         [("FR", *row) for row in FR] + [("DE", *row) for row in DE] + [("CH", *row) for row in CH])
def test_numbering_plans(country, dialed, cls, e164):
    got = classify(dialed, country)
    assert (got.call_class, got.e164) == (cls, e164), got.note


def test_outside_line_prefix_is_stripped_first():
    got = classify("00140000000", "FR", outside_line_prefix="0")
    assert (got.call_class, got.e164) == (C.NATIONAL, "+33140000000")
    assert classify("0112", "FR", outside_line_prefix="0").call_class is C.EMERGENCY
    assert classify("9112", "FR", outside_line_prefix="9").call_class is C.EMERGENCY
    assert classify("90899123456", "FR", outside_line_prefix="9").call_class is C.PREMIUM


def test_precedence_known_extension_then_plan_then_internal_pattern():
    # A known extension is internal even if the plan has a short code of that shape.
    assert classify("1001", "FR", is_known_extension=True).call_class is C.INTERNAL
    # 3949 is a premium short code even where extensions have four digits.
    assert classify("3949", "FR", internal_pattern=r"^\d{4}$").call_class is C.PREMIUM
    # The internal pattern only for what the plan does not recognize.
    assert classify("4711", "FR", internal_pattern=r"^\d{4}$").call_class is C.INTERNAL
    assert classify("4711", "FR").call_class is C.UNKNOWN
    # Emergency wins over everything, even a service pattern that would match it.
    assert classify("112", "FR", service_pattern=r"^\d+$").call_class is C.EMERGENCY


def test_overrides_win_over_the_library_longest_prefix_first():
    over = {"+881": C.PREMIUM, "+44": C.NATIONAL, "+4420": C.PREMIUM}
    assert classify("+881612345678", "FR", overrides=over).call_class is C.PREMIUM
    assert classify("+442079460000", "FR", overrides=over).call_class is C.PREMIUM
    assert classify("+441614960000", "FR", overrides=over).call_class is C.NATIONAL
    assert classify("112", "FR", overrides={"+": C.PREMIUM}).call_class is C.EMERGENCY


@pytest.mark.parametrize("junk", ["", "abc", "sip:1001@example.com", "0899\x00123", "😀", "9" * 500,
                                  "++33140000000", "#", "0800-ABC"])
def test_strange_input_is_unknown_not_a_crash(junk):
    got = classify(junk, "FR")
    assert got.call_class is C.UNKNOWN


def test_normalize_phone():
    assert normalize_phone("06 12 34 56 78", "FR") == "+33612345678"
    assert normalize_phone("+49 30 1234567", "FR") == "+49301234567"
    assert normalize_phone("1001", "FR") == "1001"
    for bad in ("abc", "", "*97", "+1"):
        with pytest.raises(ValueError):
            normalize_phone(bad, "FR")
