"""SQLite for a multi-threaded app: real transactions, WAL, and a busy timeout.

pysqlite's own transaction handling starts a transaction only before INSERT/UPDATE/DELETE,
never before SAVEPOINT or SELECT: a rule's savepoint opened before any write became the
outermost one, and its RELEASE committed at once, behind the caller's back. So, as
SQLAlchemy documents for pysqlite, the driver's handling is switched off
(``isolation_level = None``) and SQLAlchemy emits BEGIN itself when a transaction starts.

Which BEGIN: a transaction that may write takes the write lock up front (BEGIN IMMEDIATE),
waiting for it under the busy timeout; a deferred transaction that reads and only then
writes fails at once ("database is locked") if another connection writes meanwhile (SQLite
cannot upgrade a stale snapshot). So everything begins IMMEDIATE (queue tasks, the CLI,
requests that change things) except the GET and HEAD requests the app serves, which begin
deferred so that readers never queue behind writers (WAL lets them read while one writes).
A GET that must write (a token's last use) does so inside ``writing()``.
"""
import contextlib
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

_writer = ContextVar("formflow_sqlite_writer", default=False)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BUSY_TIMEOUT = 30  # seconds a writer waits for the lock


@contextlib.contextmanager
def writing():
    """Within this block, transactions on SQLite begin IMMEDIATE, even in a GET request."""
    token = _writer.set(True)
    try:
        yield
    finally:
        _writer.reset(token)


_reader = ContextVar("formflow_sqlite_reader", default=False)


def _wants_write_lock():
    return _writer.get() or not _reader.get()


def _mark_request():
    from flask import g, request
    if request.method in SAFE_METHODS:
        g._formflow_sqlite_reader = _reader.set(True)


def _unmark_request(_exc=None):
    from flask import g
    token = g.pop("_formflow_sqlite_reader", None)
    if token is not None:
        _reader.reset(token)


def _is_sqlite(dbapi_connection):
    return type(dbapi_connection).__module__.startswith("sqlite3")


def init_app(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    opts = app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    opts.setdefault("connect_args", {}).setdefault("timeout", BUSY_TIMEOUT)
    app.before_request(_mark_request)
    app.teardown_request(_unmark_request)
    _install()


def _install():
    if getattr(_install, "done", False):
        return

    @event.listens_for(Engine, "connect")
    def _connect(dbapi_connection, _record):
        if _is_sqlite(dbapi_connection):
            dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins transactions
            dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(Engine, "begin")
    def _begin(conn):
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE" if _wants_write_lock() else "BEGIN")

    _install.done = True
