"""Forms, their versions, records and the append-only record history."""
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..types import JSONType, UTCDateTime, utcnow


class Form(db.Model):
    __tablename__ = "forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[dict] = mapped_column(JSONType, default=dict)
    blueprint_key: Mapped[str | None] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, default=utcnow)

    versions = relationship("FormVersion", back_populates="form", order_by="FormVersion.number",
                            cascade="all, delete-orphan")


class FormVersion(db.Model):
    """One definition of a form; published versions never change."""

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("form_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="draft")
    schema: Mapped[dict] = mapped_column(JSONType)
    ui: Mapped[dict] = mapped_column(JSONType)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    checksum: Mapped[str] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    published_at = mapped_column(UTCDateTime, nullable=True)

    form = relationship(Form, back_populates="versions")

    @property
    def is_published(self):
        return self.status == "published"


class Record(db.Model):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("form_id", "import_key"),
        Index("ix_records_form_dedupe", "form_id", "dedupe_key"),
        Index("ix_records_form_owner", "form_id", "owner_id"),
        Index("ix_records_form_created", "form_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    form_version_id: Mapped[int] = mapped_column(ForeignKey("form_versions.id"))
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    version: Mapped[int] = mapped_column(default=1)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    updated_at = mapped_column(UTCDateTime, default=utcnow)
    deleted_at = mapped_column(UTCDateTime, nullable=True)
    # when the owner last changed (set by the workflow's handover); empty: still with the owner
    # it was created with, so created_at is the moment it was assigned
    assigned_at = mapped_column(UTCDateTime, nullable=True)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    search_text: Mapped[str] = mapped_column(String(1000), default="")
    import_key: Mapped[str | None] = mapped_column(String(100))

    form = relationship(Form)
    form_version = relationship(FormVersion)
    owner = relationship("User", foreign_keys=[owner_id])
    created_by = relationship("User", foreign_keys=[created_by_id])
    duplicate_of = relationship("Record", remote_side=[id])
    history = relationship("RecordChange", order_by="RecordChange.id", back_populates="record")

    __mapper_args__ = {"version_id_col": version}


class RecordChange(db.Model):
    """One entry of a record's history: never updated, never deleted."""

    __tablename__ = "record_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at = mapped_column(UTCDateTime, default=utcnow)
    changes: Mapped[dict] = mapped_column(JSONType, default=dict)

    record = relationship(Record, back_populates="history")
    user = relationship("User")


class IdempotencyKey(db.Model):
    """Remembers which record an API client's Idempotency-Key created (``key``: a SHA-256 of the
    calling token and the client's key, so keys are scoped per token)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow)


@event.listens_for(RecordChange, "before_update")
@event.listens_for(RecordChange, "before_delete")
def _history_is_append_only(mapper, connection, target):
    raise RuntimeError("record history is append-only")


@event.listens_for(FormVersion, "before_update")
def _published_is_immutable(mapper, connection, target):
    state = db.inspect(target)
    status = state.attrs.status.history
    was_published = (status.deleted and status.deleted[0] == "published") or (
        not status.has_changes() and target.status == "published")
    if was_published:
        for name in ("schema", "ui", "settings", "checksum", "number"):
            if state.attrs[name].history.has_changes():
                raise RuntimeError("a published form version is immutable")
