"""Web pages: signing in and out, language, tenants, settings, calls, account.
The other pages live in pages_numbers (outbound rules) and pages_ext
(extensions, check, audit). Each view turns a form into one store call."""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlsplit

import phonenumbers
import redis
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError

from controller.errors import AlreadyExists, InvalidInput, NotFound, TollgateError
from controller.store.accounts import PROVIDER_SETTINGS, LoginRefused, check_settings_allowed
from controller.store.entries_io import local_time
from controller.web import api, auth, i18n
from controller.web.auth import me, store_as_me, tenant_or_404
from policies.classes import RULE_CLASSES
from policies.validity import epoch

bp = Blueprint("pages", __name__)


def store():
    return current_app.config["STORE"]


def words(text: str) -> str:
    return i18n.translate(text, i18n.language())


def attempt(fn, ok: str = "Saved.") -> bool:
    """Run one store call for a form: a one-line error flashed on bad input, nothing changed."""
    try:
        fn()
    except (InvalidInput, NotFound, AlreadyExists, PermissionError) as exc:
        flash(str(exc), "error")
        return False
    except (TollgateError, redis.RedisError) as exc:
        flash(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "error")
        return False
    flash(words(ok), "ok")
    return True


def back(default: str):
    target = request.form.get("next") or request.args.get("next") or ""
    return redirect(target if _local(target) else default)


def _local(target: str) -> bool:
    parts = urlsplit(target)
    return bool(target) and target.startswith("/") and not target.startswith("//") and not parts.netloc \
        and "\\" not in target


def tenant_page(fn):
    """A page of one tenant: signed in, and a tenant this person may see (else 404)."""

    @wraps(fn)
    @login_required
    def view(tenant, **kw):
        tenant_or_404(tenant)
        return fn(tenant, **kw)

    return view


@bp.app_template_filter("phone")
def phone_filter(value: str) -> str:
    """National format for people; the E.164 form is shown beside it by the templates."""
    if not value or not value.startswith("+"):
        return value or ""
    try:
        return phonenumbers.format_number(phonenumbers.parse(value, None), phonenumbers.PhoneNumberFormat.NATIONAL)
    except phonenumbers.NumberParseException:
        return value


@bp.app_template_filter("when")
def when_filter(ts) -> str:
    try:
        t = float(ts)
    except (TypeError, ValueError):
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else ""


bp.add_app_template_filter(local_time, "instant")


@bp.app_template_filter("epoch")
def epoch_filter(value: str) -> float:
    """An entry's stored instant as epoch seconds (0 for none or a corrupt one)."""
    try:
        return float(epoch(value or ""))
    except ValueError:
        return 0.0


@bp.app_context_processor
def _nav():
    user = current_user.user if current_user.is_authenticated else None
    # Only the provider's staff pick a tenant; an administrator has one.
    visible = (store().admin.tenants() if user.provider else [user.tenant]) if user else []
    return {"me": user, "visible_tenants": visible}


@bp.app_errorhandler(CSRFError)
def _csrf(exc):
    return render_template("message.html", message=words(
        "Your session has expired or the form is stale: please try again.")), 400


def _api_answer(exc):
    """Under /api/, the API's JSON answer; None for a page."""
    if not request.path.startswith("/api/"):
        return None
    return api.store_unavailable(exc) if isinstance(exc, redis.RedisError) else api.http_error(exc)


@bp.app_errorhandler(404)
def _missing(exc):
    return _api_answer(exc) or (render_template("message.html", message=words("Page not found.")), 404)


# What a person got wrong (an address typed by hand, a stale link) is a 4xx
# with one line, as in the API, not a server error.
_CLIENT_ERRORS = ((InvalidInput, 400, "invalid_input"), (PermissionError, 403, "forbidden"),
                  (NotFound, 404, "not_found"), (AlreadyExists, 409, "already_exists"))


def _client_error(exc):
    status, code = next((s, c) for kind, s, c in _CLIENT_ERRORS if isinstance(exc, kind))
    message = str(exc).splitlines()[0] if str(exc) else code
    if request.path.startswith("/api/"):
        return api.error(status, code, message)
    return render_template("message.html", message=message), status


for _kind, _, _ in _CLIENT_ERRORS:
    bp.app_errorhandler(_kind)(_client_error)


@bp.app_errorhandler(TollgateError)
def _tollgate_error(exc):
    # A corrupt value in Redis, say: one line, the rest of the portal keeps serving.
    return render_template("message.html", message=str(exc).splitlines()[0] if str(exc) else "error"), 500


@bp.app_errorhandler(redis.RedisError)
def _store_down(exc):
    return _api_answer(exc) or (render_template(
        "message.html", message="The store (Redis) is unavailable; nothing was changed."), 503)


@bp.app_errorhandler(405)
def _method(exc):
    return _api_answer(exc) or (render_template("message.html", message="405"), 405)


@bp.app_errorhandler(403)
def _forbidden(exc):
    return _api_answer(exc) or (render_template("message.html", message=exc.description or "403"), 403)


# -- signing in ---------------------------------------------------------------
@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html")
    try:
        user = store().accounts.authenticate(request.form.get("username", ""), request.form.get("password", ""),
                                             auth.client_ip())
    except LoginRefused as exc:
        message = ("Too many failed logins from this address: wait a few minutes." if exc.throttled
                   else "Wrong user name or password.")
        return render_template("login.html", error=words(message),
                               username=request.form.get("username", "")), 429 if exc.throttled else 401
    auth.sign_in(store(), user)
    return redirect(url_for("pages.home"))


@bp.route("/login/once/<token>", methods=["GET", "POST"])
def login_once(token):
    if request.method == "GET":
        return render_template("once.html", token=token)
    user = store().accounts.redeem_once(token, auth.client_ip())
    if user is None:
        return render_template("message.html",
                               message=words("This login link was used already or has expired.")), 400
    auth.sign_in(store(), user)
    return redirect(url_for("pages.home"))


@bp.route("/logout", methods=["POST"])
def logout():
    auth.sign_out(store())
    return redirect(url_for("pages.login"))


@bp.route("/lang/<code>")
def set_language(code):
    resp = back(url_for("pages.home"))
    if code in i18n.LANGUAGES:
        resp.set_cookie("tg_lang", code, max_age=365 * 86400, samesite="Lax", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return resp


@bp.route("/")
@login_required
def home():
    if me().provider:
        return redirect(url_for("pages.tenants"))
    return redirect(url_for("pages.numbers", tenant=me().tenant))


# -- tenants (provider) and settings -------------------------------------------
@bp.route("/tenants", methods=["GET", "POST"])
@login_required
def tenants():
    if request.method == "POST" and request.form.get("delete"):
        auth.provider_only()
        gone = request.form["delete"]
        tenant_or_404(gone)
        if request.form.get("confirm") != gone:
            flash(words("Type the tenant's name to confirm."), "error")
        else:
            attempt(lambda: store_as_me().admin.delete_tenant(gone))
        return redirect(url_for("pages.tenants"))
    if request.method == "POST":
        auth.provider_only()
        name = request.form.get("name", "").strip()
        if attempt(lambda: store_as_me().admin.create_tenant(
                name, {"country": request.form.get("country", "FR").strip().upper(),
                       "language": request.form.get("language", "en")})):
            return redirect(url_for("pages.settings", tenant=name))
        return redirect(url_for("pages.tenants"))
    rows = []
    for t in store().admin.tenants():
        if me().may_see(t):
            try:
                s = store().admin.get_tenant(t)
                rows.append({"name": t, "country": s.country, "language": s.language, "pin_feature": s.pin_feature})
            except TollgateError as exc:
                rows.append({"name": t, "country": "?", "language": "?", "pin_feature": False, "error": str(exc)})
    return render_template("tenants.html", rows=rows)


@bp.route("/t/<tenant>/settings", methods=["GET", "POST"])
@tenant_page
def settings(tenant):
    if request.method == "POST" and request.form.get("op") in ("override", "remove_override"):
        f = request.form
        if f["op"] == "override":
            attempt(lambda: store_as_me().admin.set_override(tenant, f.get("prefix", "").strip(), f.get("class", "")))
        else:
            attempt(lambda: store_as_me().admin.remove_override(tenant, f.get("prefix", "")))
        return redirect(url_for("pages.settings", tenant=tenant))
    if request.method == "POST":
        changes = {k[4:]: v for k, v in request.form.items() if k.startswith("set_")}
        for name in ("pin_feature", "auto_suspend"):
            if f"has_{name}" in request.form:
                changes[name] = "on" if request.form.get(f"set_{name}") else "off"

        def save():
            current = store().admin.get_tenant(tenant).to_mapping()
            changed = {k: v for k, v in changes.items() if current.get(k) != v}
            check_settings_allowed(me(), changed)
            if changed:
                store_as_me().admin.update_tenant(tenant, changed)

        attempt(save)
        return redirect(url_for("pages.settings", tenant=tenant))
    values = store().admin.get_tenant(tenant).to_mapping()
    overrides = {p: c.value for p, c in sorted(store().admin.overrides(tenant).items())}
    return render_template("settings.html", tenant=tenant, values=values, provider_settings=PROVIDER_SETTINGS,
                           overrides=overrides, classes=[c.value for c in RULE_CLASSES])


@bp.route("/calls")
@login_required
def calls():
    now = time.time()
    rows = [r for r in store().calls.calls() if me().may_see(r.get("tenant", ""))]
    for r in rows:
        r["seconds"] = f"{max(now - float(r.get('started', now) or now), 0):.0f}"
    return render_template("calls.html", rows=rows)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    new_token = None
    if request.method == "POST":
        if request.form.get("revoke"):
            attempt(lambda: store().accounts.revoke_token(me().name, request.form["revoke"], actor=auth.actor()))
        else:
            try:
                new_token = store().accounts.create_token(me().name, request.form.get("label", ""),
                                                          actor=auth.actor())
            except TollgateError as exc:
                flash(str(exc), "error")
    tokens = store().accounts.tokens(me().name)
    log = store().accounts.read_log(30, None if me().provider else me().tenant)
    return render_template("account.html", tokens=tokens, new_token=new_token, log=log)
