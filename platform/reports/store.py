"""Saving report definitions: checked first, every change a revision."""
import json
from importlib import resources

from flask_babel import gettext as _
from jsonschema import Draft202012Validator
from sqlalchemy import select

from ..extensions import db
from ..types import utcnow
from . import compiler
from .models import Report, ReportRevision


DASHBOARD = Draft202012Validator(json.loads(resources.files("formflow.reports").joinpath("dashboard.schema.json")
                                            .read_text("utf-8")))


def check_dashboard(body):
    """Refuse a dashboard that is malformed or names a report that does not exist."""
    from ..forms.pointers import problems
    errors = {}
    for ptr, message in problems(DASHBOARD, body):
        errors.setdefault(ptr, []).append(_("Not a valid dashboard: %(detail)s", detail=message[:300]))
    if not errors:
        seen = set()
        for i, tile in enumerate(body["tiles"]):
            if tile_id(tile) in seen:
                errors[f"/tiles/{i}"] = [_("This tile is on the dashboard twice")]
            seen.add(tile_id(tile))
            if "report" in tile and get(tile["report"]) is None:
                errors[f"/tiles/{i}/report"] = [_("There is no report “%(name)s”", name=tile["report"])]
    if errors:
        raise compiler.ReportInvalid(errors)


def tile_id(tile):
    """A tile's name on its dashboard: the report (":records" for its record list), or "tasks:<when>"."""
    if "tasks" in tile:
        return f"tasks:{tile['tasks']}"
    return tile["report"] + (":records" if tile.get("view") == "records" else "")


def visible_dashboards(user):
    return [d for d in all_reports("dashboard") if not d.body.get("roles") or user.role in d.body["roles"]]


def get(key, kind="report"):
    return db.session.scalars(select(Report).where(Report.key == key, Report.kind == kind)).first()


def all_reports(kind="report"):
    return db.session.scalars(select(Report).where(Report.kind == kind).order_by(Report.key)).all()


def save(body, user=None, blueprint_key=None, kind="report"):
    """Create or change a report (checked by the compiler first); returns (report, changed)."""
    if kind == "report":
        compiler.check(body)
    else:
        check_dashboard(body)
    report = get(body["key"], kind)
    if report is not None and report.body == body:
        return report, False
    if report is None:
        report = Report(key=body["key"], kind=kind, revision=0, blueprint_key=blueprint_key)
        db.session.add(report)
    report.body, report.revision, report.updated_at = body, (report.revision or 0) + 1, utcnow()
    db.session.flush()
    db.session.add(ReportRevision(report_id=report.id, number=report.revision, body=body,
                                  user_id=user.id if user else None))
    db.session.flush()
    return report, True
