"""Listing records for pages and the API: access, filters, search, sort and paging."""
import math
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from . import access, inputs
from .extensions import db
from .forms import catalog, queries
from .forms.models import Record
from .people.models import User

MAX_PAGE_SIZE = 200
MAX_SEARCH_LENGTH = 200


class BadQuery(ValueError):
    """A list request named something that does not exist; ``where`` says which parameter."""

    def __init__(self, where, message):
        self.where = where
        super().__init__(message)


@dataclass
class Page:
    items: list
    total: int
    page: int
    per_page: int

    @property
    def pages(self):
        return max(1, -(-self.total // self.per_page))


def list_records(user, form, q="", filters=None, sort="-created_at", page=1, per_page=20,
                 owner=None, deleted=False):
    """One page of the form's records that user may see.

    :param filters: {field: value}; a list field matches when it contains value
    :param sort: a field or created_at/updated_at/id, "-" first for descending
    :raises BadQuery: naming the unknown field or bad value
    """
    version = catalog.current_version(form)
    props = version.schema["properties"] if version else {}
    dialect = db.engine.dialect.name
    stmt = select(Record).where(Record.form_id == form.id)
    if deleted:
        stmt = stmt.where(Record.deleted_at.is_not(None))
    stmt = access.visible_records(user, stmt, include_deleted=deleted)
    for name, value in (filters or {}).items():
        if name not in props:
            raise BadQuery(f"filter[{name}]", _("The form has no field “%(name)s”", name=name))
        stmt = stmt.where(queries.where_field(name, props[name], _coerce(name, props[name], value), dialect))
    if owner:
        uid = db.session.scalar(select(User.id).where(User.username == owner))
        stmt = stmt.where(Record.owner_id == uid)
    if q:
        if len(q) > MAX_SEARCH_LENGTH:  # SQLite refuses long LIKE patterns; nobody types more
            raise BadQuery("q", inputs.length_message("q", MAX_SEARCH_LENGTH))
        stmt = queries.search(q.strip(), stmt)
    key = sort.lstrip("-") or "created_at"
    if key in queries.SORTABLE_COLUMNS:
        column = queries.SORTABLE_COLUMNS[key]
    elif key in props:
        column = queries.field_value(key, props[key], dialect)
    else:
        raise BadQuery("sort", _("Cannot sort by “%(name)s”", name=key))
    order = column.desc() if sort.startswith("-") else column.asc()
    page, per_page = _whole("page", page, inputs.MAX_PAGE), _whole("per_page", per_page, MAX_PAGE_SIZE)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.order_by(order, Record.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items, total, page, per_page)


def _whole(name, raw, high):
    value = inputs.whole_number(raw, 1, high)
    if value is None:
        raise BadQuery(name, inputs.range_message(name, 1, high))
    return value


def _coerce(name, prop, value):
    """Query-string text to the field's JSON type; BadQuery when it cannot be one (a date filter
    that is no date would match nothing, a number past 64 bits overflows the SQL)."""
    item = prop.get("items", {}) if prop.get("type") == "array" else prop
    t, fmt, where = item.get("type"), item.get("format"), f"filter[{name}]"
    if fmt == "date" and (len(value) != 10 or _parsed(date.fromisoformat, value) is None):
        raise BadQuery(where, _("Give a date as YYYY-MM-DD"))
    if fmt == "date-time" and _parsed(datetime.fromisoformat, value) is None:
        raise BadQuery(where, _("Enter a valid date and time"))
    if t == "integer":
        out = inputs.whole_number(value, -inputs.MAX_INT, inputs.MAX_INT)
    elif t == "number":
        out = _parsed(float, value)
        out = out if out is not None and math.isfinite(out) else None
    elif t == "boolean":
        out = {"true": True, "1": True, "false": False, "0": False}.get(str(value).lower())
    else:
        return value
    if out is None:
        raise BadQuery(where, _("“%(value)s” is not a valid value for this field", value=value))
    return out


def _parsed(convert, text):
    try:
        return convert(text)
    except ValueError:
        return None
