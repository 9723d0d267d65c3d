"""Tables the background machinery keeps."""
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..types import JSONType, UTCDateTime, utcnow


class Heartbeat(db.Model):
    """The last sign of life of each queue consumer, shown to admins."""

    __tablename__ = "queue_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)
    consumer: Mapped[str] = mapped_column(String(100), unique=True)
    at = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(String(200), default="")


class Rule(db.Model):
    """A workflow rule: trigger, condition, ordered actions, priority, enabled flag.

    ``body`` is the whole definition (the blueprint file format); the columns beside it are
    copies for querying. Every saved change adds a RuleRevision, so any can be restored.
    """

    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    form_key: Mapped[str] = mapped_column(String(64), index=True)
    trigger_type: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[int] = mapped_column(default=100)
    enabled: Mapped[bool] = mapped_column(default=True)
    body: Mapped[dict] = mapped_column(JSONType)
    revision: Mapped[int] = mapped_column(default=1)
    blueprint_key: Mapped[str | None] = mapped_column(String(64))
    updated_at = mapped_column(UTCDateTime, default=utcnow)
    # A time rule's occurrences at or before this moment are never armed: when its timing was
    # last set (created, timing edited, enabled), so an edit never replays the past.
    timing_since = mapped_column(UTCDateTime, nullable=True)


class RuleRevision(db.Model):
    __tablename__ = "rule_revisions"
    __table_args__ = (UniqueConstraint("rule_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"), index=True)
    number: Mapped[int]
    body: Mapped[dict] = mapped_column(JSONType)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at = mapped_column(UTCDateTime, default=utcnow)


class RuleRun(db.Model):
    """One firing of a rule: what triggered it, whether its condition held, what it did."""

    __tablename__ = "rule_runs"
    __table_args__ = (Index("ix_rule_runs_record_at", "record_id", "at"), Index("ix_rule_runs_rule_at", "rule_id", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id"))
    rule_key: Mapped[str] = mapped_column(String(64))
    rule_revision: Mapped[int] = mapped_column(default=1)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    trigger: Mapped[str] = mapped_column(String(200))
    matched: Mapped[bool | None]
    actions: Mapped[list] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(String(2000))
    depth: Mapped[int] = mapped_column(default=0)
    dry_run: Mapped[bool] = mapped_column(default=False)
    at = mapped_column(UTCDateTime, default=utcnow)


class DueEntry(db.Model):
    """A time trigger waiting to fire: one row per (rule, record), indexed by due time."""

    __tablename__ = "due_entries"
    __table_args__ = (UniqueConstraint("rule_id", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    due_at = mapped_column(UTCDateTime, index=True)
    payload: Mapped[dict] = mapped_column(JSONType, default=dict)
    # The rule's timing_since this entry was computed for: one computed for an earlier timing
    # of the rule is recomputed, never fired. (A copied value, not a clock reading, so it holds
    # however the machines' clocks disagree.)
    armed_for = mapped_column(UTCDateTime, nullable=True)


class CronMark(db.Model):
    """That a cron rule fired for a given minute, so several consumers fire it once."""

    __tablename__ = "cron_marks"
    __table_args__ = (UniqueConstraint("rule_id", "minute"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("rules.id"))
    minute: Mapped[str] = mapped_column(String(16))


class Task(db.Model):
    """A follow-up someone has to do, usually about a record, with a due time."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000), default="")
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(12), default="open")
    due_at = mapped_column(UTCDateTime, nullable=True)
    rule_key: Mapped[str | None] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    done_at = mapped_column(UTCDateTime, nullable=True)
    closed_reason: Mapped[str | None] = mapped_column(String(200))  # status "closed": why nobody did it
    kind: Mapped[str | None] = mapped_column(String(16))  # set for tasks the engine itself gives (assign_by_hand)

    assignee = relationship("User")
    record = relationship("Record")


class Notification(db.Model):
    """An in-app inbox message."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(2000), default="")
    rule_key: Mapped[str | None] = mapped_column(String(64))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    read_at = mapped_column(UTCDateTime, nullable=True)


class OutboxEntry(db.Model):
    """A side effect (email, webhook) written with the change and delivered after commit.

    ``key`` is the effect's idempotency key: unique here, and sent along so receivers can
    drop a repeat if a delivery is retried after a crash.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    sent_at = mapped_column(UTCDateTime, nullable=True)


class StatusChange(db.Model):
    """When a record entered a state: the history funnels and cycle times are measured on."""

    __tablename__ = "status_changes"
    __table_args__ = (Index("ix_status_changes_record", "record_id", "at"),
                      Index("ix_status_changes_form_to", "form_id", "to_value", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"))
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    field: Mapped[str] = mapped_column(String(64))
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at = mapped_column(UTCDateTime, default=utcnow)


class AssignmentLock(db.Model):
    """One row per form; assignment updates it first, which serialises concurrent assignments."""

    __tablename__ = "assignment_locks"

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), unique=True)
    counter: Mapped[int] = mapped_column(default=0)


class AssignmentMark(db.Model):
    """When a user last received a record of a form, for round-robin tie-breaks."""

    __tablename__ = "assignment_marks"
    __table_args__ = (UniqueConstraint("form_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at = mapped_column(UTCDateTime, default=utcnow)


class Job(db.Model):
    """Work that grows with the data, done in the queue in batches: its kind, progress and result.

    ``state`` carries what the job needs to resume after a crash (a cursor); ``result`` what it
    found (counts, samples) for the pages to show.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("rules.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending, running, done, failed, superseded
    params: Mapped[dict] = mapped_column(JSONType, default=dict)
    state: Mapped[dict] = mapped_column(JSONType, default=dict)
    result: Mapped[dict] = mapped_column(JSONType, default=dict)
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(2000))
    created_at = mapped_column(UTCDateTime, default=utcnow)
    started_at = mapped_column(UTCDateTime, nullable=True)
    beat_at = mapped_column(UTCDateTime, nullable=True)
    finished_at = mapped_column(UTCDateTime, nullable=True)
