"""Property-based testing of the API from its own OpenAPI document
(schemathesis): every operation, as a tenant's administrator, with requests
generated from the document, valid ones and invalid ones (wrong types,
missing fields, values outside the schema). No answer may be a server error,
and every answer must be one the document describes (status, content type,
schema: an error is the one-line JSON error).

Reproducible and bounded: a fixed seed (derandomize), a fixed number of
examples per operation, the WSGI app called in-process."""

from __future__ import annotations

import collections
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.webkit import make_app, token

pytestmark = pytest.mark.redis
EXAMPLES = 30  # per operation, valid and invalid requests: 42 operations, a few ms each
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


EXISTING = {"tenant": "acme", "name": "premium", "number": "1001", "phone": "1001", "holder": "Anna",
            "prefix": "+881"}


def restore(store) -> None:
    """What the operations before may have removed or changed (webkit's objects)."""
    a = store.admin
    a.update_tenant("acme", {"country": "FR", "pin_feature": "on", "service_pattern": r"^\*\d+$",
                             "internal_pattern": ""})
    if "1001" not in a.extensions("acme"):
        a.put_extension("acme", "1001", create=True)
    if "direction" not in a.lists("acme"):
        a.create_list("acme", "direction")
    if not a.entries("acme", "direction"):
        a.add_entry("acme", "direction", "Élise", "Dupont", "1001")
    if "premium" not in [r.name for r in a.rules("acme")]:
        a.add_rule("acme", "premium", "allow", classes=["premium", "international"], lists=["direction"])
    a.set_override("acme", "+881", "premium")


def test_no_generated_request_gets_a_server_error_or_an_answer_outside_the_document(redis_url):
    app, store = make_app(redis_url)
    auth = {"Authorization": f"Bearer {token(store, 'alice')}"}  # acme's administrator
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    statuses: collections.Counter = collections.Counter()
    examples = 0
    started = time.monotonic()
    for op in operations:
        restore(store)
        # The administrator's own tenant (another one answers 404 before anything
        # is checked); half the time its objects that exist, else generated names.
        fixed = {"tenant": "acme"} if "tenant" in op.path else {}
        existing = {k: v for k, v in EXISTING.items() if "{%s}" % k in op.path}
        if "/lists/" in op.path or "/entries/" in op.path:
            existing["name"] = "direction"

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(st.one_of([op.as_strategy(mode, path_parameters=params) for mode in GenerationMode
                          for params in (fixed, {**fixed, **existing})]))
        def run(case):
            nonlocal examples
            examples += 1
            response = case.call(headers=auth)
            statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=auth)
            except FailureGroup as group:  # collected, to report every operation's at once
                for exc in group.exceptions:
                    failures.append(f"{op.method.upper()} {op.path}: {type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0]} [{response.status_code}]\n"
                                    f"    {case.as_curl_command(headers={})}")

        run()
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {len(operations)} operations, {examples} examples, {len(failures)} failures "
          f"in {elapsed:.1f} s; answers {dict(sorted(statuses.items()))}")
    kinds = collections.Counter(f.split(": ", 2)[0] + ": " + f.split(": ", 2)[1] for f in failures)
    assert not failures, "\n".join([f"{n} x {k}" for k, n in kinds.most_common()] + sorted(set(failures))[:10])
    assert len(operations) >= 40
