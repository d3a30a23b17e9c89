"""API: authorized lists and entries (with CSV import and export, and the
review of stale entries), and the ordered rules."""

from __future__ import annotations

from flask import Response, jsonify, request

from controller.errors import InvalidInput
from controller.store import queries
from controller.store.rules import schedule_from
from controller.web.api import NAME, PREFIX, TEXT, body, endpoint, field, flag
from controller.web.auth import store_as_me, tenant_or_404
from policies.classes import RULE_CLASSES

T = "/tenants/<tenant>"
ENTRY_BODY = {"list": NAME, "first_name": TEXT, "last_name": TEXT,
              "phone": {"type": "string", "description": "as people type it; stored as E.164"},
              "state": {"type": "string", "enum": ["enabled", "disabled"]},
              "valid_from": {"type": "string", "example": "2026-06-01",
                             "description": "a time-limited authorization holds from then on: a date, a local "
                                            "date and time (the tenant's zone) or ISO 8601 with an offset; "
                                            "'' for no bound; kept as ISO 8601 with the offset"},
              "valid_until": {"type": "string", "example": "2026-06-30",
                              "description": "... and until then (a date: through that day)"}}
WINDOW = ("valid_from", "valid_until")
EDITABLE = ("first_name", "last_name", "state", *WINDOW)


@endpoint("GET", T + "/lists", "Authorized lists and their sizes", tag="lists")
def lists(tenant):
    return jsonify(store_as_me().admin.lists(tenant_or_404(tenant)))


@endpoint("POST", T + "/lists", "Create a list", tag="lists", body={"name": NAME}, required=("name",), created=True)
def create_list(tenant):
    name = field(body(), "name", required=True)
    store_as_me().admin.create_list(tenant_or_404(tenant), name)
    return jsonify({"list": name}), 201


@endpoint("DELETE", T + "/lists/<name>", "Delete a list (?force=true also removes its entries)", tag="lists",
          query={"force": {"type": "boolean"}})
def delete_list(tenant, name):
    store_as_me().admin.delete_list(tenant_or_404(tenant), name, force=flag("force"))
    return jsonify({"removed": name})


@endpoint("GET", T + "/entries", "Authorized numbers (filter by list, text, state)", tag="entries",
          query={"list": {"type": "string"}, "q": {"type": "string"}, "state": {"type": "string"}})
def entries(tenant):
    rows = store_as_me().admin.entries(tenant_or_404(tenant), request.args.get("list") or None)
    return jsonify(queries.search_entries(rows, request.args.get("q", ""), request.args.get("state", "")))


@endpoint("POST", T + "/entries", "Add an authorized number (seed 000's form)", tag="entries", body=ENTRY_BODY,
          required=("list", "phone"), created=True)
def add_entry(tenant):
    d = body()
    row = store_as_me().admin.add_entry(tenant_or_404(tenant), field(d, "list", required=True),
                                        field(d, "first_name", default=""), field(d, "last_name", default=""),
                                        field(d, "phone", required=True), field(d, "state", default="enabled"),
                                        valid_from=field(d, "valid_from", default=""),
                                        valid_until=field(d, "valid_until", default=""))
    return jsonify(row), 201


EN = T + "/entries/<name>/<phone>"


@endpoint("GET", EN, "One authorized number", tag="entries")
def get_entry(tenant, name, phone):
    return jsonify(store_as_me().admin.get_entry(tenant_or_404(tenant), name, phone))


@endpoint("PATCH", EN, "Edit, enable or disable an authorized number, or change its window", tag="entries",
          body={k: v for k, v in ENTRY_BODY.items() if k in EDITABLE})
def update_entry(tenant, name, phone):
    tenant_or_404(tenant)
    d = body()
    unknown = set(d) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"an entry's {sorted(unknown)[0]!r} cannot be changed (remove and add it instead)")
    return jsonify(store_as_me().admin.update_entry(tenant_or_404(tenant), name, phone,
                                                    **{k: field(d, k) for k in EDITABLE}))


@endpoint("DELETE", EN, "Remove an authorized number", tag="entries")
def remove_entry(tenant, name, phone):
    store_as_me().admin.remove_entry(tenant_or_404(tenant), name, phone)
    return jsonify({"removed": phone, "list": name})


@endpoint("POST", T + "/entries/import", "Import a CSV (list,first_name,last_name,phone,state; optional "
          "valid_from,valid_until); one bad row, "
          "nothing imported", tag="entries", raw_body="text/csv",
          query={"create_lists": {"type": "boolean"}, "replace": {"type": "boolean"}})
def import_entries(tenant):
    tenant_or_404(tenant)
    try:
        text = request.get_data(cache=False, as_text=False).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the CSV must be UTF-8") from None
    done = store_as_me().admin.import_entries(tenant, text, create_lists=flag("create_lists"),
                                              replace=flag("replace"))
    return jsonify(done)


@endpoint("GET", T + "/entries/export", "Export as CSV", tag="entries", returns="text/csv",
          query={"list": {"type": "string"}})
def export_entries(tenant):
    text = store_as_me().admin.export_entries(tenant_or_404(tenant), request.args.get("list") or None)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{tenant}-authorized-numbers.csv"'})


@endpoint("GET", T + "/entries/stale", "Entries nobody used for `days` days: candidates to disable",
          tag="entries", query={"days": {"type": "integer"}, "list": {"type": "string"}})
def stale(tenant):
    days = request.args.get("days", "90")
    if not days.isdigit():
        raise InvalidInput(f"days {days!r}: use 1 to 3650")
    return jsonify(store_as_me().admin.stale_entries(tenant_or_404(tenant), int(days),
                                                     request.args.get("list") or None))


@endpoint("GET", T + "/entries/expiring", "Entries whose window ends within `days` days (default 14) or has "
          "ended, soonest first", tag="entries", query={"days": {"type": "integer"}, "list": {"type": "string"}})
def expiring(tenant):
    return jsonify(store_as_me().admin.expiring_entries(tenant_or_404(tenant), request.args.get("days", "14"),
                                                        request.args.get("list") or None))


# -- rules ----------------------------------------------------------------------
RULE_BODY = {"name": NAME, "action": {"type": "string", "enum": ["allow", "deny"]},
             "classes": {"type": "array", "items": {"type": "string", "enum": [c.value for c in RULE_CLASSES]}},
             "prefixes": {"type": "array", "items": PREFIX},
             "lists": {"type": "array", "items": NAME}, "pin": {"type": "boolean"},
             "enabled": {"type": "boolean"}, "unattended": {"type": "boolean"},
             "position": {"type": "integer"}, "days": {"type": "string", "example": "mon-fri"},
             "hours": {"type": "string", "example": "08:00-18:00"},
             "holidays": {"type": "string", "example": "2026-12-25"},
             "regions": {"type": "array", "items": {"type": "string"}, "example": ["EU", "CH"],
                         "description": "only numbers of these destination regions: ISO 3166 codes, groups "
                                        "(EU, EEA), 001 for non-geographic codes"},
             "except_regions": {"type": "array", "items": {"type": "string"}, "example": ["CU"],
                                "description": "only numbers of other regions than these"}}


def rule_json(rule, position: int) -> dict:
    return {**rule.to_json(), "position": position}


@endpoint("GET", T + "/rules", "Rules in evaluation order", tag="rules")
def rules(tenant):
    return jsonify([rule_json(r, i) for i, r in enumerate(store_as_me().admin.rules(tenant_or_404(tenant)), 1)])


def _schedule(d: dict):
    return schedule_from(d.get("days", ""), d.get("hours", ""), d.get("holidays", ""))


# The body's values go to the store as they came: its typed reading of a rule
# (policies.model.Rule.from_json) is the one check, for POST and PATCH alike.
@endpoint("POST", T + "/rules", "Add a rule", tag="rules", body=RULE_BODY, required=("name", "action"),
          created=True)
def add_rule(tenant):
    d = body()
    rule = store_as_me().admin.add_rule(
        tenant_or_404(tenant), d.get("name"), d.get("action"), d.get("classes", []), d.get("prefixes", []), d.get("lists", []), d.get("pin", False), d.get("position"),
        d.get("enabled", True), unattended=d.get("unattended", False), schedule=_schedule(d),
        regions=d.get("regions", []), except_regions=d.get("except_regions", []))
    return jsonify(rule.to_json()), 201


@endpoint("PATCH", T + "/rules/<name>", "Edit a rule (its position stays)", tag="rules", body=RULE_BODY)
def update_rule(tenant, name):
    d = body()
    tenant_or_404(tenant)
    changes = {k: v for k, v in d.items() if k not in ("days", "hours", "holidays", "position")}
    if {"days", "hours", "holidays"} & set(d):
        changes["schedule"] = _schedule(d)
    return jsonify(store_as_me().admin.update_rule(tenant, name, changes).to_json())


@endpoint("POST", T + "/rules/<name>/move", "Move a rule to a position (1 = first)", tag="rules",
          body={"position": {"type": "integer", "minimum": 1}}, required=("position",))
def move_rule(tenant, name):
    tenant_or_404(tenant)
    position = field(body(), "position", int, required=True)
    store_as_me().admin.move_rule(tenant, name, position)
    return jsonify({"rule": name, "position": position})


@endpoint("DELETE", T + "/rules/<name>", "Remove a rule", tag="rules")
def remove_rule(tenant, name):
    store_as_me().admin.remove_rule(tenant_or_404(tenant), name)
    return jsonify({"removed": name})
