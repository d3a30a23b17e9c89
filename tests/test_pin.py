"""PIN hashing: salted, peppered, tagged, constant-time, never echoing digits."""

import pytest

from policies.pin import (PinFormatError, StoredHashError, hash_pin, match_holder, pepper_id,
                          validate_pin, verify_pin)

PEPPER = b"p" * 32


def test_hash_is_salted_peppered_and_tagged():
    a, b = hash_pin("2468", PEPPER), hash_pin("2468", PEPPER)
    assert a != b  # per-PIN salt
    assert a.startswith("pbkdf2_sha256$") and f"${pepper_id(PEPPER)}$" in a
    assert "2468" not in a
    assert verify_pin("2468", a, PEPPER) and not verify_pin("2469", a, PEPPER)


def test_other_pepper_is_reported_not_accepted():
    h = hash_pin("2468", PEPPER)
    with pytest.raises(StoredHashError) as exc:
        verify_pin("2468", h, b"q" * 32)
    assert "2468" not in str(exc.value)


@pytest.mark.parametrize("bad", ["123", "1234567890123", "12a4", "", "１２３４", " 1234"])
def test_format_errors_never_contain_the_pin(bad):
    with pytest.raises(PinFormatError) as exc:
        validate_pin(bad)
    if bad.strip():
        assert bad.strip() not in str(exc.value)


def test_several_holders_on_one_phone():
    pins = {"alice": hash_pin("1111", PEPPER), "bob": hash_pin("2222", PEPPER), "broken": "md5$x"}
    assert match_holder("2222", pins, PEPPER)[0] == "bob"
    holder, problems = match_holder("3333", pins, PEPPER)
    assert holder is None and len(problems) == 1 and "broken" in problems[0]


@pytest.mark.parametrize("corrupt", ["", "pbkdf2_sha256$x$y$z$w", "pbkdf2_sha256$60000$id$!!$??", None, "a$b"])
def test_corrupt_hashes_raise_a_clear_error(corrupt):
    with pytest.raises(StoredHashError):
        verify_pin("1234", corrupt, PEPPER)
