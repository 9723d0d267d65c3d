"""Time triggers: materialised as due entries, fired by one periodic sweep.

A time rule ("2 hours after creation", "90 days before the expected purchase date", "every
7 days", "30 days after entering defeated") keeps one row per record in ``due_entries``,
refreshed whenever the record is saved. The sweep reads only rows that are due (an index
on due_at), so its cost follows the number of due entries, not the number of records.

Editing a rule never replays the past. A rule's ``timing_since`` is the moment its timing
was last set (created, trigger changed, enabled): occurrences at or before it are never
armed. An edit that leaves the timing alone leaves the entries alone; one that changes it
re-arms every record in a queued job, in batches, with only occurrences after the edit
(entries computed for the old timing are recomputed, never fired, if the sweep meets them
first). Catching up on missed occurrences is a separate, explicit step with a preview.
A non-repeating rule fires once per anchor: a record it already fired for stays fired.
"""
import logging
from datetime import datetime, timedelta

from huey import crontab
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..extensions import db
from ..forms.models import Record
from . import engine, expressions, flows, jobs, rules
from .durations import duration
from .models import CronMark, DueEntry, Rule, RuleRun

log = logging.getLogger(__name__)
SWEEP_BATCH = 500
CRON_LOOKBACK = timedelta(hours=24)  # how far back a missed cron minute is made up
_LOOKUP = object()


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


def _step(rule):
    return duration(rule.body["trigger"].get("repeat"))


def first_after(due, step, after):
    """The first occurrence of due, due + step, due + 2·step … later than ``after``."""
    if after is None or due > after:
        return due
    if step <= timedelta(0):
        return None
    return due + ((after - due) // step + 1) * step


def _stale(rule, entry):
    """Computed for an earlier timing of the rule (before its last timing edit)."""
    return entry.armed_for != rule.timing_since


def _entry(rule, record):
    return db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id,
                                                     DueEntry.record_id == record.id)).first()


def arm(rule, record, after, entry=_LOOKUP):
    """Compute and store the record's entry for this rule; returns its due time or None.

    Occurrences at or before ``after`` are not armed. An entry that already fired for the
    record's current anchor stays fired (a repeating one keeps its own next occurrence),
    unless it was computed for an earlier timing of the rule.
    """
    if entry is _LOOKUP:
        entry = _entry(rule, record)
    # a record of another form (the rule moved) or a deleted one has no occurrence
    due = None if record.deleted_at is not None or record.form.key != rule.form_key else due_time(rule, record)
    if due is None:
        if entry is not None:
            db.session.delete(entry)
        return None
    step = _step(rule)
    if entry is not None and entry.payload.get("fired_anchor") == due_key(rule, record) and not _stale(rule, entry):
        return entry.due_at
    if entry is not None and entry.payload.get("fired_anchor") == due_key(rule, record) and step <= timedelta(0):
        entry.armed_for = rule.timing_since  # fired once for this anchor under the old timing: stays fired
        return None
    nxt = first_after(due, step, after)
    if nxt is None:
        if entry is not None:
            db.session.delete(entry)
        return None
    if entry is None:
        entry = DueEntry(rule_id=rule.id, record_id=record.id)
        db.session.add(entry)
    entry.due_at, entry.payload, entry.armed_for = nxt, {}, rule.timing_since
    return nxt


def due_key(rule, record):
    a = _anchor(rule, record)
    return a.isoformat() if a else None


def schedule_for(record, future_only=False):
    """Refresh the due entries of every time rule of the record's form (after it was saved).

    ``future_only``: imported history arms only what is still ahead of now.
    """
    if record.id is None:
        return
    now = clock.now()
    rules = db.session.scalars(select(Rule).where(Rule.form_key == record.form.key, Rule.trigger_type == "time",
                                                  Rule.enabled.is_(True))).all()
    for rule in rules:
        after = min(rule.timing_since, now) if rule.timing_since is not None else None  # (clocks disagree)
        if future_only:
            after = now
        arm(rule, record, after)


def on_save(record, action, old, user, system=False):
    """after_save hook: a saved record's due entries follow it. Imported history (system) arms
    only what is still ahead: six months of demo data must not replay six months of reminders."""
    if action in ("create", "update"):  # a deleted record's entries wait: the sweep skips it, a restore keeps them
        schedule_for(record, future_only=system)


# --- rule edits ----------------------------------------------------------------------------

def timing(body):
    """What decides when a rule's occurrences fall: an edit changing it re-arms the rule."""
    trigger = body["trigger"]
    if trigger["type"] == "time":
        return body["form"], trigger["type"], trigger.get("from"), trigger.get("offset"), trigger.get("repeat")
    if trigger["type"] == "cron":
        return body["form"], trigger["type"], trigger.get("schedule")
    return None


@rules.saved.connect
def rule_saved(rule, before):
    """After a rule is saved (``before`` is its previous body, None when new): re-arm in the
    queue only when its timing changed or it was switched on; otherwise touch nothing."""
    body = rule.body
    was_on = before is not None and before.get("enabled", True)
    if before is not None and before["trigger"]["type"] == "time" and body["trigger"]["type"] != "time":
        # no longer a time rule: its entries must never fire it (one statement, however many)
        db.session.execute(delete(DueEntry).where(DueEntry.rule_id == rule.id))
    if timing(body) is None or not rule.enabled:
        return None
    if before is not None and was_on and timing(before) == timing(body):
        return None
    rule.timing_since = clock.now()
    jobs.supersede(rule, "rearm_rule")
    if body["trigger"]["type"] != "time":
        return None
    return jobs.start("rearm_rule", {"revision": rule.revision}, rule=rule)


def _form_of(rule):
    from ..forms import catalog
    try:
        return catalog.get_form(rule.form_key)
    except catalog.FormNotFound:
        return None


def _live_batch(form, cursor):
    return db.session.scalars(select(Record).where(Record.form_id == form.id, Record.deleted_at.is_(None),
                                                   Record.id > cursor).order_by(Record.id)
                              .limit(jobs.BATCH)).all()


def _entries_for(rule, batch):
    rows = db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id,
                                                     DueEntry.record_id.in_([r.id for r in batch]))).all()
    return {e.record_id: e for e in rows}


def _walk(job, rule, visit):
    """One batch of a job over the live records of the rule's form: visit(record, entry)."""
    form = _form_of(rule)
    if form is None:
        return True
    if job.total is None:
        job.total = db.session.scalar(select(func.count(Record.id)).where(Record.form_id == form.id,
                                                                           Record.deleted_at.is_(None)))
    batch = _live_batch(form, job.state.get("cursor", 0))
    entries = _entries_for(rule, batch) if batch else {}
    for record in batch:
        visit(record, entries.get(record.id))
    job.done += len(batch)
    if batch:
        job.state = {"cursor": batch[-1].id}
    return len(batch) < jobs.BATCH


def _current(job):
    rule = db.session.get(Rule, job.rule_id) if job.rule_id else None
    if rule is None or rule.revision != job.params.get("revision") or not rule.enabled:
        job.status = "superseded"
        return None
    return rule


@jobs.kind("rearm_rule")
def _rearm(job):
    rule = _current(job)
    if rule is None:
        return True
    result = dict(job.result or {"armed": 0, "first_due": None})

    def visit(record, entry):
        nxt = arm(rule, record, rule.timing_since, entry)
        if nxt is not None and nxt > rule.timing_since:
            result["armed"] += 1
            if result["first_due"] is None or nxt < datetime.fromisoformat(result["first_due"]):
                result["first_due"] = nxt.isoformat()

    finished = _walk(job, rule, visit)
    job.result = result
    if finished:  # entries left from the old timing (records now deleted, another form): gone
        db.session.execute(delete(DueEntry).where(DueEntry.rule_id == rule.id, or_(
            DueEntry.armed_for.is_(None), DueEntry.armed_for != rule.timing_since)))
        _log_job(rule, job, "rearm", {"type": "armed", "entries": result["armed"], "first_due": result["first_due"],
                                     "since": rule.timing_since.isoformat()})
    return finished


def missed(rule, record, since, entry):
    """The earliest occurrence in [since, rule.timing_since] that never fired, or None."""
    due = due_time(rule, record)
    if due is None or rule.timing_since is None:
        return None
    if entry is not None and entry.payload.get("fired_anchor") == due_key(rule, record) and _step(rule) <= timedelta(0):
        return None
    first = first_after(due, _step(rule), since - timedelta(microseconds=1))
    return first if first is not None and first <= rule.timing_since else None


@jobs.kind("catch_up")
def _catch_up(job):
    """Preview (params.preview) or arm, to fire at the next sweep, the occurrences a rule missed
    between a chosen moment and its last timing edit."""
    rule = _current(job)
    if rule is None:
        return True
    since = datetime.fromisoformat(job.params["since"])
    result = dict(job.result or {"count": 0, "sample": []})

    def visit(record, entry):
        when = missed(rule, record, since, entry)
        if when is None:
            return
        result["count"] += 1
        if len(result["sample"]) < 20:
            result["sample"].append({"record": record.id, "due": when.isoformat()})
        if not job.params.get("preview"):
            if entry is None:
                entry = DueEntry(rule_id=rule.id, record_id=record.id)
                db.session.add(entry)
            entry.due_at, entry.payload, entry.armed_for = when, {}, rule.timing_since

    finished = _walk(job, rule, visit)
    job.result = result
    if finished and not job.params.get("preview"):
        _log_job(rule, job, "catch up", {"type": "caught_up", "entries": result["count"], "since": since.isoformat()})
    return finished


def catch_up(rule, since, preview, user=None):
    """Queue a catch-up (or its preview) of the occurrences missed since ``since``."""
    return jobs.start("catch_up", {"revision": rule.revision, "since": since.isoformat(), "preview": bool(preview)},
                      rule=rule, user=user)


def _log_job(rule, job, what, action):
    db.session.add(RuleRun(rule_id=rule.id, rule_key=rule.key, rule_revision=rule.revision, record_id=None,
                           trigger=f"{what} (job {job.id})", matched=None, actions=[action]))


# --- firing --------------------------------------------------------------------------------

def _next_due(now):
    """Claim the next due entry of an enabled rule. On PostgreSQL rows another consumer holds
    are skipped (FOR UPDATE SKIP LOCKED), so consumers share the work instead of queueing."""
    stmt = (select(DueEntry).join(Rule, Rule.id == DueEntry.rule_id)
            .where(DueEntry.due_at <= now, Rule.enabled.is_(True), Rule.trigger_type.in_(("time", "scheduled")))
            .order_by(DueEntry.due_at, DueEntry.id).limit(1))
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=DueEntry)
    return db.session.scalars(stmt).first()


def sweep(now=None, limit=SWEEP_BATCH):
    """Fire due entries (up to limit), each in its own transaction. Returns how many fired."""
    now = now or clock.now()
    fired = 0
    for _ in range(limit):
        entry = _next_due(now)
        if entry is None:
            db.session.commit()
            break
        rule = db.session.get(Rule, entry.rule_id)
        record = db.session.get(Record, entry.record_id) if entry.record_id else None
        time_rule = rule.trigger_type == "time" and record is not None
        if time_rule and (_stale(rule, entry) or record.form.key != rule.form_key):
            arm(rule, record, rule.timing_since, entry)  # computed for an old timing: recompute, never fire
            db.session.commit()
            continue
        due = entry.due_at
        if time_rule:
            claim = update(DueEntry).where(DueEntry.id == entry.id, DueEntry.due_at == due).values(
                due_at=None, payload={"fired_anchor": due_key(rule, record)})
        else:
            claim = delete(DueEntry).where(DueEntry.id == entry.id, DueEntry.due_at == due)
        if not db.session.execute(claim).rowcount:
            db.session.rollback()
            continue
        if record is None or record.deleted_at is None:
            engine.run(rule, record, f"time (due {due.isoformat()})")
            if time_rule:
                _repeat(rule, record, due, now)
        db.session.commit()
        fired += 1
    return fired


def _repeat(rule, record, due, now):
    nxt = first_after(due, _step(rule), now)
    if nxt is None or nxt == due:
        return
    db.session.execute(update(DueEntry).where(DueEntry.rule_id == rule.id, DueEntry.record_id == record.id)
                       .values(due_at=nxt))


# --- cron ----------------------------------------------------------------------------------

def _minute(moment):
    return moment.strftime("%Y%m%d%H%M")


def _matches(schedule, local):
    return crontab(*schedule.split())(datetime(local.year, local.month, local.day, local.hour, local.minute))


def _latest_missed(rule, now_local):
    """The latest minute before this one, within the look-back, that the schedule names and no
    tick fired (a consumer was down); None when there is none."""
    last = db.session.scalar(select(func.max(CronMark.minute)).where(CronMark.rule_id == rule.id))
    start = now_local - CRON_LOOKBACK
    for bound in (rule.timing_since, rule.updated_at):
        if bound is not None:
            start = max(start, bound.astimezone(now_local.tzinfo))
            break
    moment = now_local.replace(second=0, microsecond=0) - timedelta(minutes=1)
    schedule = rule.body["trigger"]["schedule"]
    while moment > start:
        minute = _minute(moment)
        if last is not None and minute <= last:
            return None
        if _matches(schedule, moment):
            return minute
        moment -= timedelta(minutes=1)
    return None


def run_cron(now=None):
    """Fire cron rules whose schedule matches this minute (the business time zone), once across
    consumers; a matching minute no tick saw (within CRON_LOOKBACK) is made up once."""
    now = (now or clock.now()).astimezone(clock.zone())
    fired = 0
    for rule in db.session.scalars(select(Rule).where(Rule.trigger_type == "cron", Rule.enabled.is_(True))).all():
        if _matches(rule.body["trigger"]["schedule"], now):
            minute, why = _minute(now), f"cron {_minute(now)}"
        else:
            minute = _latest_missed(rule, now)
            if minute is None:
                continue
            why = f"cron {minute} (made up at {_minute(now)})"
        try:
            with db.session.begin_nested():
                db.session.add(CronMark(rule_id=rule.id, minute=minute))
        except IntegrityError:
            continue
        engine.run(rule, None, why)
        db.session.commit()
        fired += 1
    return fired


# --- retention -----------------------------------------------------------------------------

def prune(now=None, limit=5000):
    """Drop rule runs, cron marks and finished jobs older than their retention settings, a
    bounded batch per call (the tick calls it every minute). Returns what was dropped."""
    from flask import current_app
    now = now or clock.now()
    cfg = current_app.config
    dropped = {"rule_runs": 0, "cron_marks": 0, "jobs": 0}
    runs_before = now - timedelta(days=cfg["RULE_RUN_RETENTION_DAYS"])
    oldest = db.session.execute(select(RuleRun.id, RuleRun.at).order_by(RuleRun.id).limit(1)).first()
    if oldest is not None and oldest.at < runs_before:  # runs are appended in time order
        ids = db.session.scalars(select(RuleRun.id).where(RuleRun.at < runs_before).order_by(RuleRun.id)
                                 .limit(limit)).all()
        db.session.execute(delete(RuleRun).where(RuleRun.id.in_(ids)))
        dropped["rule_runs"] = len(ids)
    marks_before = _minute((now - timedelta(days=cfg["CRON_MARK_RETENTION_DAYS"])).astimezone(clock.zone()))
    ids = db.session.scalars(select(CronMark.id).where(CronMark.minute < marks_before).limit(limit)).all()
    if ids:
        db.session.execute(delete(CronMark).where(CronMark.id.in_(ids)))
        dropped["cron_marks"] = len(ids)
    dropped["jobs"] = jobs.prune(now - timedelta(days=cfg["JOB_RETENTION_DAYS"]), limit)
    db.session.commit()
    return dropped
