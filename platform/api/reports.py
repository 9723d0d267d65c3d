"""Reports over the API: definitions, their data (under the caller's access), previews."""
from datetime import date, timedelta

from flask import abort, g, jsonify, request
from flask_babel import gettext as _

from ..reports import compiler, store
from . import bp
from .auth import invalid, json_body


def report_json(report):
    return {**report.body, "revision": report.revision}


def range_filters(args, defn, field="created_at"):
    """from/to (YYYY-MM-DD, inclusive) as filters on the report's date field (``date_field``,
    default created_at); ReportInvalid names each bad parameter, in the user's language."""
    errors, out = {}, []
    name = args.get("date_field") or field
    if "date_field" in args and not compiler.is_date_field(defn, name):
        errors["date_field"] = [_("%(param)s: “%(name)s” is not a date field of this report's form",
                                  param="date_field", name=name[:100])]
    for param, op in (("from", "gte"), ("to", "lt")):
        raw = args.get(param)
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            day = None
        if day is None:
            errors[param] = [_("%(param)s: give a date as YYYY-MM-DD", param=param)]
            continue
        if param == "to":
            day += timedelta(days=1)
        out.append({"field": name, "op": op, "value": day.isoformat()})
    if errors:
        raise compiler.ReportInvalid(errors)
    return out


@bp.get("/reports")
def list_reports():
    return jsonify({"reports": [report_json(r) for r in store.all_reports()]})


@bp.get("/reports/<key>")
def get_report(key):
    report = store.get(key) or abort(404)
    return jsonify(report_json(report))


def _data(defn):
    try:
        result = compiler.run(defn, g.user, range_filters(request.args, defn))
    except compiler.ReportInvalid as err:
        return invalid(err.errors)
    return jsonify(result.to_json())


@bp.get("/reports/<key>/data")
def report_data(key):
    report = store.get(key) or abort(404)
    return _data(report.body)


@bp.post("/reports/preview")
def preview_report():
    body = json_body(("key", "title", "description", "source", "dimensions", "measures", "filters", "sort",
                      "limit", "chart"))
    return _data({"key": "preview", **body})
