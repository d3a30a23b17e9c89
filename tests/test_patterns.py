"""A tenant's service and internal patterns run in linear time (RE2), or are refused when set."""

from __future__ import annotations

import time

import pytest

from controller.errors import CorruptValue, InvalidInput
from controller.store import Store
from policies.classes import CallClass
from policies.model import TenantSettings
from policies.numbers import classify
from policies.patterns import MAX_PATTERN_LENGTH, check_pattern

CATASTROPHIC = r"(\d+)+#"  # backtracking engines take 2^n steps on n digits without a '#'


def test_a_catastrophic_pattern_classifies_forty_digits_at_once():
    started = time.monotonic()
    for pattern in ({"service_pattern": CATASTROPHIC}, {"internal_pattern": CATASTROPHIC}):
        c = classify("1" * 40, "FR", **pattern)
        assert c.call_class == CallClass.UNKNOWN
    # Python's re took 9.9 s for 27 digits, and doubles with each one more.
    assert time.monotonic() - started < 2.0
    # the pattern still means what it says
    assert classify("123#", "FR", service_pattern=CATASTROPHIC).call_class == CallClass.SERVICE
    assert classify("4711", "FR", internal_pattern=r"4\d{3}").call_class == CallClass.INTERNAL


@pytest.mark.parametrize("pattern, why", [
    (r"(\d)\1", "invalid escape sequence"),  # a backreference
    (r"(?=1)\d+", "invalid perl operator"),  # lookahead
    (r"(?<!9)\d+", "invalid perl operator"),  # lookbehind
    (r"\d{2000}", "invalid repetition size"),
    ("(", "missing \\)"),
    ("1" * (MAX_PATTERN_LENGTH + 1), "at most"),
])
def test_patterns_re2_cannot_run_are_refused_when_set(pattern, why, redis_url):
    with pytest.raises(ValueError, match=why):
        check_pattern(pattern)
    store = Store.open(redis_url, actor="test", warn=False)
    store.admin.create_tenant("acme", {})
    for name in ("service_pattern", "internal_pattern"):
        with pytest.raises(InvalidInput, match=name):
            store.admin.update_tenant("acme", {name: pattern})
    assert store.admin.get_tenant("acme").service_pattern == TenantSettings().service_pattern


def test_a_stored_pattern_re2_refuses_fails_closed_and_can_be_set_again(redis_url):
    """Written before RE2 (or by hand): the settings read as a corrupt value (the
    call flow refuses chargeable calls), and setting the pattern again fixes it."""
    store = Store.open(redis_url, actor="test", warn=False)
    store.admin.create_tenant("acme", {})
    store.r.hset("tg:{acme}:tenant", "service_pattern", r"(?=\*)\*\d+")
    with pytest.raises(CorruptValue, match="service_pattern"):
        store.admin.get_tenant("acme")
    store.admin.update_tenant("acme", {"service_pattern": r"\*\d+"})
    assert store.admin.get_tenant("acme").service_pattern == r"\*\d+"
