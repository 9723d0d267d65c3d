"""Tables the background machinery keeps."""
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..types import UTCDateTime, utcnow


class Heartbeat(db.Model):
    """The last sign of life of each queue consumer, shown to admins."""

    __tablename__ = "queue_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100), unique=True)
    at = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")
