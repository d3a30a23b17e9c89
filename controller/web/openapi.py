"""The OpenAPI 3.1 document of /api/v1, built from the endpoints as registered
(controller.web.api.ENDPOINTS), so it lists exactly what the server serves."""

from __future__ import annotations

import re

from flask import jsonify

from controller.web.api import ENDPOINTS, NAME, PREFIX, bp

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


# What each path parameter is (anything else is refused with 400 or 404).
PATH_PARAMS = {"tenant": NAME, "name": NAME, "number": {"type": "string", "pattern": "^[0-9]{2,8}$"},
               "prefix": PREFIX, "phone": {"type": "string", "description": "as people type it, or E.164"},
               "holder": {"type": "string", "maxLength": 64}, "token_id": {"type": "string", "pattern": "^[0-9a-f]{8}$"}}


def _path(flask_path: str) -> tuple[str, list[str]]:
    names = re.findall(r"<(?:\w+:)?(\w+)>", flask_path)
    return "/api/v1" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", flask_path), names


def document() -> dict:
    paths: dict = {}
    for e in ENDPOINTS:
        path, names = _path(e["path"])
        params = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS[n]} for n in names]
        params += [{"name": k, "in": "query", "required": False, "schema": v} for k, v in (e["query"] or {}).items()]
        op = {
            "summary": e["summary"] + (" (provider staff only)" if e["provider"] else ""),
            "operationId": f"{e['method'].lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
            "tags": [e["tag"]] if e["tag"] else [],
            "parameters": params,
            "responses": {
                "201" if e["created"] else "200": {
                    "description": "Created" if e["created"] else "OK",
                    "content": {e["returns"]: {"schema": {} if e["returns"] != "text/csv" else {"type": "string"}}}},
                **{code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
                   for code, text in (("400", "bad input; nothing changed"), ("401", "no valid token"),
                                      ("403", "not allowed"), ("404", "no such object"),
                                      ("409", "already exists"), ("503", "store unavailable"))},
            },
        }
        if e["body"]:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": e["body"], **({"required": e["required"]} if e["required"] else {})}}}}
        elif e["raw_body"]:
            op["requestBody"] = {"required": True, "content": {e["raw_body"]: {"schema": {"type": "string"}}}}
        paths.setdefault(path, {})[e["method"].lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tollgate API", "version": "1",
                 "description": "Outbound-call authorization: tenants, extensions and PINs, authorized lists, "
                                "rules, the dry run, the audit. Authenticate with `Authorization: Bearer <token>` "
                                "(`tollgate users token create`)."},
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": paths,
    }


@bp.route("/openapi.json")
def openapi():
    return jsonify(document())
