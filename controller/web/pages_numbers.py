"""Pages of "Outbound rules": authorized numbers (seed 000's table and form,
CSV import and export, stale entries), lists, and rules in order."""

from __future__ import annotations

import time

from flask import Response, flash, redirect, render_template, request, url_for

from controller.errors import InvalidInput
from controller.store import queries
from controller.store.rules import schedule_from
from controller.web.auth import store_as_me
from controller.web.pages import attempt, back, bp, store, tenant_page
from policies.classes import RULE_CLASSES

PAGE = 100  # rows of the authorized-numbers table per page


@bp.route("/t/<tenant>/numbers", methods=["GET", "POST"])
@tenant_page
def numbers(tenant):
    a = store_as_me().admin
    if request.method == "POST":
        f = request.form
        attempt(lambda: a.add_entry(tenant, f.get("list", ""), f.get("first_name", ""), f.get("last_name", ""),
                                    f.get("phone", ""), f.get("state", "enabled"),
                                    valid_from=f.get("valid_from", ""), valid_until=f.get("valid_until", "")))
        return redirect(url_for("pages.numbers", tenant=tenant, list=request.args.get("list", "")))
    lst, q, days = request.args.get("list", ""), request.args.get("q", ""), request.args.get("stale", "")
    expiring = request.args.get("expiring", "")
    known = a.lists(tenant)
    if lst and lst not in known:
        rows = []
    elif days:
        rows = queries.search_entries(a.stale_entries(tenant, 90, lst or None), q)
    elif expiring:
        rows = queries.search_entries(a.expiring_entries(tenant, 14, lst or None), q)
    else:
        rows = queries.search_entries(a.entries(tenant, lst or None), q, request.args.get("state", ""))
    raw_page = request.args.get("page", "1")
    page = max(int(raw_page), 1) if raw_page.isdigit() else 1
    pages = max((len(rows) + PAGE - 1) // PAGE, 1)
    page = min(page, pages)
    return render_template("numbers.html", tenant=tenant, rows=rows[(page - 1) * PAGE:page * PAGE], total=len(rows),
                           page=page, pages=pages, lists=known, current_list=lst, q=q,
                           stale=bool(days), expiring=bool(expiring), now=time.time(),
                           link_args={k: v for k, v in request.args.items() if k != "page"})


@bp.route("/t/<tenant>/numbers/state", methods=["POST"])
@tenant_page
def number_state(tenant):
    f = request.form
    attempt(lambda: store_as_me().admin.update_entry(tenant, f.get("list", ""), f.get("phone", ""),
                                                     state=f.get("state", "")))
    return back(url_for("pages.numbers", tenant=tenant))


@bp.route("/t/<tenant>/numbers/remove", methods=["POST"])
@tenant_page
def number_remove(tenant):
    f = request.form
    attempt(lambda: store_as_me().admin.remove_entry(tenant, f.get("list", ""), f.get("phone", "")))
    return back(url_for("pages.numbers", tenant=tenant))


@bp.route("/t/<tenant>/numbers/import", methods=["POST"])
@tenant_page
def number_import(tenant):
    upload = request.files.get("file")
    done = {}

    def run():
        if upload is None or not upload.filename:
            raise InvalidInput("choose a CSV file to import")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the CSV must be UTF-8") from None
        done.update(store_as_me().admin.import_entries(tenant, text, create_lists=bool(request.form.get("create")),
                                                       replace=bool(request.form.get("replace"))))

    if attempt(run):
        flash(f"+{done['added']} / ~{done['updated']}", "ok")
    return redirect(url_for("pages.numbers", tenant=tenant))


@bp.route("/t/<tenant>/numbers/export.csv")
@tenant_page
def number_export(tenant):
    text = store().admin.export_entries(tenant, request.args.get("list") or None)
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{tenant}-authorized-numbers.csv"'})


@bp.route("/t/<tenant>/lists", methods=["GET", "POST"])
@tenant_page
def lists(tenant):
    if request.method == "POST":
        f = request.form
        if f.get("delete"):
            attempt(lambda: store_as_me().admin.delete_list(tenant, f["delete"], force=bool(f.get("force"))))
        else:
            attempt(lambda: store_as_me().admin.create_list(tenant, f.get("name", "").strip()))
        return redirect(url_for("pages.lists", tenant=tenant))
    return render_template("lists.html", tenant=tenant, lists=store().admin.lists(tenant))


def _words(text: str) -> list[str]:
    """A comma-separated field of a form: its items, trimmed."""
    return [p.strip() for p in text.split(",") if p.strip()]


@bp.route("/t/<tenant>/rules", methods=["GET", "POST"])
@tenant_page
def rules(tenant):
    a = store_as_me().admin
    if request.method == "POST":
        f = request.form
        op, name = f.get("op", "add"), f.get("name", "")
        fields = {"name": name.strip(), "action": f.get("action", ""), "classes": f.getlist("classes"),
                  "prefixes": _words(f.get("prefixes", "")),
                  "lists": f.getlist("lists"), "pin": bool(f.get("pin")), "unattended": bool(f.get("unattended")),
                  "regions": _words(f.get("regions", "")), "except_regions": _words(f.get("except_regions", ""))}
        if op in ("add", "edit"):
            def save():
                schedule = schedule_from(f.get("days", "").strip(), f.get("hours", "").strip(),
                                         f.get("holidays", "").strip())
                if op == "add":
                    a.add_rule(tenant, **fields, schedule=schedule)
                else:
                    a.update_rule(tenant, f.get("original", ""), {**fields, "schedule": schedule})

            if not attempt(save) and op == "edit":
                return redirect(url_for("pages.rules", tenant=tenant, edit=f.get("original", "")))
        elif op in ("up", "down"):
            names = [r.name for r in a.rules(tenant)]
            if name in names:
                pos = names.index(name) + (0 if op == "up" else 2)
                attempt(lambda: a.move_rule(tenant, name, max(1, min(pos, len(names)))))
        elif op in ("enable", "disable"):
            attempt(lambda: a.set_rule_enabled(tenant, name, op == "enable"))
        elif op == "remove":
            attempt(lambda: a.remove_rule(tenant, name))
        return redirect(url_for("pages.rules", tenant=tenant))
    s = store().admin.get_tenant(tenant)
    found = store().admin.rules(tenant)
    editing = next((r for r in found if r.name == request.args.get("edit")), None)
    return render_template("rules.html", tenant=tenant, rules=found, lists=store().admin.lists(tenant),
                           classes=[c.value for c in RULE_CLASSES], settings=s, editing=editing)
