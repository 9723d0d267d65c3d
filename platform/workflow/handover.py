"""When nobody can take a record.

Escalation: an assignment that finds nobody, or fails, is never silent: the managers (admins
when there are none) get a notice and a task to assign the record by hand.
"""
from contextlib import contextmanager

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import select

from .. import clock
from ..extensions import db
from ..forms import records
from ..i18n import LOCALES, doc_locale, pick
from .models import Notification, Task


def escalate(record, reason, user=None, rule_key=None):
    """Nobody could be assigned: tell the managers of the owner (or of whoever made the change;
    admins when there are none) and give each a task to assign the record by hand.

    Returns the usernames told. An escalation task still open is not added twice.
    """
    from .actions import managers_of
    people = managers_of(record.owner or user)
    for person in people:
        with language(person):
            title = _("%(record)s could not be assigned", record=label(record))
            todo = _("Assign %(record)s by hand", record=label(record))
        notify(person, title, reason, record.id, rule_key)
        waiting = db.session.scalar(select(Task.id).where(Task.record_id == record.id, Task.assignee_id == person.id,
                                                          Task.status == "open", Task.title == todo[:200]))
        if waiting is None:
            db.session.add(Task(record_id=record.id, assignee_id=person.id, title=todo[:200], body=reason[:2000],
                                priority="high", due_at=clock.now(), rule_key=rule_key))
    return [p.username for p in people]


def notify(user, title, body, record_id, rule_key=None):
    db.session.add(Notification(user_id=user.id, record_id=record_id, title=title[:200], body=(body or "")[:2000],
                                rule_key=rule_key))


def label(record):
    """线索登记“王先生”: the form's name and the record's title, in the current language."""
    return _("%(form)s “%(title)s”", form=pick(record.form.title, doc_locale()), title=records.title_of(record))


@contextmanager
def language(user):
    """Messages stored for a user are written in that user's language, not the requester's."""
    code = (user.locale or "").replace("-", "_")
    with force_locale(code if code in LOCALES else current_app.config["DEFAULT_LOCALE"]):
        yield
