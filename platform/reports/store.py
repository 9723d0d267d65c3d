"""Saving report definitions: checked first, every change a revision."""
from sqlalchemy import select

from ..extensions import db
from ..types import utcnow
from . import compiler
from .models import Report, ReportRevision


def get(key, kind="report"):
    return db.session.scalars(select(Report).where(Report.key == key, Report.kind == kind)).first()


def all_reports(kind="report"):
    return db.session.scalars(select(Report).where(Report.kind == kind).order_by(Report.key)).all()


def save(body, user=None, blueprint_key=None, kind="report"):
    """Create or change a report (checked by the compiler first); returns (report, changed)."""
    if kind == "report":
        compiler.check(body)
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
