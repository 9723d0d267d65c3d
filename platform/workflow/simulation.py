"""Replaying a rule over the records created in a past period, in the queue, in batches.

Each record is replayed as of its creation time, oldest first, and every effect is rolled
back. The records of the period start unassigned, so an assignment rule's counts say how it
would have shared them out ("each salesperson would have got …"). To keep the database free
for everybody else, each batch runs in its own transaction, rolled back at its end; what the
replay has decided so far that later records depend on (who got which record, who got one
last) is carried in the job and put back at the start of the next batch.
"""
from datetime import datetime

from sqlalchemy import func, select, update

from .. import clock
from ..extensions import db
from ..forms import catalog
from ..forms.models import Record
from . import engine, jobs, runstate
from .models import AssignmentMark, Job, Rule

BATCH = 200


def start(rule, since, until, user=None):
    """Queue a simulation of ``rule`` over records created in [since, until)."""
    return jobs.start("simulate", {"revision": rule.revision, "since": since.isoformat(), "until": until.isoformat()},
                      rule=rule, user=user)


def _range(form_id, job):
    since, until = (datetime.fromisoformat(job.params[k]) for k in ("since", "until"))
    return (Record.form_id == form_id, Record.deleted_at.is_(None), Record.created_at >= since,
            Record.created_at < until)


def _assigns(rule):
    return any(a["type"] == "assign" for a in rule.body["actions"])


def _restore(form_id, job, where):
    """Put back what earlier batches decided: owners of the period's records, round-robin marks."""
    state = job.state
    db.session.execute(update(Record).where(*where).values(owner_id=None).execution_options(synchronize_session=False))
    by_owner = {}
    for rid, uid in (state.get("owners") or {}).items():
        by_owner.setdefault(uid, []).append(int(rid))
    for uid, ids in by_owner.items():
        db.session.execute(update(Record).where(Record.id.in_(ids)).values(owner_id=uid)
                           .execution_options(synchronize_session=False))
    for uid, at in (state.get("marks") or {}).items():
        moment = datetime.fromisoformat(at)
        if not db.session.execute(update(AssignmentMark).where(AssignmentMark.form_id == form_id,
                                                               AssignmentMark.user_id == int(uid))
                                  .values(at=moment)).rowcount:  # a mark an earlier batch made
            db.session.add(AssignmentMark(form_id=form_id, user_id=int(uid), at=moment))
    db.session.expire_all()


@jobs.kind("simulate")
def _replay(job):
    rule = db.session.get(Rule, job.rule_id)
    if rule is None or rule.revision != job.params["revision"]:
        job.status = "superseded"
        return True
    form_id = catalog.get_form(rule.form_key).id
    where = _range(form_id, job)
    if job.total is None:
        job.total = db.session.scalar(select(func.count(Record.id)).where(*where))
    cursor = job.state.get("cursor")
    stmt = select(Record.id, Record.created_at).where(*where)
    if cursor:
        at, rid = datetime.fromisoformat(cursor[0]), cursor[1]
        stmt = stmt.where((Record.created_at > at) | ((Record.created_at == at) & (Record.id > rid)))
    batch = db.session.execute(stmt.order_by(Record.created_at, Record.id).limit(BATCH)).all()
    job_id, state = job.id, dict(job.state)
    outcome = dict(job.result or {"records": job.total, "matched": 0, "errors": 0, "actions": {}, "owners": {}})
    decided = {}
    savepoint = db.session.begin_nested()
    try:
        with runstate.dry():
            if _assigns(rule):
                _restore(form_id, job, where)
            for rid, _created in batch:
                record = db.session.get(Record, rid)
                with clock.at(record.created_at):
                    entry = engine.run(rule, record, "simulation", dry=True)
                outcome["matched"] += bool(entry.matched)
                outcome["errors"] += bool(entry.error)
                for action in entry.actions:
                    outcome["actions"][action["type"]] = outcome["actions"].get(action["type"], 0) + 1
                    if action["type"] == "assign":
                        key = action.get("owner") or "-"
                        outcome["owners"][key] = outcome["owners"].get(key, 0) + 1
                if _assigns(rule):
                    decided[str(rid)] = record.owner_id
            marks = {str(m.user_id): m.at.isoformat() for m in db.session.scalars(
                select(AssignmentMark).where(AssignmentMark.form_id == form_id))} if _assigns(rule) else {}
    finally:
        savepoint.rollback()
    job = db.session.get(Job, job_id)
    if _assigns(rule):
        state["owners"] = {**(state.get("owners") or {}), **{k: v for k, v in decided.items() if v is not None}}
        state["marks"] = marks
    if batch:
        state["cursor"] = [batch[-1][1].isoformat(), batch[-1][0]]
    job.state, job.result = state, outcome
    job.done += len(batch)
    return len(batch) < BATCH

