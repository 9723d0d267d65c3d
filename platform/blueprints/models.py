"""Loaded blueprints (their documents live with the engines that use them)."""
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import JSONType, UTCDateTime, utcnow


class Blueprint(db.Model):
    __tablename__ = "blueprints"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[str] = mapped_column(String(32))
    manifest: Mapped[dict] = mapped_column(JSONType)
    loaded_at = mapped_column(UTCDateTime, default=utcnow)
