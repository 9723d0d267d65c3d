"""Saved report and dashboard definitions, with their revisions."""
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import JSONType, UTCDateTime, utcnow


class Report(db.Model):
    """A report definition (the blueprint file format in ``body``) and its current revision."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="report")  # report | dashboard
    body: Mapped[dict] = mapped_column(JSONType)
    revision: Mapped[int] = mapped_column(default=1)
    blueprint_key: Mapped[str | None] = mapped_column(String(64))
    updated_at = mapped_column(UTCDateTime, default=utcnow)


class ReportRevision(db.Model):
    __tablename__ = "report_revisions"
    __table_args__ = (UniqueConstraint("report_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    number: Mapped[int]
    body: Mapped[dict] = mapped_column(JSONType)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow)
