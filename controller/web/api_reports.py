"""API: the dry run, the audit (paged, CSV), restricted-feature use per person,
calls in progress, the login log, and the caller's own account and tokens."""

from __future__ import annotations

import time

from flask import Response, current_app, jsonify, request

from controller.errors import InvalidInput
from controller.store import queries
from controller.web.api import TEXT, body, endpoint, field
from controller.web.auth import actor, me, store_as_me, tenant_or_404

T = "/tenants/<tenant>"
AUDIT_QUERY = {"extension": {"type": "string"}, "verdict": {"type": "string"}, "kind": {"type": "string"},
               "actor": {"type": "string"}, "since": {"type": "string", "example": "24h"},
               "limit": {"type": "integer"}, "cursor": {"type": "string"}}


@endpoint("POST", T + "/check", "Dry run: what happens if this extension dials this number, and why "
          "(the JSON of `tollgate check --json`)", tag="check",
          body={"extension": {"type": "string"}, "to": {"type": "string", "maxLength": 80},
                "caller_id": {"type": "string", "maxLength": 80}, "source": {"type": "string"},
                "unattended": {"type": "string", "enum": ["", "forward", "transfer", "originated"]}},
          required=("to",))
def check(tenant):
    d = body()
    return jsonify(queries.check(store_as_me(), tenant_or_404(tenant), field(d, "extension", default=""),
                                 field(d, "to", required=True), field(d, "caller_id", default=""),
                                 field(d, "source", default=""), field(d, "unattended", default="")))


def audit_filter() -> queries.AuditFilter:
    a = request.args
    return queries.AuditFilter(extension=a.get("extension", ""), verdict=a.get("verdict", ""),
                               kind=a.get("kind", ""), actor=a.get("actor", ""),
                               since=queries.since_window(a.get("since", "")))


def _limit(default: int, top: int) -> int:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise InvalidInput(f"limit {raw!r}: use 1 to {top}")
    return int(raw)


@endpoint("GET", T + "/audit", "Audit entries, newest first, paged with `cursor`", tag="audit",
          query=AUDIT_QUERY)
def audit(tenant):
    page, cursor = queries.audit_page(store_as_me(), tenant_or_404(tenant), audit_filter(), _limit(50, 1000),
                                      request.args.get("cursor", ""))
    return jsonify({"entries": [{"id": i, **f} for i, f in page], "next_cursor": cursor or None})


@endpoint("GET", T + "/audit/export", "Audit entries as CSV (same filters)", tag="audit", returns="text/csv",
          query=AUDIT_QUERY)
def audit_export(tenant):
    page, _ = queries.audit_page(store_as_me(), tenant_or_404(tenant), audit_filter(), _limit(10_000, 100_000),
                                 request.args.get("cursor", ""))
    return Response(queries.audit_csv(page), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{tenant}-audit.csv"'})


@endpoint("GET", T + "/usage", "Use of restricted features per person (seed 000, practice 4)", tag="audit",
          query={"since": {"type": "string"}})
def usage(tenant):
    return jsonify(queries.restricted_use(store_as_me(), tenant_or_404(tenant),
                                          queries.since_window(request.args.get("since", ""))))


@endpoint("GET", "/calls", "Calls in progress (of the tenants this account may see)", tag="calls")
def calls():
    now = time.time()
    rows = [r for r in store_as_me().calls.calls() if me().may_see(r.get("tenant", ""))]
    for r in rows:
        r["seconds"] = round(max(now - float(r.get("started", now) or now), 0), 1)
    return jsonify(rows)


@endpoint("GET", "/access-log", "Logins, sessions and token changes (provider: all; admin: the tenant's)",
          tag="account", query={"limit": {"type": "integer"}})
def access_log():
    u = me()
    return jsonify(current_app.config["STORE"].accounts.read_log(_limit(200, 5000),
                                                                None if u.provider else u.tenant))


@endpoint("GET", "/me", "The account behind this token", tag="account")
def whoami():
    return jsonify(me().to_json())


@endpoint("GET", "/tokens", "This account's API tokens (never the tokens themselves)", tag="account")
def tokens():
    return jsonify(current_app.config["STORE"].accounts.tokens(me().name))


@endpoint("POST", "/tokens", "Create a token: the answer is the only time it is shown", tag="account",
          body={"label": TEXT}, created=True)
def create_token():
    token_id, value = current_app.config["STORE"].accounts.create_token(
        me().name, field(body(), "label", default=""), actor=actor())
    return jsonify({"id": token_id, "token": value}), 201


@endpoint("DELETE", "/tokens/<token_id>", "Revoke a token (refused from the next request on)", tag="account")
def revoke_token(token_id):
    current_app.config["STORE"].accounts.revoke_token(me().name, token_id, actor=actor())
    return jsonify({"revoked": token_id})
