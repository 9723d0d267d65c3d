"""Indexed, typed paths into records' JSON, for the queries that must not read every record.

A query can only use an expression index whose expression it repeats exactly, so the index
DDL and the query expression come from one function here, ``value``: the field's JSON path is
written into the SQL as a constant (field names are checked identifiers), never a bound
parameter, which SQLite's planner could not match and PostgreSQL's generic plans would not.

``owner_index`` is the first such path: (form, owner, field) over live records, which lets
assignment count a person's open records by reading index entries of their open states only,
whatever the table's size. Indexes are built in the queue (``jobs``; on PostgreSQL
``CREATE INDEX CONCURRENTLY`` outside any transaction) and named after the field, so one index
serves every form that uses the field the same way.
"""
import re

from sqlalchemy import Index, Integer, Numeric, String, cast, func, literal_column, text
from sqlalchemy.schema import CreateIndex

from .definitions import FIELD_NAME
from .models import Record

_NAME = re.compile(FIELD_NAME.pattern + r"\Z")
_TYPES = {"integer": Integer, "number": Numeric}


def value(name, prop, dialect, table=Record):
    """The field's value as SQL, typed by its schema, with the path as a constant."""
    if not _NAME.match(name):
        raise ValueError(f"not a field name: {name!r}")
    if dialect == "postgresql":
        element = table.data.op("->>")(literal_column(f"'{name}'"))
    else:
        element = func.json_extract(table.data, literal_column(f"'$.\"{name}\"'"))
    kind = _TYPES.get(prop.get("type"))
    return cast(element, kind()) if kind is not None else cast(element, String())


def owner_index_name(name):
    return f"ix_records_owner_{name}"[:63]


def owner_index(name, prop, dialect):
    """(form, owner, field) over live records."""
    return Index(owner_index_name(name), Record.form_id, Record.owner_id, value(name, prop, dialect),
                 sqlite_where=Record.deleted_at.is_(None), postgresql_where=Record.deleted_at.is_(None))


def ensure_owner_index(engine, name, prop):
    """Create the index unless it exists (PostgreSQL: concurrently, outside any transaction), then
    let the planner learn it."""
    dialect = engine.dialect.name
    index = owner_index(name, prop, dialect)
    exists = text("SELECT 1 FROM pg_indexes WHERE indexname = :n" if dialect == "postgresql"
                  else "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :n")
    with engine.connect() as conn:
        if conn.execute(exists, {"n": index.name}).first() is not None:
            return index.name  # every assignment rule's save asks; only the first one builds
    if dialect == "postgresql":
        index.dialect_options["postgresql"]["concurrently"] = True
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(CreateIndex(index, if_not_exists=True))
    else:
        with engine.begin() as conn:
            conn.execute(CreateIndex(index, if_not_exists=True))
    with engine.begin() as conn:  # the planner learns the new index's selectivity
        conn.execute(text("ANALYZE records"))
    return index.name
