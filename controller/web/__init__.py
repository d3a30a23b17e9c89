"""The web administration and the HTTP API (`tollgate web`): Flask on gevent's
WSGI server, Jinja2 pages, over the same store the CLI uses.

Why Flask: a WSGI app runs unchanged under gevent.pywsgi (no asyncio loop
beside gevent's), its well-kept extensions do the security work (Flask-Login
for sessions, Flask-WTF for CSRF), and its templates (Jinja2) escape by
default. The web layer only translates HTTP to the store's calls.
"""

from __future__ import annotations

import secrets

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect

from controller.web import auth, i18n

MAX_UPLOAD = 8 * 1024 * 1024  # a CSV of 50,000 entries fits


def create_app(store, pepper: bytes, *, secret_key: bytes | None = None, secure_cookies: bool = True,
               trust_proxy: bool = False) -> Flask:
    from controller.web import api, api_entries, api_reports, api_tenants, openapi, pages  # noqa: F401 (routes)
    from controller.web import pages_ext, pages_numbers  # noqa: F401 (routes)

    app = Flask(__name__)
    app.config.update(
        STORE=store, PEPPER=pepper,
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_NAME="tg_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SECURE=secure_cookies,
        MAX_CONTENT_LENGTH=MAX_UPLOAD, WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=secure_cookies,
        JSON_SORT_KEYS=False,
    )
    if trust_proxy:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # bearer tokens only there: no cookie is honoured, nothing to forge
    auth.init(app, store)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)

    @app.context_processor
    def _words():
        lang = language()
        return {"_": lambda text: i18n.translate(text, lang), "lang": lang, "languages": i18n.LANGUAGES}

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy",
                                "default-src 'self'; style-src 'self'; script-src 'self'; "
                                "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    return app


language = i18n.language  # the request's language (kept here for its callers)
