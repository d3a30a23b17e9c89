"""The HTTP API, /api/v1: JSON over the store's calls, nothing more.

Every endpoint is declared with `endpoint(...)`, which registers it with Flask
and describes it for the OpenAPI document, so the two cannot drift apart.
Errors are JSON, `{"error": {"code": ..., "message": ...}}`, with a stable
code and one human line; bad input changes nothing (the store validates
before it writes). The API takes API tokens only (`Authorization: Bearer`):
no cookie is honoured here, so no other site can ride a browser session.
"""

from __future__ import annotations

from functools import wraps

import redis
from flask import Blueprint, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from controller.errors import AlreadyExists, InvalidInput, NotFound, TollgateError

bp = Blueprint("api", __name__, url_prefix="/api/v1")
ENDPOINTS: list[dict] = []  # what openapi.py describes
# The document's schemas of values the store checks (policies.model), for
# clients and for generated tests (schemathesis) to send what is meant.
NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}
TEXT = {"type": "string", "maxLength": 80, "description": "one line: no control or bidi characters"}
PREFIX = {"type": "string", "pattern": "^\\+[0-9]{1,15}$"}


def endpoint(method: str, path: str, summary: str, *, body: dict | None = None, query: dict | None = None,
             tag: str = "", provider: bool = False, returns: str = "application/json", raw_body: str = "",
             required: tuple[str, ...] = (), created: bool = False):
    """Register `path` (Flask syntax) for `method`; `body`/`query` are JSON-schema
    properties for the document, `required` the body's required ones;
    `provider`: the provider's staff only; `created`: answers 201."""

    def wrap(fn):
        @wraps(fn)
        def handler(**kw):
            if not current_user.is_authenticated:
                return error(401, "unauthorized", "an API token is required (Authorization: Bearer ...)")
            if provider and not current_user.user.provider:
                return error(403, "forbidden", "only the service provider's staff may do this")
            return fn(**kw)

        name = f"{fn.__name__}_{method.lower()}"
        bp.add_url_rule(path, endpoint=name, view_func=handler, methods=[method])
        ENDPOINTS.append({"method": method, "path": path, "summary": summary, "body": body, "query": query,
                          "tag": tag, "provider": provider, "returns": returns, "raw_body": raw_body,
                          "required": list(required), "created": created})
        return handler

    return wrap


def error(status: int, code: str, message: str):
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def body() -> dict:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nested deeper than the parser goes: not a request anyone means
        data = None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object (Content-Type: application/json)")
    return data


def field(data: dict, name: str, kind=str, default=None, required: bool = False):
    if name not in data or data[name] is None:
        if required:
            raise InvalidInput(f"{name!r} is required")
        return default
    value = data[name]
    if kind is bool and not isinstance(value, bool):
        raise InvalidInput(f"{name!r} must be true or false")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(f"{name!r} must be an integer")
    if kind is list and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
        raise InvalidInput(f"{name!r} must be a list of strings")
    if kind is str and not isinstance(value, str):
        raise InvalidInput(f"{name!r} must be a string")
    return value


def flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes", "on")


@bp.errorhandler(InvalidInput)
def _invalid(exc):
    return error(400, "invalid_input", str(exc))


@bp.errorhandler(NotFound)
def _not_found(exc):
    return error(404, "not_found", str(exc))


@bp.errorhandler(AlreadyExists)
def _exists(exc):
    return error(409, "already_exists", str(exc))


@bp.errorhandler(PermissionError)
def _forbidden(exc):
    return error(403, "forbidden", str(exc))


@bp.errorhandler(TollgateError)
def _tollgate(exc):
    return error(500, "tollgate_error", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


@bp.errorhandler(redis.RedisError)
def store_unavailable(exc):
    return error(503, "store_unavailable", "the store (Redis) is unavailable; nothing was changed")


@bp.errorhandler(HTTPException)
def http_error(exc):
    """Also answers, through the pages' app-wide handlers, what fails before a view
    of the API runs (no such route, a method it does not take)."""
    code = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 413: "too_large"}.get(exc.code, "http_error")
    message = {403: exc.description or "not allowed", 404: "no such object",
               405: "this method is not allowed here"}.get(exc.code, exc.name or "error")
    return error(exc.code or 500, code, message)
