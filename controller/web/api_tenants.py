"""API: tenants and their settings, class overrides, extensions and their PINs."""

from __future__ import annotations

from flask import current_app, jsonify

from controller.errors import InvalidInput
from controller.store import queries
from controller.store.accounts import check_settings_allowed
from controller.web.api import NAME, TEXT, body, endpoint, field
from controller.web.auth import me, store_as_me, tenant_or_404
from policies.model import LANGUAGES, TENANT_PARSERS

T = "/tenants/<tenant>"
SETTINGS_BODY = {"settings": {"type": "object", "additionalProperties": False,
                              "properties": {name: {"type": ["string", "boolean", "integer"]} for name in TENANT_PARSERS},
                              "description": "SPEC §9 settings as strings, e.g. {\"country\": \"DE\"}; "
                                             "high_risk: E.164 prefixes and regions whose calls need a PIN "
                                             "or are refused (high_risk_action: pin | deny), default "
                                             "\"+870,+881,+882,+883\""}}


def _settings(data: dict, key: str = "settings") -> dict[str, str]:
    raw = field(data, key, dict, default={})
    if not isinstance(raw, dict) or not all(isinstance(v, (str, bool, int)) for v in raw.values()):
        raise InvalidInput(f"{key!r} must be an object of setting -> string")
    return {str(k): ("on" if v is True else "off" if v is False else str(v)) for k, v in raw.items()}


@endpoint("GET", "/tenants", "Tenants this account may see", tag="tenants")
def tenants():
    names = current_app.config["STORE"].admin.tenants()
    return jsonify([n for n in names if me().may_see(n)])


@endpoint("POST", "/tenants", "Create a tenant", tag="tenants", provider=True,
          body={"name": NAME, **SETTINGS_BODY}, required=("name",), created=True)
def create_tenant():
    data = body()
    s = store_as_me().admin.create_tenant(field(data, "name", required=True), _settings(data))
    return jsonify(s.to_mapping()), 201


@endpoint("GET", T, "A tenant's settings", tag="tenants")
def get_tenant(tenant):
    return jsonify(store_as_me().admin.get_tenant(tenant_or_404(tenant)).to_mapping())


@endpoint("PATCH", T, "Change settings (pin_feature, route, gateway, trusted_sources: provider only)",
          tag="tenants", body=SETTINGS_BODY)
def update_tenant(tenant):
    tenant_or_404(tenant)
    changes = _settings(body())
    check_settings_allowed(me(), changes)
    return jsonify(store_as_me().admin.update_tenant(tenant, changes).to_mapping())


@endpoint("DELETE", T, "Delete a tenant and its data (its audit stays)", tag="tenants", provider=True)
def delete_tenant(tenant):
    return jsonify({"deleted_keys": store_as_me().admin.delete_tenant(tenant_or_404(tenant))})


@endpoint("GET", T + "/overrides", "Class overrides (E.164 prefix -> class)", tag="tenants")
def overrides(tenant):
    found = store_as_me().admin.overrides(tenant_or_404(tenant))
    return jsonify({p: c.value for p, c in sorted(found.items())})


@endpoint("PUT", T + "/overrides/<prefix>", "Force a prefix into a class", tag="tenants",
          body={"class": {"type": "string"}}, required=("class",))
def set_override(tenant, prefix):
    tenant_or_404(tenant)
    cls = field(body(), "class", required=True)
    store_as_me().admin.set_override(tenant, prefix, cls)
    return jsonify({"prefix": prefix, "class": cls})


@endpoint("DELETE", T + "/overrides/<prefix>", "Remove an override", tag="tenants")
def remove_override(tenant, prefix):
    store_as_me().admin.remove_override(tenant_or_404(tenant), prefix)
    return jsonify({"removed": prefix})


# -- extensions ---------------------------------------------------------------
EXT_BODY = {"number": {"type": "string", "pattern": "^[0-9]{2,8}$"}, "name": TEXT,
            "language": {"type": "string", "enum": ["", *LANGUAGES]},
            "caller_ids": {"type": "array", "items": {"type": "string"}}, "pin_enabled": {"type": "boolean"}}
E = T + "/extensions/<number>"


def _view(tenant, ext):
    return queries.extension_view(store_as_me(), tenant, ext)


@endpoint("GET", T + "/extensions", "Extensions", tag="extensions")
def extensions(tenant):
    a = store_as_me().admin
    return jsonify([_view(tenant, a.get_extension(tenant, n)) for n in a.extensions(tenant_or_404(tenant))])


def _put_ext(tenant, number, data, create):
    ext = store_as_me().admin.put_extension(
        tenant, number, create=create, pin_enabled=field(data, "pin_enabled", bool),
        language=field(data, "language"), caller_ids=field(data, "caller_ids", list),
        display_name=field(data, "name"))
    return _view(tenant, ext)


@endpoint("POST", T + "/extensions", "Add an extension", tag="extensions", body=EXT_BODY, required=("number",),
          created=True)
def add_extension(tenant):
    data = body()
    return jsonify(_put_ext(tenant_or_404(tenant), field(data, "number", required=True), data, True)), 201


@endpoint("GET", E, "An extension (PIN holders by name; PINs never)", tag="extensions")
def get_extension(tenant, number):
    return jsonify(_view(tenant, store_as_me().admin.get_extension(tenant_or_404(tenant), number)))


@endpoint("PATCH", E, "Change an extension (pin_enabled is the IVR authentication switch)",
          tag="extensions", body=EXT_BODY)
def update_extension(tenant, number):
    return jsonify(_put_ext(tenant_or_404(tenant), number, body(), False))


@endpoint("DELETE", E, "Remove an extension and its PINs", tag="extensions")
def remove_extension(tenant, number):
    store_as_me().admin.delete_extension(tenant_or_404(tenant), number)
    return jsonify({"removed": number})


@endpoint("PUT", E + "/pins/<holder>", "Set a holder's PIN (write-only: never returned)", tag="extensions",
          body={"pin": {"type": "string", "format": "password", "writeOnly": True}}, required=("pin",))
def set_pin(tenant, number, holder):
    tenant_or_404(tenant)
    pin = field(body(), "pin", required=True)
    store_as_me().admin.set_pin_value(tenant, number, holder, pin, current_app.config["PEPPER"])
    return jsonify({"extension": number, "holder": holder, "pin": "set"})


@endpoint("DELETE", E + "/pins/<holder>", "Remove a holder's PIN", tag="extensions")
def remove_pin(tenant, number, holder):
    store_as_me().admin.remove_pin(tenant_or_404(tenant), number, holder)
    return jsonify({"extension": number, "holder": holder, "pin": "removed"})


@endpoint("POST", E + "/unlock", "Lift a PIN lockout", tag="extensions")
def unlock(tenant, number):
    return jsonify({"extension": number, "was_locked": store_as_me().admin.unlock(tenant_or_404(tenant), number)})
