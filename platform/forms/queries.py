"""Filtering, searching and sorting records by their fields, on SQLite and PostgreSQL.

Field names are checked against the form's schema before they get here; values are
always bound parameters.
"""
from sqlalchemy import exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from .models import Record

SORTABLE_COLUMNS = {"created_at": Record.created_at, "updated_at": Record.updated_at, "id": Record.id}


def field_value(name, prop, dialect, table=Record):
    """A SQL expression for one field of a record's data (of ``table``, an alias), typed by its schema."""
    element = table.data[name]
    t = prop.get("type")
    if t == "integer":
        return element.as_integer()
    if t == "number":
        return element.as_float()
    if t == "boolean":
        return element.as_boolean()
    return element.as_string()


def where_field(name, prop, value, dialect, table=Record):
    """A condition that field `name` equals value (for a list field: contains it)."""
    if prop.get("type") == "array":
        if dialect == "postgresql":
            return type_coerce(table.data, JSONB)[name].contains([value])
        each = func.json_each(table.data, literal("$." + name)).table_valued("value")
        return exists(select(1).select_from(each).where(each.c.value == value))
    return field_value(name, prop, dialect, table) == value


def search(text, stmt):
    """Restrict to records whose search fields contain text (case-insensitive)."""
    like = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return stmt.where(Record.search_text.like(like, escape="\\"))
