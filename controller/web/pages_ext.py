"""Pages of "Extensions" (the "Call settings" tab: IVR authentication and the
unlock codes, seed 001), the dry run of a call, and the audit."""

from __future__ import annotations

import json

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from controller.errors import InvalidInput, TollgateError
from controller.store import queries
from controller.web.auth import store_as_me
from controller.web.pages import attempt, bp, store, tenant_page, words


@bp.route("/t/<tenant>/extensions", methods=["GET", "POST"])
@tenant_page
def extensions(tenant):
    a = store_as_me().admin
    if request.method == "POST":
        f = request.form
        n = f.get("number", "").strip()
        if attempt(lambda: a.put_extension(tenant, n, create=True, display_name=f.get("name", ""))):
            return redirect(url_for("pages.extension", tenant=tenant, number=n))
        return redirect(url_for("pages.extensions", tenant=tenant))
    rows = [queries.extension_view(store(), tenant, a.get_extension(tenant, n)) for n in a.extensions(tenant)]
    return render_template("extensions.html", tenant=tenant, rows=rows,
                           pin_feature=a.get_tenant(tenant).pin_feature)


@bp.route("/t/<tenant>/extensions/<number>", methods=["GET", "POST"])
@tenant_page
def extension(tenant, number):
    a = store_as_me().admin
    tab = request.args.get("tab", "calls")
    if request.method == "POST":
        f, op = request.form, request.form.get("op", "")
        if op == "ivr":
            attempt(lambda: a.put_extension(tenant, number, pin_enabled=f.get("pin_enabled") == "on"))
        elif op == "pin":
            attempt(lambda: _set_pin(tenant, number, f.get("holder", ""), f.get("pin", ""), f.get("pin2", "")))
        elif op == "remove_pin":
            attempt(lambda: a.remove_pin(tenant, number, f.get("holder", "")))
        elif op == "unlock":
            attempt(lambda: a.unlock(tenant, number))
        elif op == "general":
            attempt(lambda: a.put_extension(
                tenant, number, display_name=f.get("name", ""), language=f.get("language", ""),
                caller_ids=[x for x in f.get("caller_ids", "").replace(";", ",").split(",") if x.strip()]))
        elif op == "remove":
            if attempt(lambda: a.delete_extension(tenant, number)):
                return redirect(url_for("pages.extensions", tenant=tenant))
        return redirect(url_for("pages.extension", tenant=tenant, number=number, tab=tab))
    ext = a.get_extension(tenant, number)
    return render_template("extension.html", tenant=tenant, ext=queries.extension_view(store(), tenant, ext),
                           settings=a.get_tenant(tenant), tab=tab)


def _set_pin(tenant: str, number: str, holder: str, pin: str, again: str) -> None:
    if pin != again:
        raise InvalidInput(words("The two PINs differ."))
    store_as_me().admin.set_pin_value(tenant, number, holder or "default", pin, current_app.config["PEPPER"])


@bp.route("/t/<tenant>/check", methods=["GET", "POST"])
@tenant_page
def check(tenant):
    result, form = None, request.form if request.method == "POST" else {}
    if request.method == "POST":
        try:
            result = queries.check(store(), tenant, form.get("extension", "").strip(), form.get("to", ""),
                                   form.get("caller_id", "").strip(), form.get("source", "").strip(),
                                   form.get("unattended", ""))
        except TollgateError as exc:
            flash(str(exc), "error")
    return render_template("check.html", tenant=tenant, result=result, form=form,
                           extensions=store().admin.extensions(tenant))


@bp.route("/t/<tenant>/audit")
@tenant_page
def audit(tenant):
    a = request.args
    try:
        filt = queries.AuditFilter(extension=a.get("extension", ""), verdict=a.get("verdict", ""),
                                   kind=a.get("kind", ""), actor=a.get("actor", ""),
                                   since=queries.since_window(a.get("since", "")))
        if a.get("export") == "csv":
            rows, _ = queries.audit_page(store(), tenant, filt, 100_000)
            return Response(queries.audit_csv(rows), mimetype="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{tenant}-audit.csv"'})
        rows, cursor = queries.audit_page(store(), tenant, filt, 50, a.get("cursor", ""))
    except InvalidInput as exc:
        flash(str(exc), "error")
        rows, cursor = [], ""
    entries = [{"id": i, **f, **_before_after(f.get("before"), f.get("after"))} for i, f in rows]
    link_args = {k: v for k, v in a.items() if k not in ("cursor", "export")}
    return render_template("audit.html", tenant=tenant, entries=entries, cursor=cursor, args=a,
                           link_args=link_args)


@bp.route("/t/<tenant>/usage")
@tenant_page
def usage(tenant):
    try:
        since = queries.since_window(request.args.get("since", ""))
    except InvalidInput as exc:
        flash(str(exc), "error")
        since = None
    rows = queries.restricted_use(store(), tenant, since)
    if request.args.get("export") == "csv":
        return Response(queries.usage_csv(rows), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{tenant}-restricted-use.csv"'})
    names = {n: store().admin.get_extension(tenant, n).display_name for n in store().admin.extensions(tenant)}
    return render_template("usage.html", tenant=tenant, rows=rows, names=names, args=request.args)


def _before_after(before: str | None, after: str | None) -> dict:
    """What a change changed: of two objects, only the fields that differ."""
    b, a = _load(before), _load(after)
    if isinstance(b, dict) and isinstance(a, dict):
        changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
        b = {k: v for k, v in b.items() if k in changed}
        a = {k: v for k, v in a.items() if k in changed}
    return {"before_pretty": _pretty(b), "after_pretty": _pretty(a)}


def _load(raw: str | None):
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _pretty(value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()) if k not in ("created", "updated"))
    return str(value)
