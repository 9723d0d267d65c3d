"""Work that grows with the data runs in the queue, in batches, with progress.

Re-arming a time rule over every record, a rule acting on every record of a query, a
simulation over months of records, a report sent to each of its recipients: none of these
may run inside somebody's request or hold the database for long. Each is a ``Job`` row (what
to do, how far it got, what it found) and a handler registered here for its kind. The queue
runs a job after the transaction that created it commits; the handler does one batch per
call and the runner commits after each, so progress is visible and a crash loses at most one
batch (the handler keeps its cursor in ``job.state`` and resumes from it). The once-a-minute
tick re-enqueues jobs whose enqueue was lost and jobs whose worker died.

A handler is ``fn(job) -> bool``: do one batch, update ``job.done`` / ``job.total`` /
``job.result`` / ``job.state``, return True when nothing is left.
"""
import logging
from datetime import timedelta

from sqlalchemy import or_, select, update

from .. import clock
from ..extensions import db
from . import queue
from .models import Job

log = logging.getLogger(__name__)

KINDS = {}
STALE = timedelta(minutes=5)  # a running job with no progress for this long is taken over
BATCH = 500                   # records per batch, for handlers that walk records


def kind(name):
    """Register the handler of a job kind."""
    def deco(fn):
        KINDS[name] = fn
        return fn
    return deco


def start(kind_name, params=None, rule=None, user=None):
    """Add a job; the queue runs it once the caller's transaction commits."""
    if kind_name not in KINDS:
        raise KeyError(kind_name)
    job = Job(kind=kind_name, params=dict(params or {}), state={}, result={}, done=0,
              rule_id=rule.id if rule is not None else None, user_id=user.id if user is not None else None,
              created_at=clock.now())
    db.session.add(job)
    db.session.flush()
    queue.after_commit(job, run_later)
    return job


@queue.task()
def run_later(job_id):
    return run(job_id)


def _claim(job_id):
    now = clock.now()
    claimed = db.session.execute(update(Job).where(
        Job.id == job_id, or_(Job.status == "pending", (Job.status == "running") & (Job.beat_at < now - STALE)))
        .values(status="running", started_at=now, beat_at=now)).rowcount
    db.session.commit()
    return bool(claimed)


def run(job_id, max_batches=None):
    """Run a job to its end (or for max_batches batches), committing after each batch.
    Returns its status; None when another worker holds it."""
    if not _claim(job_id):
        return None
    batches = 0
    while True:
        job = db.session.get(Job, job_id)
        if job.status != "running":  # superseded by a newer job meanwhile
            db.session.commit()
            return job.status
        handler = KINDS.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            finished = handler(job)
        except Exception as err:  # the job fails alone; its error stays for the admin to read
            db.session.rollback()
            log.exception("job %s (%s) failed", job_id, getattr(job, "kind", "?"))
            job = db.session.get(Job, job_id)
            job.status, job.error, job.finished_at = "failed", f"{type(err).__name__}: {err}"[:2000], clock.now()
            db.session.commit()
            return job.status
        job.beat_at = clock.now()
        if finished:
            if job.status == "running":
                job.status = "done"
            job.finished_at = clock.now()
        batches += 1
        if not finished and max_batches is not None and batches >= max_batches:
            job.status = "pending"  # handed back: the next run (or the sweep) goes on from its cursor
        db.session.commit()
        if job.status != "running":
            return job.status


def run_pending(limit=100):
    """Run every job still waiting, here and now (what the consumer does; also for the CLI and
    tests). Returns how many ran."""
    ran = 0
    for job_id in _waiting(limit):
        if run(job_id) is not None:
            ran += 1
    return ran


def _waiting(limit, older_than=None):
    now = clock.now()
    stmt = select(Job.id).where(or_(Job.status == "pending",
                                    (Job.status == "running") & (Job.beat_at < now - STALE)))
    if older_than is not None:
        stmt = stmt.where(Job.created_at < now - older_than)
    return db.session.scalars(stmt.order_by(Job.id).limit(limit)).all()


def sweep():
    """Re-enqueue jobs whose enqueue was lost (pending over a minute) or whose worker died."""
    ids = _waiting(50, older_than=timedelta(minutes=1))
    for job_id in ids:
        queue.enqueue(run_later, job_id)
    return len(ids)


def supersede(rule, kind_name):
    """Older unfinished jobs of this kind for this rule are replaced by a newer one."""
    db.session.execute(update(Job).where(Job.rule_id == rule.id, Job.kind == kind_name,
                                         Job.status.in_(("pending", "running")))
                       .values(status="superseded", finished_at=clock.now()))


def as_json(job):
    """What pages and the API show of a job."""
    return {"id": job.id, "kind": job.kind, "status": job.status, "done": job.done, "total": job.total,
            "result": job.result or {}, "error": job.error,
            "created_at": job.created_at.isoformat() if job.created_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


def for_rule(rule, limit=10):
    return db.session.scalars(select(Job).where(Job.rule_id == rule.id).order_by(Job.id.desc()).limit(limit)).all()


def prune(before, limit=5000):
    """Drop finished jobs created before ``before`` (retention)."""
    ids = db.session.scalars(select(Job.id).where(Job.status.in_(("done", "failed", "superseded")),
                                                  Job.created_at < before).order_by(Job.id).limit(limit)).all()
    if ids:
        db.session.execute(Job.__table__.delete().where(Job.id.in_(ids)))
    return len(ids)
