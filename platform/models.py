"""Every table of the engine, imported in one place for the app and for migrations."""
from .blueprints.models import Blueprint  # noqa: F401
from .forms.models import Form, FormVersion, IdempotencyKey, Record, RecordChange  # noqa: F401
from .reports.models import Report, ReportRevision  # noqa: F401
from .people.models import ApiToken, LoginAttempt, Team, User  # noqa: F401
from .workflow.models import (  # noqa: F401
    AssignmentLock, AssignmentMark, CronMark, DueEntry, Heartbeat, Notification, OutboxEntry, Rule, RuleRevision,
    RuleRun, StatusChange, Task)
