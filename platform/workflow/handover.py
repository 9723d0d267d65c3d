"""When a record changes hands, or nobody can take it.

Handover: whatever path changes a record's owner (a rule's assign action, the API, a page)
ends in ``records.update(..., owner=...)``. A listener on ``Record.owner`` notes the moment
(``assigned_at``, which time rules can count from: a reassigned record gets a fresh window)
and who had it; the after_save hook then moves that person's open tasks of the record to the
new owner (or closes them, with the reason, when the record goes back to the unassigned
pool) and tells both people. Finished tasks stay with whoever did them.

Escalation: an assignment that finds nobody, or fails, is never silent: the managers (admins
when there are none) get a notice and a task to assign the record by hand.
"""
from contextlib import contextmanager

from flask import current_app
from flask_babel import force_locale, gettext as _
from sqlalchemy import event, inspect, select

from .. import access, clock
from ..extensions import db
from ..forms import records
from ..forms.models import Record
from ..i18n import LOCALES, doc_locale, pick
from ..people.models import User
from .audience import managers_of
from .models import Notification, Task

_HANDOVER = "formflow_handover"  # InstanceState.info key: (owner id before, owner id after)


def init_app(app):
    if not event.contains(Record.owner, "set", _owner_set):
        event.listen(Record.owner, "set", _owner_set, active_history=True)
    if on_save not in records.after_save:
        records.after_save.append(on_save)


def _owner_set(record, value, oldvalue, initiator):
    state = inspect(record)
    if state.key is None:  # a record being created: its creation is its assignment (assigned_at stays empty)
        return
    before = oldvalue.id if isinstance(oldvalue, User) else record.owner_id
    after = value.id if value is not None else None
    if before == after:
        return
    record.assigned_at = clock.now()
    pending = state.info.get(_HANDOVER)
    # several changes before the hook runs (A → B → C) are one handover from A; a stale note
    # (its change was rolled back with a savepoint) is replaced
    start = pending[0] if pending and pending[1] == before else before
    state.info[_HANDOVER] = (start, after)


def on_save(record, action, old, user, system=False):
    """after_save hook: hand the record's open work over if its owner changed; a deleted record's
    open tasks close; once a record has an owner, the "assign by hand" tasks about it close."""
    if action == "delete":
        _close(record, _("The record was deleted"))
        return
    pending = inspect(record).info.pop(_HANDOVER, None)
    if pending is not None and record.owner_id is not None:
        _close(record, _("Assigned to %(user)s", user=record.owner.display_name), kind=ASSIGN_BY_HAND)
    if action != "update" or pending is None or pending[0] == record.owner_id or pending[0] is None:
        return  # no change, changed back, or a pool record given out (nobody had work on it)
    previous = db.session.get(User, pending[0])
    if previous is not None:
        hand_over(record, previous, record.owner, user)


ASSIGN_BY_HAND = "assign_by_hand"  # Task.kind of an escalation's task


def _close(record, reason, kind=None):
    """Close the record's open tasks (only those of ``kind``, when given), saying why."""
    stmt = select(Task).where(Task.record_id == record.id, Task.status == "open")
    if kind is not None:
        stmt = stmt.where(Task.kind == kind)
    for task in db.session.scalars(stmt):
        task.status, task.done_at, task.closed_reason = "closed", clock.now(), reason[:200]


def hand_over(record, previous, new, by=None):
    """Move previous's open tasks of the record to new (close them when new is None) and tell
    both, except whoever made the change."""
    tasks = db.session.scalars(select(Task).where(Task.record_id == record.id, Task.assignee_id == previous.id,
                                                  Task.status == "open").order_by(Task.id)).all()
    for task in tasks:
        if new is not None:
            task.assignee = new
        else:
            with language(previous):
                reason = _("The record went back to the unassigned pool")
            task.status, task.done_at, task.closed_reason = "closed", clock.now(), reason[:200]
    by_id = by.id if by is not None else None
    if previous.active and previous.id != by_id:
        with language(previous):
            name = label(record)
            if new is not None:
                title = _("%(record)s has been handed over to %(user)s", record=name, user=new.display_name)
                body = _("Open tasks handed over with it: %(n)s", n=len(tasks))
            else:
                title = _("%(record)s is no longer yours: it went back to the unassigned pool", record=name)
                body = _("Open tasks closed: %(n)s", n=len(tasks))
        still_visible = access.get_record(previous, record.id) is not None  # else the notice links nowhere
        notify(previous, title, body if tasks else "", record.id if still_visible else None)
    if new is not None and new.id != by_id:
        with language(new):
            title = _("You have received %(record)s, handed over from %(user)s", record=label(record),
                      user=previous.display_name)
            body = _("Open tasks that came with it: %(n)s", n=len(tasks))
        notify(new, title, body if tasks else "", record.id)
    return tasks


def escalate(record, reason, user=None, rule_key=None):
    """Nobody could be assigned: tell the managers of the owner (or of whoever made the change;
    admins when there are none) and give each a task to assign the record by hand.

    Returns the usernames told. An escalation task still open is not added twice.
    """
    people = managers_of(record.owner or user)
    for person in people:
        with language(person):
            title = _("%(record)s could not be assigned", record=label(record))
            todo = _("Assign %(record)s by hand", record=label(record))
        notify(person, title, reason, record.id, rule_key)
        waiting = db.session.scalar(select(Task.id).where(Task.record_id == record.id, Task.assignee_id == person.id,
                                                          Task.status == "open", Task.kind == ASSIGN_BY_HAND))
        if waiting is None:
            db.session.add(Task(record_id=record.id, assignee_id=person.id, title=todo[:200], body=reason[:2000],
                                priority="high", due_at=clock.now(), rule_key=rule_key, kind=ASSIGN_BY_HAND))
    return [p.username for p in people]


def notify(user, title, body, record_id, rule_key=None):
    db.session.add(Notification(user_id=user.id, record_id=record_id, title=title[:200], body=(body or "")[:2000],
                                rule_key=rule_key))


def label(record):
    """“Form title” “record title” (a form's name and a customer's, say), in the current language."""
    return _("%(form)s “%(title)s”", form=pick(record.form.title, doc_locale()), title=records.title_of(record))


@contextmanager
def language(user):
    """Messages stored for a user are written in that user's language, not the requester's."""
    code = (user.locale or "").replace("-", "_")
    with force_locale(code if code in LOCALES else current_app.config["DEFAULT_LOCALE"]):
        yield
