"""Time triggers: materialised as due entries, fired by one periodic sweep.

A time rule ("2 hours after creation", "90 days before the expected purchase date", "every
7 days", "30 days after entering defeated") keeps one row per record in ``due_entries``,
refreshed whenever the record is saved. The sweep reads only rows that are due (an index
on due_at), so its cost follows the number of due entries, not the number of records.
"""
import logging
from datetime import datetime, timedelta

from huey import crontab
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..extensions import db
from ..forms.models import Record
from . import engine, expressions, flows
from .actions import duration
from .models import CronMark, DueEntry, Rule

log = logging.getLogger(__name__)
SWEEP_BATCH = 500


def _anchor(rule, record):
    source = rule.body["trigger"]["from"]
    if isinstance(source, dict):
        return flows.entered_at(record, source["status_entered"])
    if source == "created_at":
        return record.created_at
    if source == "updated_at":
        return record.updated_at
    if source == "assigned_at":  # a reassigned record counts afresh from its handover
        return record.assigned_at or record.created_at
    try:
        return expressions._as_datetime(record.data.get(source))
    except ValueError:
        return None


def due_time(rule, record):
    anchor = _anchor(rule, record)
    if anchor is None:
        return None
    return anchor + duration(rule.body["trigger"]["offset"])


def schedule_for(record, future_only=False):
    """Refresh the due entries of every time rule of the record's form."""
    if record.id is None:
        return
    now = clock.now()
    rules = db.session.scalars(select(Rule).where(Rule.form_key == record.form.key, Rule.trigger_type == "time",
                                                  Rule.enabled.is_(True))).all()
    for rule in rules:
        due = None if record.deleted_at is not None else due_time(rule, record)
        if future_only and due is not None and due <= now:
            step = duration(rule.body["trigger"].get("repeat"))
            if step > timedelta(0):  # a repeating rule continues from its next occurrence
                while due <= now:
                    due += step
            else:
                due = None
        _put(rule, record, due)


def _put(rule, record, due):
    """Arm, re-arm or drop the entry; an entry that already fired for this anchor stays fired."""
    entry = db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id,
                                                      DueEntry.record_id == record.id)).first()
    if due is None:
        if entry is not None:
            db.session.delete(entry)
        return
    if entry is None:
        db.session.add(DueEntry(rule_id=rule.id, record_id=record.id, due_at=due))
    elif entry.payload.get("fired_anchor") != _anchor_key(rule, record):
        entry.due_at, entry.payload = due, {}


def _anchor_key(rule, record):
    a = _anchor(rule, record)
    return a.isoformat() if a else None


def reschedule_rule(rule):
    """After a time rule is saved: rebuild its entries (in batches, for every live record)."""
    db.session.execute(delete(DueEntry).where(DueEntry.rule_id == rule.id))
    if rule.trigger_type != "time" or not rule.enabled:
        return
    from ..forms import catalog
    try:
        form = catalog.get_form(rule.form_key)
    except catalog.FormNotFound:
        return
    last = 0
    while True:
        batch = db.session.scalars(select(Record).where(Record.form_id == form.id, Record.deleted_at.is_(None),
                                                        Record.id > last).order_by(Record.id).limit(1000)).all()
        if not batch:
            break
        for record in batch:
            due = due_time(rule, record)
            if due is not None:
                db.session.add(DueEntry(rule_id=rule.id, record_id=record.id, due_at=due))
        last = batch[-1].id
        db.session.flush()


def sweep(now=None, limit=SWEEP_BATCH):
    """Fire every due entry (up to limit), each in its own transaction. Returns how many fired.

    An entry is claimed by clearing its due time in a conditional UPDATE: of several consumers
    only one changes the row, and only that one fires it.
    """
    now = now or clock.now()
    due_rows = db.session.execute(select(DueEntry.id, DueEntry.due_at).where(DueEntry.due_at <= now)
                                  .order_by(DueEntry.due_at, DueEntry.id).limit(limit)).all()
    fired = 0
    for entry_id, due in due_rows:
        entry = db.session.get(DueEntry, entry_id)
        if entry is None:
            continue
        rule = db.session.get(Rule, entry.rule_id)
        record = db.session.get(Record, entry.record_id) if entry.record_id else None
        time_rule = rule is not None and rule.trigger_type == "time" and record is not None
        claim = update(DueEntry).where(DueEntry.id == entry_id, DueEntry.due_at == due)
        if time_rule:
            claim = claim.values(due_at=None, payload={"fired_anchor": _anchor_key(rule, record)})
        else:
            claim = delete(DueEntry).where(DueEntry.id == entry_id, DueEntry.due_at == due)
        if not db.session.execute(claim).rowcount:
            db.session.rollback()
            continue
        if rule is not None and rule.enabled and (record is None or record.deleted_at is None):
            engine.run(rule, record, f"time (due {due.isoformat()})")
            if time_rule:
                _repeat(rule, record, due, now)
        db.session.commit()
        fired += 1
    return fired


def _repeat(rule, record, due, now):
    step = duration(rule.body["trigger"].get("repeat"))
    if step <= timedelta(0):
        return
    nxt = due + step
    while nxt <= now:
        nxt += step
    db.session.execute(update(DueEntry).where(DueEntry.rule_id == rule.id, DueEntry.record_id == record.id)
                       .values(due_at=nxt))


def run_cron(now=None):
    """Fire cron rules whose schedule matches this minute (Asia/Shanghai), once across consumers."""
    now = (now or clock.now()).astimezone(clock.zone())
    minute = now.strftime("%Y%m%d%H%M")
    fired = 0
    for rule in db.session.scalars(select(Rule).where(Rule.trigger_type == "cron", Rule.enabled.is_(True))).all():
        if not crontab(*rule.body["trigger"]["schedule"].split())(datetime(now.year, now.month, now.day,
                                                                           now.hour, now.minute)):
            continue
        try:
            with db.session.begin_nested():
                db.session.add(CronMark(rule_id=rule.id, minute=minute))
        except IntegrityError:
            continue
        engine.run(rule, None, f"cron {minute}")
        db.session.commit()
        fired += 1
    return fired
