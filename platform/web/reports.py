"""Report pages: the drag-and-drop builder, saved reports with charts, drill-down, exports."""

from pathlib import Path

from flask import Response, abort, flash, jsonify, redirect, render_template, request, \
    send_from_directory, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import clock, inputs
from ..api.reports import range_filters
from ..extensions import db
from ..forms import catalog, definitions
from ..i18n import doc_locale, pick
from ..reports import compiler, export, store
from ..workflow.models import Task
from . import bp
from .work import count_tasks, open_tasks

BUILDER_ROLES = ("admin", "manager")
TILE_ROWS = 12  # records or tasks listed in one dashboard tile


def _palette():
    """Every form with its fields, for the builder's palette."""
    locale = doc_locale()
    out = {}
    for form in catalog.all_forms():
        version = catalog.current_version(form)
        if version is None:
            continue
        fields = [{"name": "created_at", "label": _("Created at"), "kind": "datetime"},
                  {"name": "owner", "label": _("Owner"), "kind": "user"},
                  {"name": "team", "label": _("Team"), "kind": "choice"}]
        for name, prop in version.schema["properties"].items():
            widget = definitions.widget_for(name, prop, version.ui)
            label = pick(version.ui.get("fields", {}).get(name, {}).get("label"), locale) or prop.get("title", name)
            options = version.ui.get("fields", {}).get(name, {}).get("options", {})
            kind = {"integer": "number", "number": "number", "money": "number", "date": "date",
                    "datetime": "datetime", "multiselect": "multi", "select": "choice", "radio": "choice",
                    "boolean": "choice", "user": "user", "reference": "reference"}.get(widget, "text")
            entry = {"name": name, "label": label, "kind": kind}
            if definitions.enum_of(prop) is not None:
                entry["options"] = [[v, pick(options.get(v), locale) or v] for v in definitions.enum_of(prop)]
            fields.append(entry)
            if widget == "reference" and prop.get("x-reference"):
                target = catalog.current_version(catalog.get_form(prop["x-reference"]))
                for tname, tprop in target.schema["properties"].items():
                    if definitions.widget_for(tname, tprop, target.ui) in ("select", "radio", "date"):
                        tlabel = pick(target.ui.get("fields", {}).get(tname, {}).get("label"), locale) or tname
                        fields.append({"name": f"{name}.{tname}", "label": f"{label} · {tlabel}",
                                       "kind": "date" if tprop.get("format") == "date" else "choice"})
        flow = (version.settings or {}).get("status_flow")
        out[form.key] = {"title": pick(form.title, locale), "fields": fields,
                         "states": next((f["options"] for f in fields if flow and f["name"] == flow["field"]), [])}
    return out


@bp.get("/reports")
@login_required
def report_list():
    return render_template("reports/list.html", reports=store.all_reports(),
                           dashboards=store.visible_dashboards(current_user))


@bp.get("/reports/builder")
@login_required
def report_builder():
    if current_user.role not in BUILDER_ROLES:
        abort(403)
    report = store.get(request.args["key"]) if request.args.get("key") else None
    return render_template("reports/builder.html", report=report, palette=_palette())


@bp.post("/reports/builder/preview")
@login_required
def report_preview():
    defn = {"key": "preview", **inputs.posted_object()}
    try:
        result = compiler.run(defn, current_user)
    except compiler.ReportInvalid as err:
        return jsonify({"errors": err.errors}), 422
    return jsonify({**result.to_json(), "table": export.table(result)})


@bp.post("/reports/builder/save")
@login_required
def report_save():
    if current_user.role not in BUILDER_ROLES:
        abort(403)
    defn = inputs.posted_object()
    try:
        report, _changed = store.save(defn, current_user)
    except compiler.ReportInvalid as err:
        db.session.rollback()
        return jsonify({"errors": err.errors}), 422
    db.session.commit()
    return jsonify({"key": report.key, "revision": report.revision, "url": url_for("web.report_view", key=report.key)})


def _bad_request(err):
    """A page's answer to a bad parameter: 400, every message naming its parameter."""
    message = " ".join(m for messages in err.errors.values() for m in messages)
    return render_template("error.html", code=400, message=message), 400


@bp.get("/reports/<key>")
@login_required
def report_view(key):
    report = store.get(key) or abort(404)
    status = 200
    try:
        extra = range_filters(request.args, report.body)
    except compiler.ReportInvalid as err:
        # the page stays usable: the whole report, a warning naming what to fix, a 400
        for messages in err.errors.values():
            for message in messages:
                flash(message, "warning")
        extra, status = [], 400
    result = compiler.run(report.body, current_user, extra)
    return render_template("reports/view.html", report=report, result=result, table=export.table(result),
                           data=result.to_json()), status


@bp.get("/reports/<key>/drill")
@login_required
def report_drill(key):
    report = store.get(key) or abort(404)
    cell = {}
    for d in report.body.get("dimensions", []):
        k = compiler._dim_key(d)
        if k in request.args:
            cell[k] = request.args[k] or None
    measure = request.args.get("measure") or None
    try:
        extra = range_filters(request.args, report.body)
        defn = {**report.body, "filters": [*report.body.get("filters", []), *extra]}
        rows = compiler.drill(defn, current_user, cell, measure=measure)
        described, measure_label = compiler.describe(report.body, cell, measure)
    except compiler.ReportInvalid as err:
        return _bad_request(err)
    return render_template("reports/drill.html", report=report, rows=rows, described=described,
                           measure_label=measure_label)


@bp.get("/reports/<key>/export.<fmt>")
@login_required
def report_export(key, fmt):
    report = store.get(key) or abort(404)
    if fmt not in ("csv", "xlsx"):
        abort(404)
    try:
        result = compiler.run(report.body, current_user, range_filters(request.args, report.body))
    except compiler.ReportInvalid as err:
        return _bad_request(err)  # never a file of other numbers than asked for
    if fmt == "csv":
        return Response(export.to_csv(result), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename={key}.csv"})
    return Response(export.to_xlsx(result, key),
                    mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename={key}.xlsx"})


@bp.get("/vendor/plotly.min.js")
def plotly_js():
    """The charting library, served from the installed plotly package (no CDN)."""
    import plotly
    folder = Path(plotly.__file__).parent / "package_data"
    return send_from_directory(folder, "plotly.min.js", max_age=7 * 86400)




@bp.get("/reports/<key>/data.json")
@login_required
def report_data_json(key):
    report = store.get(key) or abort(404)
    try:
        result = compiler.run(report.body, current_user, range_filters(request.args, report.body))
    except compiler.ReportInvalid as err:
        return jsonify({"errors": err.errors}), 422
    return jsonify({**result.to_json(), "table": export.table(result), "chart": report.body.get("chart") or {},
                    "title": pick(report.body.get("title")) or report.key,
                    "drill": url_for("web.report_drill", key=key)})


@bp.get("/dashboards/<key>")
@login_required
def dashboard_view(key):
    dash = store.get(key, "dashboard") or abort(404)
    if dash.body.get("roles") and current_user.role not in dash.body["roles"]:
        abort(404)
    tiles = []
    for tile in dash.body["tiles"]:
        shown = {"tile": tile, "id": store.tile_id(tile)}
        if "tasks" in tile:
            mine = select(Task).where(Task.status == "open", Task.assignee_id == current_user.id)
            shown["tasks"] = open_tasks(mine, tile["tasks"], clock.now(), limit=TILE_ROWS)
            shown["total"] = count_tasks(mine, tile["tasks"], clock.now())
        elif tile.get("view") == "records":
            report = store.get(tile["report"])
            shown["report"] = report
            shown["records"] = compiler.drill(report.body, current_user, {}, limit=TILE_ROWS + 1) if report else []
            shown["more"] = len(shown["records"]) > TILE_ROWS
            shown["records"] = shown["records"][:TILE_ROWS]
        tiles.append(shown)
    return render_template("reports/dashboard.html", dash=dash, tiles=tiles,
                           may_arrange=current_user.role in BUILDER_ROLES)


@bp.post("/dashboards/<key>/layout")
@login_required
def dashboard_layout(key):
    """Save the tiles' new order (after dragging) and widths."""
    if current_user.role not in BUILDER_ROLES:
        abort(403)
    dash = store.get(key, "dashboard") or abort(404)
    order = [t for t in inputs.posted_object().get("tiles") or [] if isinstance(t, dict)]
    tiles = {store.tile_id(t): t for t in dash.body["tiles"]}
    names = [str(t.get("id") or t.get("report")) for t in order]
    if sorted(names) != sorted(tiles):
        return jsonify({"errors": {"/tiles": [_("Send every tile once")]}}), 422
    new = [{**tiles[name], **({"w": int(t["w"])} if str(t.get("w", "")).isdigit() else {})}
           for name, t in zip(names, order)]
    try:
        store.save({**dash.body, "tiles": new}, current_user, kind="dashboard")
    except compiler.ReportInvalid as err:
        db.session.rollback()
        return jsonify({"errors": err.errors}), 422
    db.session.commit()
    return jsonify({"ok": True})


@bp.route("/dashboards/new", methods=["GET", "POST"])
@login_required
def dashboard_new():
    if current_user.role not in BUILDER_ROLES:
        abort(403)
    errors = {}
    if request.method == "POST":
        body = {"key": request.form.get("key", "").strip(),
                "title": {"zh-CN": request.form.get("title", "").strip() or request.form.get("key", "")},
                "roles": request.form.getlist("roles"),
                "tiles": [{"report": k, "w": 6} for k in request.form.getlist("reports")]}
        try:
            store.save(body, current_user, kind="dashboard")
        except compiler.ReportInvalid as err:
            db.session.rollback()
            errors = err.errors
        else:
            db.session.commit()
            return redirect(url_for("web.dashboard_view", key=body["key"]))
    return render_template("reports/dashboard_new.html", reports=store.all_reports(), errors=errors)
