"""Listing records for pages and the API: access, filters, search, sort and paging."""
from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from . import access
from .extensions import db
from .forms import catalog, queries
from .forms.models import Record
from .people.models import User

MAX_PAGE_SIZE = 200


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
        stmt = queries.search(q.strip(), stmt)
    key = sort.lstrip("-") or "created_at"
    if key in queries.SORTABLE_COLUMNS:
        column = queries.SORTABLE_COLUMNS[key]
    elif key in props:
        column = queries.field_value(key, props[key], dialect)
    else:
        raise BadQuery("sort", _("Cannot sort by “%(name)s”", name=key))
    order = column.desc() if sort.startswith("-") else column.asc()
    try:
        page, per_page = max(1, int(page)), min(MAX_PAGE_SIZE, max(1, int(per_page)))
    except (TypeError, ValueError):
        raise BadQuery("page", _("Page numbers are whole numbers")) from None
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.order_by(order, Record.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items, total, page, per_page)


def _coerce(name, prop, value):
    """Query-string text to the field's JSON type."""
    t = prop.get("items", {}).get("type") if prop.get("type") == "array" else prop.get("type")
    try:
        if t == "integer":
            return int(value)
        if t == "number":
            return float(value)
        if t == "boolean":
            return {"true": True, "1": True, "false": False, "0": False}[str(value).lower()]
    except (ValueError, KeyError):
        raise BadQuery(f"filter[{name}]", _("“%(value)s” is not a valid value for this field", value=value)) from None
    return value
