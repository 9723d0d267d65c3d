"""Loaded blueprints and the documents the engine keeps for them."""
from sqlalchemy import String, UniqueConstraint
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


class BlueprintDocument(db.Model):
    """A rule, report or dashboard definition shipped by a blueprint, kept verbatim.

    The workflow and report engines read these; export writes them back unchanged.
    """

    __tablename__ = "blueprint_documents"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    blueprint_key: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict] = mapped_column(JSONType)
    updated_at = mapped_column(UTCDateTime, default=utcnow)
