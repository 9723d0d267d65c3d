"""Background work on huey: SQLite by default, Redis when FORMFLOW_QUEUE_URL is redis://.

Tasks are declared with ``@task`` at import time and bound to the app's huey instance
in ``init_app``; each runs inside an app context. ``python app.py`` runs a consumer in
its own process (threads); larger installs run ``flask --app app queue run`` instead.
"""
import atexit
import logging
import os
import socket
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session
from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer

from .. import sqlite
from ..extensions import db
from ..types import utcnow

log = logging.getLogger(__name__)
_declared = []  # (function, periodic crontab or None, huey options)

def task(**options):
    """Declare a background task; call it later with ``enqueue(fn, *args)``."""
    def deco(fn):
        _declared.append((fn, None, options))
        return fn
    return deco

def periodic(schedule, **options):
    """Declare a task the consumer's scheduler runs on a crontab schedule."""
    def deco(fn):
        _declared.append((fn, schedule, options))
        return fn
    return deco

def build_huey(url, immediate=False, name="formflow"):
    """A huey instance for a queue URL: sqlite:///path or redis://host:port/db."""
    parsed = urlparse(url)
    if parsed.scheme == "redis" or parsed.scheme == "rediss":
        try:
            import redis  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise RuntimeError('Redis queue configured: run "pip install redis"') from exc
        return RedisHuey(name, url=url, immediate=immediate)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///"):]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SqliteHuey(name, filename=path, immediate=immediate)
    raise RuntimeError(f"FORMFLOW_QUEUE_URL must start with sqlite:/// or redis://, not {url!r}")

class Queue:
    """The app's huey instance and its bound tasks."""

    def __init__(self, app):
        self.app = app
        self.huey = build_huey(app.config["QUEUE_URL"], app.config["QUEUE_IMMEDIATE"], app.config["QUEUE_NAME"])
        self.tasks = {}
        self.consumer = None
        for fn, schedule, options in _declared:
            self.tasks[fn] = self._bind(fn, schedule, options)

    def _bind(self, fn, schedule, options):
        app = self.app
        name = f"{fn.__module__}.{fn.__qualname__}"

        def run(*args, **kwargs):
            with app.app_context(), sqlite.writing():
                try:
                    return fn(*args, **kwargs)
                finally:
                    db.session.remove()
        run.__name__ = fn.__name__
        if schedule is not None:
            return self.huey.periodic_task(schedule, name=name, **options)(run)
        return self.huey.task(name=name, **options)(run)

    def start_consumer(self, workers=None):
        """Run a consumer inside this process, in threads; stopped at exit."""
        if self.consumer is not None:
            return self.consumer
        self.consumer = _InProcessConsumer(self.huey, workers=workers or self.app.config["QUEUE_WORKERS"],
                                           worker_type="thread", periodic=True, check_worker_health=False)
        self.consumer.start()
        atexit.register(self.stop_consumer)
        return self.consumer

    def stop_consumer(self):
        if self.consumer is not None:
            self.consumer.stop(graceful=True)
            self.consumer = None

class _InProcessConsumer(Consumer):
    """A consumer that leaves the host process's signal handlers alone."""

    def _set_signal_handlers(self):
        pass

def init_app(app):
    app.extensions["formflow.queue"] = Queue(app)

def queue():
    return current_app.extensions["formflow.queue"]

def enqueue(fn, *args, **kwargs):
    """Put a declared task on the queue; returns huey's result handle."""
    return queue().tasks[fn](*args, **kwargs)


def after_commit(row, fn):
    """Enqueue ``fn(row.id)`` once the surrounding transaction has really committed (so the
    task finds the row); dropped if that transaction, or the savepoint that added the row,
    rolls back. A periodic sweep catches what a crash between commit and enqueue lost."""
    db.session.info.setdefault(_PENDING, []).append((row, fn))


_PENDING = "formflow_after_commit"


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session):
    # SQLAlchemy also calls this when a savepoint is released: wait for the real commit.
    if session.get_nested_transaction() is not None:
        return
    pending = session.info.pop(_PENDING, None)
    for row, fn in pending or ():
        state = inspect(row)
        if not state.identity:
            continue
        try:
            enqueue(fn, state.identity[0])
        except Exception:  # the periodic sweep picks it up
            log.exception("could not enqueue %s for row %s", fn.__name__, state.identity[0])


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session):
    # A rolled-back savepoint drops only its own rows; a real rollback drops them all.
    if session.get_nested_transaction() is not None:
        pending = session.info.get(_PENDING)
        if pending:
            session.info[_PENDING] = [(row, fn) for row, fn in pending if not inspect(row).transient]
        return
    session.info.pop(_PENDING, None)

@task()
def beat(note=""):
    """Record that a consumer is alive (and, with a note, that a given job got through)."""
    from .models import Heartbeat
    name = f"{socket.gethostname()}:{os.getpid()}"
    row = db.session.query(Heartbeat).filter_by(consumer=name).first()
    if row is None:
        row = Heartbeat(consumer=name)
        db.session.add(row)
    row.at = utcnow()
    row.note = note[:200]
    db.session.commit()
    return note

@periodic(crontab(minute="*"))
def beat_every_minute():
    beat("periodic")
