"""Reports over the API: definitions, their data (under the caller's access), previews."""
from datetime import date, timedelta

from flask import abort, g, jsonify, request
from flask_babel import gettext as _

from ..reports import compiler, store
from . import bp
from .auth import invalid, json_body


def report_json(report):
    return {**report.body, "revision": report.revision}


def range_filters(args, field="created_at"):
    """from/to (YYYY-MM-DD, inclusive) as filters on a date field; ValueError names the bad one."""
    out = []
    for name, op in (("from", "gte"), ("to", "lt")):
        raw = args.get(name)
        if not raw:
            continue
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ValueError(name) from None
        if name == "to":
            day += timedelta(days=1)
        out.append({"field": args.get("date_field", field), "op": op, "value": day.isoformat()})
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
        extra = range_filters(request.args)
    except ValueError as err:
        return invalid({str(err): [_("Give a date as YYYY-MM-DD")]})
    try:
        result = compiler.run(defn, g.user, extra)
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
