"""Classification on real numbering plans (libphonenumber data)."""

import phonenumbers
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


# -- calling codes shared by several regions (issue 14, part 2) ------------------------
@pytest.mark.parametrize("tenant,dialed,region", [
    ("US", "+1 416 555 0123", "CA"), ("US", "1 876 555 0123", "JM"), ("US", "1 268 464 1234", "AG"),
    ("CA", "+1 212 555 0123", "US"), ("US", "+1 809 555 1234", "DO"),
    ("GB", "07797 712345", "JE"), ("GB", "+44 1481 256789", "GG"), ("GB", "+44 7624 123456", "IM"),
    ("JE", "+44 20 7946 0000", "GB"), ("IT", "06 698 12345", "VA"), ("RU", "8 701 234 5678", "KZ"),
    ("KZ", "+7 912 345 6789", "RU"), ("NO", "+47 79 02 12 34", "SJ"), ("AU", "+61 8 9162 1234", "CC"),
    ("MF", "+590 590 20 12 34", "GP"),
])
def test_a_number_of_another_region_of_the_same_calling_code_is_international(tenant, dialed, region):
    c = classify(dialed, tenant)
    assert (c.call_class, c.region) == (C.INTERNATIONAL, region), c
    assert f"{region} (+" in c.note


@pytest.mark.parametrize("tenant,dialed,cls", [
    ("US", "+1 212 555 0123", C.NATIONAL), ("CA", "1 800 555 0123", C.TOLLFREE), ("US", "1 800 555 0123", C.TOLLFREE),
    ("GB", "020 7946 0000", C.NATIONAL), ("JE", "01534 123456", C.NATIONAL), ("IT", "06 4567 8901", C.NATIONAL),
    ("MF", "0590 27 12 34", C.NATIONAL),  # a range Saint-Martin shares with Saint-Barthélemy
])
def test_the_tenants_own_region_stays_domestic(tenant, dialed, cls):
    c = classify(dialed, tenant)
    assert (c.call_class, c.region) == (cls, tenant), c


def _shared_code_examples():
    """Every pair of regions sharing a calling code, with libphonenumber's own
    example numbers: the search for more of this class of defect."""
    for code, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        regions = [r for r in regions if r != "001"]
        if len(regions) < 2:
            continue
        for home in regions:
            for other in regions:
                if other == home:
                    continue
                for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                             phonenumbers.PhoneNumberType.PREMIUM_RATE):
                    example = phonenumbers.example_number_for_type(other, kind)
                    if example is not None:
                        yield home, other, phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def test_no_number_of_another_region_sharing_the_calling_code_is_domestic():
    checked = 0
    for home, other, e164 in _shared_code_examples():
        parsed = phonenumbers.parse(e164)
        c = classify(e164, home)
        if phonenumbers.is_valid_number_for_region(parsed, home):
            continue  # a range both regions share (NANP toll-free, GP/BL/MF): domestic on purpose
        checked += 1
        assert c.call_class is _foreign_class(parsed), (home, other, e164, c)
        assert c.region == phonenumbers.region_code_for_number(parsed)
    assert checked > 500  # NANP alone gives hundreds of pairs


# -- a foreign number keeps its type (issue 26, part 1) --------------------------------
T = phonenumbers.PhoneNumberType
KEPT = {T.PREMIUM_RATE: C.PREMIUM, T.SHARED_COST: C.SHARED_COST}


def _foreign_class(parsed) -> C:
    return KEPT.get(phonenumbers.number_type(parsed), C.INTERNATIONAL)


@pytest.mark.parametrize("tenant,dialed,cls,region,note", [
    ("FR", "+979 1234 56789", C.PREMIUM, "001", "premium number of +979"),
    ("FR", "0044 909 879 0000", C.PREMIUM, "GB", "premium number of GB (+44)"),
    ("FR", "00371 90 123456", C.PREMIUM, "LV", "premium number of LV (+371)"),
    ("DE", "0041 900 123 456", C.PREMIUM, "CH", "premium number of CH (+41)"),
    ("US", "011 39 899 123456", C.PREMIUM, "IT", "premium number of IT (+39)"),
    ("FR", "0032 78 79 12 34", C.SHARED_COST, "BE", "shared_cost number of BE (+32)"),
    ("FR", "0044 20 7946 0000", C.INTERNATIONAL, "GB", "international number of GB (+44)"),
    ("FR", "0044 800 123 4567", C.INTERNATIONAL, "GB", "international number of GB (+44)"),  # toll-free abroad
    ("DE", "0033 612345678", C.INTERNATIONAL, "FR", "international number of FR (+33)"),
])
def test_the_issues_numbers_keep_their_type_abroad(tenant, dialed, cls, region, note):
    c = classify(dialed, tenant)
    assert (c.call_class, c.region, c.note) == (cls, region, note), c


def _foreign_examples():
    """libphonenumber's own premium-rate and shared-cost example numbers, of
    every region that has such ranges and of every non-geographic code."""
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in KEPT:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                yield region, example
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        meta = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code)
        for kind, desc in ((T.PREMIUM_RATE, meta.premium_rate), (T.SHARED_COST, meta.shared_cost)):
            if desc is not None and desc.example_number:
                yield "001", phonenumbers.parse(f"+{code}{desc.example_number}")


# A tenant for each international prefix: 00 (most of the world), 011 (NANP), and +.
PREFIXES = [("FR", "00"), ("DE", "00"), ("US", "011"), ("CH", "+")]


@pytest.mark.parametrize("tenant,prefix", PREFIXES)
def test_every_foreign_premium_and_shared_cost_example_keeps_its_type(tenant, prefix):
    home = phonenumbers.country_code_for_region(tenant)
    checked = set()
    for region, example in _foreign_examples():
        if example.country_code == home:
            continue  # the tenant's own calling code: test_numbering_plans, and the shared-code walk above
        digits = f"{example.country_code}{example.national_number}"
        if example.italian_leading_zero:
            digits = f"{example.country_code}{'0' * (example.number_of_leading_zeros or 1)}{example.national_number}"
        c = classify(prefix + digits, tenant)
        parsed = phonenumbers.parse("+" + digits)
        assert (c.call_class, c.e164) == (_foreign_class(parsed), "+" + digits), (tenant, region, digits, c)
        assert c.call_class in (C.PREMIUM, C.SHARED_COST), (tenant, region, digits, c)
        assert c.region == phonenumbers.region_code_for_number(parsed), (region, c)
        assert c.note.startswith(f"{c.call_class.value} number of "), c.note
        checked.add(region)
    assert len(checked) > 120 and "001" in checked  # premium ranges in most of the world, +979 among the codes


def test_every_other_foreign_example_stays_international():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS - {"FR"}):
        if phonenumbers.country_code_for_region(region) == 33:
            continue
        for kind in (T.FIXED_LINE, T.MOBILE, T.TOLL_FREE, T.VOIP, T.UAN):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None or phonenumbers.number_type(example) in KEPT:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            c = classify(e164, "FR")
            assert c.call_class is C.INTERNATIONAL, (region, kind, e164, c)
