"""Report definitions to SQL: the one place where report SQL is built.

Everything goes through SQLAlchemy Core: field names are checked against the form's schema
and become JSON-path expressions, operators, aggregates and grains come from fixed tables,
and every value is a bound parameter. No part of a definition reaches SQL as text.
Derived measures (share, ratio, conversion) are computed from the aggregated rows in Python,
exactly, after the query.
"""
import functools
import json
import re
from dataclasses import dataclass, field as dc_field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from jsonschema import Draft202012Validator
from sqlalchemy import Float, Integer, String, and_, case, cast, distinct, exists, func, literal, or_, \
    select, true, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import aliased

from .. import access, clock
from ..extensions import db
from ..forms import catalog
from ..forms.definitions import DefinitionError, enum_of
from ..forms.models import Record
from ..forms.pointers import problems
from ..forms.queries import field_value, where_field
from ..people.models import Team, User
from ..workflow.models import StatusChange

META = Draft202012Validator(json.loads(resources.files("formflow.reports").joinpath("report.schema.json")
                                       .read_text("utf-8")))
BUILTINS = {"created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "owner": {"type": "string", "x-user": True}, "team": {"type": "string"}}
GRAINS = ("day", "week", "month", "quarter", "year")
RELATIVE = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_quarter",
            "this_year", "last_7_days", "last_30_days", "last_90_days", "last_365_days")
AGGREGATES = {"sum": func.sum, "avg": func.avg, "min": func.min, "max": func.max}


class ReportInvalid(DefinitionError):
    """A report definition was refused; ``errors`` maps JSON pointers to messages."""


@dataclass
class Column:
    key: str
    kind: str  # "dimension" or "measure"
    label: str = ""
    field: str = ""
    grain: str = ""
    format: str = "number"
    labels: dict = dc_field(default_factory=dict)


@dataclass
class Result:
    columns: list
    rows: list

    def to_json(self):
        return {"columns": [c.__dict__ for c in self.columns], "rows": self.rows}


class _Fields:
    """Resolves field paths ("status", "owner", "ref_field.field") to SQL expressions."""

    def __init__(self, form, dialect):
        self.form, self.dialect = form, dialect
        self.version = catalog.current_version(form)
        self.props = {**BUILTINS, **self.version.schema["properties"]}
        self.joins = {}      # reference field -> (alias, target version)
        self.owner_alias = None
        self.team_alias = None
        self.each = {}       # multi-select dimension -> table-valued alias

    def prop(self, path):
        if "." in path:
            ref, name = path.split(".", 1)
            target = self._target(ref)
            return target.schema["properties"].get(name) if target else None
        return self.props.get(path)

    def _target(self, ref):
        prop = self.props.get(ref)
        if not prop or not prop.get("x-reference"):
            return None
        try:
            return catalog.current_version(catalog.get_form(prop["x-reference"]))
        except catalog.FormNotFound:
            return None

    def table_for(self, path):
        if "." not in path:
            return Record, path
        ref, name = path.split(".", 1)
        if ref not in self.joins:
            self.joins[ref] = aliased(Record, name=f"j_{ref}")
        return self.joins[ref], name

    def value(self, path):
        """The field's value, typed by its schema."""
        if path in ("created_at", "updated_at"):
            return getattr(Record, path)
        if path == "owner":
            if self.owner_alias is None:
                self.owner_alias = aliased(User, name="owner_user")
            return self.owner_alias.username
        if path == "team":
            if self.owner_alias is None:
                self.owner_alias = aliased(User, name="owner_user")
            if self.team_alias is None:
                self.team_alias = aliased(Team, name="owner_team")
            return self.team_alias.key
        table, name = self.table_for(path)
        return field_value(name, self.prop(path) or {}, self.dialect, table)

    def is_list(self, path):
        return (self.prop(path) or {}).get("type") == "array"

    def is_datetime(self, path):
        return (self.prop(path) or {}).get("format") == "date-time"

    def is_date(self, path):
        return (self.prop(path) or {}).get("format") == "date"

    def list_element(self, path):
        """One row per chosen value of a multi-select field (outer-joined: none gives NULL)."""
        if path not in self.each:
            table, name = self.table_for(path)
            if self.dialect == "postgresql":
                fn = func.jsonb_array_elements_text(type_coerce(table.data, JSONB)[name])
                self.each[path] = fn.table_valued("value", name=f"each_{name}").lateral()
            else:
                fn = func.json_each(table.data, literal("$." + name))
                self.each[path] = fn.table_valued("value", name=f"each_{name}")
        return self.each[path].c.value

    def apply_joins(self, stmt, user):
        # a referenced record joins only when the viewer may see it: otherwise its fields are
        # NULL, and a filter on them matches nothing, whatever the hidden record holds
        for ref, alias in self.joins.items():
            stmt = stmt.outerjoin(alias, and_(alias.id == Record.data[ref].as_integer(), alias.deleted_at.is_(None),
                                              access.may_see(user, alias)))
        if self.owner_alias is not None:
            stmt = stmt.outerjoin(self.owner_alias, self.owner_alias.id == Record.owner_id)
        if self.team_alias is not None:
            stmt = stmt.outerjoin(self.team_alias, self.team_alias.id == self.owner_alias.team_id)
        for alias in self.each.values():
            stmt = stmt.outerjoin(alias, true())
        return stmt


# --- grains and dates --------------------------------------------------------------------------

# The business time zone is the TIMEZONE setting (clock.zone()). PostgreSQL converts with its
# own zone database, the zone's name a bound value. SQLite has no time zones: an instant in the
# span where the zone keeps one UTC offset up to FAR (Asia/Shanghai: since its last summer time
# in 1991) is shifted by SQLite's own date modifiers, fast; any other instant (a zone with
# summer time, dates before the zone's last change) goes through Python's zoneinfo in a
# deterministic function registered on the connection. Exact for every zone and every date,
# and the common case runs no Python per row.
FAR = datetime(2200, 1, 1, tzinfo=timezone.utc)
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
SQLITE_TEXT = "%Y-%m-%d %H:%M:%S"


@functools.lru_cache(maxsize=16)
def _steady(name):
    """(since, offset): from the UTC instant ``since`` until FAR the zone keeps one offset."""
    zone = ZoneInfo(name)
    offset = FAR.astimezone(zone).utcoffset()
    day, at = timedelta(days=1), FAR
    while at > EARLIEST and (at - day).astimezone(zone).utcoffset() == offset:
        at -= day
    if at > EARLIEST:  # the change lies in the day before ``at``: find its second
        lo, hi = at - day, at
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            lo, hi = (lo, mid) if mid.astimezone(zone).utcoffset() == offset else (mid, hi)
        at = hi.replace(microsecond=0)  # changes fall on whole seconds: this is the one
    return at, offset


def _to_local(text, name):
    """SQLite's UTC text to wall time in zone ``name`` (the Python side of _local)."""
    if text is None:
        return None
    moment = datetime.strptime(text[:19], SQLITE_TEXT).replace(tzinfo=timezone.utc)
    return moment.astimezone(ZoneInfo(name)).strftime(SQLITE_TEXT)


def _to_utc(text, name):
    """Wall time (or a date: its midnight) in zone ``name`` to SQLite's UTC text."""
    if text is None:
        return None
    wall = datetime.strptime(text[:19], SQLITE_TEXT) if len(text) > 10 else datetime.strptime(text[:10], "%Y-%m-%d")
    return wall.replace(tzinfo=ZoneInfo(name)).astimezone(timezone.utc).strftime(SQLITE_TEXT)


def sqlite_functions(connection):
    """Register the zone conversions report SQL calls on SQLite (a DBAPI connection)."""
    connection.create_function("ff_to_local", 2, _to_local, deterministic=True)
    connection.create_function("ff_to_utc", 2, _to_utc, deterministic=True)


def _prepare(dialect):
    if dialect == "sqlite":
        sqlite_functions(db.session.connection().connection.dbapi_connection)


def _modifier(offset):
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes:+d} minutes"


def _local(expr, dialect):
    """An instant as wall time in the business zone."""
    name = clock.zone().key
    if dialect == "postgresql":
        if isinstance(expr.type, String):  # a date-time field: ISO text with its offset
            expr = cast(expr, db.DateTime(timezone=True))
        return func.timezone(name, expr)
    since, offset = _steady(name)
    # a field's ISO text carries its offset: normalise it; the UTC columns compare as they are
    if isinstance(expr.type, String):
        utc, bounds = func.datetime(expr), (since.strftime(SQLITE_TEXT), FAR.strftime(SQLITE_TEXT))
    else:
        utc, bounds = expr, (since, FAR)
    steady = and_(utc >= bounds[0], utc < bounds[1])
    return case((steady, func.datetime(expr, _modifier(offset))), else_=func.ff_to_local(utc, name))


def _day_start(value, dialect):
    """A date (YYYY-MM-DD) as the UTC instant its day starts in the business zone."""
    name = clock.zone().key
    if dialect == "postgresql":
        return func.timezone(name, cast(value, db.DateTime()))
    since, offset = _steady(name)
    wall = func.datetime(value)
    steady = and_(wall >= (since + offset).strftime(SQLITE_TEXT), wall < (FAR + offset).strftime(SQLITE_TEXT))
    return case((steady, func.datetime(value, _modifier(-offset))), else_=func.ff_to_utc(wall, name))


def grain_of(expr, grain, dialect, is_datetime):
    """A text label for the period: day 2026-11-26, week (its Monday) 2026-11-23, month 2026-11,
    quarter 2026-Q4, year 2026. Date-times are taken in the business time zone."""
    if dialect == "postgresql":
        ts = _local(expr, dialect) if is_datetime else cast(expr, db.Date)
        fmt = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
        if grain == "week":
            return func.to_char(func.date_trunc("week", ts), "YYYY-MM-DD")
        return func.to_char(ts, fmt[grain])
    ts = _local(expr, dialect) if is_datetime else expr
    if grain == "week":
        return func.date(ts, "weekday 0", "-6 days")
    if grain == "quarter":
        return func.strftime("%Y", ts) + "-Q" + cast((cast(func.strftime("%m", ts), Integer) + 2) // 3, String)
    return func.strftime({"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[grain], ts)


def relative_range(name, now=None):
    """[start, end) of a relative period, as aware datetimes in the business time zone."""
    zone = clock.zone()
    now = (now or clock.now()).astimezone(zone)
    today = datetime.combine(now.date(), time(), tzinfo=zone)
    if name == "today":
        return today, today + timedelta(days=1)
    if name == "yesterday":
        return today - timedelta(days=1), today
    if name in ("this_week", "last_week"):
        monday = today - timedelta(days=today.weekday())
        return (monday, monday + timedelta(days=7)) if name == "this_week" else (monday - timedelta(days=7), monday)
    if name in ("this_month", "last_month"):
        first = today.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        if name == "this_month":
            return first, nxt
        prev = (first - timedelta(days=1)).replace(day=1)
        return prev, first
    if name == "this_quarter":
        month = 3 * ((today.month - 1) // 3) + 1
        start = today.replace(month=month, day=1)
        end = (start + timedelta(days=95)).replace(day=1)
        return start, end
    if name == "this_year":
        return today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    days = int(name.split("_")[1])
    return today - timedelta(days=days - 1), today + timedelta(days=1)


# --- checking ----------------------------------------------------------------------------------

def check(defn):
    """Refuse a definition naming unknown forms, fields, measures or bad values (ReportInvalid)."""
    errors = {}

    def add(ptr, msg):
        errors.setdefault(ptr, []).append(msg)

    for ptr, message in problems(META, defn):
        add(ptr, _("Not a valid report: %(detail)s", detail=message[:300]))
    if errors:
        raise ReportInvalid(errors)
    try:
        form = catalog.get_form(defn["source"])
    except catalog.FormNotFound:
        raise ReportInvalid({"/source": [_("There is no form “%(name)s”", name=defn["source"])]}) from None
    if catalog.current_version(form) is None:
        raise ReportInvalid({"/source": [_("There is no form “%(name)s”", name=defn["source"])]})
    fields = _Fields(form, "sqlite")

    def known(path, ptr):
        if fields.prop(path) is None:
            add(ptr, _("The form has no field “%(name)s”", name=path))
            return False
        return True

    for i, d in enumerate(defn.get("dimensions", [])):
        if known(d["field"], f"/dimensions/{i}/field") and d.get("grain") and not (
                fields.is_date(d["field"]) or fields.is_datetime(d["field"])):
            add(f"/dimensions/{i}/grain", _("Only date fields have a grain"))
    for i, f in enumerate(defn.get("filters", [])):
        _check_filter(f, f"/filters/{i}", fields, known, add)
    keys = [m["key"] for m in defn["measures"]]
    for i, m in enumerate(defn["measures"]):
        base = f"/measures/{i}"
        if keys.count(m["key"]) > 1:
            add(f"{base}/key", _("Measure keys must be unique"))
        kind = m["type"]
        if kind in ("count_distinct", "sum", "avg", "min", "max"):
            if "field" not in m:
                add(base, _("This measure needs a field"))
            elif known(m["field"], f"{base}/field") and kind != "count_distinct" and \
                    fields.prop(m["field"]).get("type") not in ("integer", "number"):
                add(f"{base}/field", _("“%(name)s” is not a number field", name=m["field"]))
        if kind in ("share",) and m.get("of") not in keys:
            add(f"{base}/of", _("Name another measure of this report"))
        if kind == "ratio":
            for part in ("numerator", "denominator"):
                if m.get(part) not in keys:
                    add(f"{base}/{part}", _("Name another measure of this report"))
        if kind == "reached" and not m.get("states"):
            add(base, _("List the states"))
        if kind in ("conversion", "avg_days", "within") and not (m.get("from") and m.get("to")):
            add(base, _("Give the states to measure from and to"))
        if kind == "within" and not m.get("hours"):
            add(base, _("Give the number of hours"))
        for part in ("from", "to"):
            for state in m.get(part) or []:
                if state.startswith("field:") and not (fields.is_date(state[6:]) or fields.is_datetime(state[6:])):
                    add(f"{base}/{part}", _("“%(name)s” is not a date field", name=state[6:]))
        for j, f in enumerate(m.get("where", [])):
            _check_filter(f, f"{base}/where/{j}", fields, known, add)
    dims = [_dim_key(d) for d in defn.get("dimensions", [])]
    if defn.get("top"):
        if len(dims) < 2:
            add("/top", _("TOP per group needs two dimensions: the groups, then what is ranked"))
        if defn["top"].get("by", keys[0]) not in keys:
            add("/top/by", _("Name another measure of this report"))
    for i, s in enumerate(defn.get("sort", [])):
        if s["by"] not in keys and s["by"] not in dims:
            add(f"/sort/{i}/by", _("Sort by a dimension or a measure of this report"))
    if errors:
        raise ReportInvalid(errors)
    return form


def _check_filter(f, ptr, fields, known, add):
    if not known(f["field"], f"{ptr}/field"):
        return
    op, value, prop = f["op"], f.get("value"), fields.prop(f["field"])
    if op in ("is_empty", "not_empty"):
        return
    if op == "relative":
        if value not in RELATIVE or not (fields.is_date(f["field"]) or fields.is_datetime(f["field"])):
            add(f"{ptr}/value", _("Use a relative period on a date field: %(names)s", names=", ".join(RELATIVE)))
        return
    if op in ("in", "not_in", "between"):
        if not isinstance(value, list) or (op == "between" and len(value) != 2):
            add(f"{ptr}/value", _("Give a list of values"))
            return
        values = value
    else:
        values = [value]
    if op == "contains" and prop.get("type") != "array":
        add(f"{ptr}/op", _("contains is for multi-select fields"))
    choices = enum_of(prop)
    kind = prop.get("type")
    for v in values:
        if not isinstance(v, (str, int, float, bool)) or isinstance(v, bool) and kind != "boolean":
            add(f"{ptr}/value", _("Values are text, numbers or yes/no"))
        elif prop.get("format") in ("date", "date-time") and not _is_date(v, prop["format"]):
            add(f"{ptr}/value", _("“%(value)s” is not a date (YYYY-MM-DD)", value=str(v)[:100])
                if prop["format"] == "date" else
                _("“%(value)s” is not a date or a date-time (YYYY-MM-DD or YYYY-MM-DDTHH:MM+08:00)", value=str(v)[:100]))
        elif kind in ("integer", "number") and (isinstance(v, (str, bool))):
            add(f"{ptr}/value", _("“%(value)s” is not a number", value=str(v)[:100]))
        elif choices is not None and op in ("eq", "ne", "in", "not_in", "contains") and v not in choices:
            add(f"{ptr}/value", _("“%(value)s” is not one of the field's values", value=v))


def _is_date(value, fmt):
    """Is value a date (YYYY-MM-DD) or, for a date-time field, a date or an ISO date-time?"""
    if not isinstance(value, str) or not re.match(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        elif fmt == "date-time" and value[10] in "T ":
            datetime.fromisoformat(value)
        else:
            return False
    except ValueError:
        return False
    return True


def is_date_field(defn, path):
    """Is ``path`` a date or date-time field of the report's form, one a date range can be taken over?"""
    fields = _Fields(check(defn), "sqlite")
    return fields.prop(path) is not None and (fields.is_date(path) or fields.is_datetime(path))


def _dim_key(d):
    return f"{d['field']}:{d['grain']}" if d.get("grain") else d["field"]


# --- compiling ---------------------------------------------------------------------------------

def _condition(f, fields, dialect):
    path, op, value = f["field"], f["op"], f.get("value")
    if op == "contains":
        table, name = fields.table_for(path)
        return where_field(name, fields.prop(path), value, dialect, table)
    expr = fields.value(path)
    if op == "is_empty":
        return or_(expr.is_(None), expr == "") if not fields.is_list(path) else expr.is_(None)
    if op == "not_empty":
        return and_(expr.is_not(None), expr != "") if not fields.is_list(path) else expr.is_not(None)
    if op == "relative":
        start, end = relative_range(value)
        if not fields.is_datetime(path):
            return and_(expr >= start.date().isoformat(), expr < end.date().isoformat())
        value, op = [start, end], "_half_open"
    if fields.is_datetime(path):
        # compare instants, not texts: "03:00+00:00" is after "10:30+08:00"
        expr, value = _instant_sql(expr, path, dialect), _instant_value(value, path, dialect)
    if op == "_half_open":
        return and_(expr >= value[0], expr < value[1])
    if op == "eq":
        return expr == value
    if op == "ne":
        return or_(expr != value, expr.is_(None))
    if op == "in":
        return expr.in_(value)
    if op == "not_in":
        return or_(expr.not_in(value), expr.is_(None))
    if op == "between":
        return and_(expr >= value[0], expr <= value[1])
    return {"gt": expr > value, "gte": expr >= value, "lt": expr < value, "lte": expr <= value}[op]


def _instant_sql(expr, path, dialect):
    """A date-time field as an instant: the columns are UTC already; a field's ISO text is cast
    (PostgreSQL) or normalised to SQLite's UTC text."""
    if path in ("created_at", "updated_at"):
        return expr
    return cast(expr, db.DateTime(timezone=True)) if dialect == "postgresql" else func.datetime(expr)


def _instant_value(value, path, dialect):
    if isinstance(value, list):
        return [_instant_value(v, path, dialect) for v in value]
    moment = _instant(value)
    if path in ("created_at", "updated_at") or dialect == "postgresql":
        return moment
    return moment.astimezone(timezone.utc).strftime(SQLITE_TEXT)


def _instant(value):
    if isinstance(value, str) and len(value) == 10:
        d = date.fromisoformat(value)
        return datetime(d.year, d.month, d.day, tzinfo=clock.zone())
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=clock.zone()) if moment.tzinfo is None else moment  # wall time in the business zone


def _state_field(fields, measure):
    flow = (fields.version.settings or {}).get("status_flow") or {}
    return measure.get("field") or flow.get("field") or "status"


def _reached(states, fields, measure):
    """True when the record is, or ever was, in one of the states."""
    now = fields.value(_state_field(fields, measure)).in_(states)
    history = [StatusChange.form_id == fields.form.id, StatusChange.to_value.in_(states)]
    if fields.dialect == "sqlite":
        # not correlated: SQLite builds the set of ids once as a temporary index (measured faster)
        return or_(now, Record.id.in_(select(StatusChange.record_id).where(*history)))
    # PostgreSQL probes the history index per record; an IN over millions of ids that does not
    # fit work_mem would be rescanned for every row (measured: minutes instead of seconds)
    return or_(now, exists(select(1).where(StatusChange.record_id == Record.id, *history)))


def _entered(states, fields):
    """When the record entered one of the states; ["created"] is its creation, ["field:x"] a date field."""
    if states == ["created"]:
        return Record.created_at
    if len(states) == 1 and states[0].startswith("field:"):
        value = fields.value(states[0][6:])
        if fields.is_datetime(states[0][6:]):  # stored with its offset
            return cast(value, db.DateTime(timezone=True)) if fields.dialect == "postgresql" else func.datetime(value)
        # a plain date is a day in the business time zone: its start, as a UTC instant
        return _day_start(value, fields.dialect)
    return select(func.min(StatusChange.at)).where(StatusChange.record_id == Record.id,
                                                   StatusChange.to_value.in_(states)).scalar_subquery()


def _days_between(a, b, dialect):
    if dialect == "postgresql":
        return func.extract("epoch", b - a) / 86400.0
    return func.julianday(b) - func.julianday(a)


def _seconds_between(a, b, dialect):
    """Whole seconds from a to b: exact at the edges (an interval of exactly 1 h is 3600, and
    a stored "12:00:00.000000" equals a field's "12:00:00"), unlike floats or text compares."""
    if dialect == "postgresql":
        return func.round(func.extract("epoch", b - a))
    return func.round((func.julianday(b) - func.julianday(a)) * 86400.0)


def _within(measure, fields, cond):
    """(on time, due) conditions: the end came at most ``hours`` after the start (or before it); a
    record counts once its end is there or its time is up, so today's leads are not late before
    they can be."""
    start, end = _entered(measure["from"], fields), _entered(measure["to"], fields)
    limit, dialect = round(measure["hours"] * 3600), fields.dialect
    now = clock.now()
    now = literal(now, db.DateTime(timezone=True)) if dialect == "postgresql" else \
        literal(now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
    # an end before its start is on time: forms keep whole minutes, so a follow-up in the minute
    # a record was entered (10:05 for 10:05:37) must not count as late
    ended = end.is_not(None)
    on_time = and_(start.is_not(None), ended, _seconds_between(start, end, dialect) <= limit)
    due = and_(start.is_not(None), or_(ended, _seconds_between(start, now, dialect) > limit))
    if cond is not None:
        on_time, due = and_(on_time, cond), and_(due, cond)
    return on_time, due


def _count(cond):
    return func.count(distinct(case((cond, Record.id)) if cond is not None else Record.id))


def _measure(m, fields):
    """(aggregate, base, behind) of a measure computed in SQL: its aggregate, the count a
    conversion or within divides by (else None), and the condition a record meets to be behind
    the number shown (None: every record of the row). (None, None, None) for share and ratio,
    which are computed from other measures after the query."""
    kind, dialect = m["type"], fields.dialect
    where = [_condition(f, fields, dialect) for f in m.get("where", [])]
    cond = and_(*where) if where else None

    def also(c):
        return c if cond is None else and_(c, cond)

    if kind == "count":
        return _count(cond), None, cond
    if kind == "count_distinct":
        value = fields.value(m["field"])
        return func.count(distinct(case((cond, value)) if cond is not None else value)), None, also(value.is_not(None))
    if kind in AGGREGATES:
        value = cast(fields.value(m["field"]), Float)
        return AGGREGATES[kind](case((cond, value)) if cond is not None else value), None, also(value.is_not(None))
    if kind == "reached":
        hit = also(_reached(m["states"], fields, m))
        return _count(hit), None, hit
    if kind == "conversion":
        a = also(_reached(m["from"], fields, m))
        both = and_(a, _reached(m["to"], fields, m))
        return _count(both), _count(a), both
    if kind == "avg_days":
        start, end = _entered(m["from"], fields), _entered(m["to"], fields)
        ok = also(and_(start.is_not(None), end.is_not(None), _seconds_between(start, end, dialect) >= 0))
        return func.avg(case((ok, _days_between(start, end, dialect)))), None, ok
    if kind == "within":
        on_time, due = _within(m, fields, cond)
        return _count(on_time), _count(due), on_time
    return None, None, None


def _behind(defn, key, fields):
    """The condition of the records behind a measure's number; share and ratio are their
    numerator's records."""
    by_key = {m["key"]: m for m in defn["measures"]}
    m = by_key[key]
    for _hop in range(len(by_key)):
        if m["type"] not in ("share", "ratio"):
            break
        m = by_key[m["of"] if m["type"] == "share" else m["numerator"]]
    return _measure(m, fields)[2]


def compile_report(defn, user, extra_filters=(), dialect=None):
    """(statement, columns, plan) for a checked definition, limited to what user may see."""
    form = check(defn)
    dialect = dialect or db.engine.dialect.name
    fields = _Fields(form, dialect)
    columns, selected, group = [], [], []
    for d in defn.get("dimensions", []):
        path = d["field"]
        expr = fields.list_element(path) if fields.is_list(path) else fields.value(path)
        if d.get("grain"):
            expr = grain_of(expr, d["grain"], dialect, fields.is_datetime(path))
        key = _dim_key(d)
        selected.append(expr.label(f"d{len(group)}"))
        group.append(expr)
        columns.append(Column(key=key, kind="dimension", field=path, grain=d.get("grain", "")))
    plan = []  # (measure, sql label or None)
    for m in defn["measures"]:
        label = f"m{len(plan)}"
        expr, base, _records = _measure(m, fields)
        if base is not None:
            selected.append(base.label(label + "_from"))
        if expr is not None:
            selected.append(expr.label(label))
            plan.append((m, label))
        else:
            plan.append((m, None))
        columns.append(Column(key=m["key"], kind="measure", field=m.get("field", ""),
                              format=m.get("format") or _default_format(m["type"])))
    # filters first: a filter on a referenced form's field adds the join it needs
    conditions = [_condition(f, fields, dialect) for f in [*defn.get("filters", []), *extra_filters]]
    stmt = select(*selected).select_from(Record)
    stmt = fields.apply_joins(stmt, user)
    stmt = stmt.where(Record.form_id == form.id, *conditions)
    stmt = access.visible_records(user, stmt)
    if group:
        stmt = stmt.group_by(*group)
    return stmt, columns, plan, fields


def _default_format(kind):
    return {"share": "percent", "ratio": "percent", "conversion": "percent", "within": "percent",
            "avg_days": "days"}.get(kind, "number")


def run(defn, user, extra_filters=()):
    """Run a report: a Result with one row per group, derived measures filled in, sorted, limited."""
    stmt, columns, plan, fields = compile_report(defn, user, extra_filters)
    _prepare(fields.dialect)
    raw = [dict(r._mapping) for r in db.session.execute(stmt)]
    ndim = len(defn.get("dimensions", []))
    rows = []
    for r in raw:
        row = [r[f"d{i}"] for i in range(ndim)]
        values = {}
        for m, label in plan:
            if m["type"] in ("conversion", "within"):
                base = r[label + "_from"] or 0
                values[m["key"]] = (r[label] or 0) / base if base else None
            elif label is not None:
                v = r[label]
                values[m["key"]] = float(v) if isinstance(v, (int, float)) and m["type"] in ("avg", "avg_days") \
                    else (int(v) if m["type"] in ("count", "count_distinct", "reached") and v is not None else v)
        rows.append((row, values))
    for m, _label in plan:
        if m["type"] == "share":
            total = sum(v[m["of"]] or 0 for _r, v in rows)
            for _r, v in rows:
                v[m["key"]] = (v[m["of"]] or 0) / total if total else None
        elif m["type"] == "ratio":
            for _r, v in rows:
                den = v.get(m["denominator"])
                v[m["key"]] = (v.get(m["numerator"]) or 0) / den if den else None
    keys = [c.key for c in columns]
    table = [row + [v[m["key"]] for m, _l in plan] for row, v in rows]
    if defn.get("top"):
        table = _top_per_group(table, keys.index(defn["top"].get("by", defn["measures"][0]["key"])),
                               defn["top"]["n"], ndim)
    for s in reversed(defn.get("sort", [])):
        i = keys.index(s["by"])
        table.sort(key=lambda t: (t[i] is None, t[i] if t[i] is not None else 0) if s.get("dir") != "desc"
                   else (t[i] is not None, t[i] if t[i] is not None else 0), reverse=s.get("dir") == "desc")
    if not defn.get("sort"):
        table.sort(key=lambda t: tuple((x is None, "" if x is None else str(x)) for x in t[:ndim]))
    if defn.get("limit"):
        table = table[:defn["limit"]]
    _label_columns(columns, fields, defn["measures"])
    return Result(columns=columns, rows=table)


def _top_per_group(table, i, n, ndim):
    """The n rows with the largest column i within each value of the first column (ties: in
    order of the other dimensions), groups and their rows kept in the table's order."""
    groups = {}
    for row in table:
        groups.setdefault(row[0], []).append(row)
    keep = set()
    for rows in groups.values():
        ranked = sorted(rows, key=lambda r: (r[i] is None, -(r[i] or 0),
                                             tuple((x is None, str(x)) for x in r[1:ndim])))
        keep.update(id(r) for r in ranked[:n])
    return [r for r in table if id(r) in keep]


def _field_label(fields, path, locale):
    from ..i18n import pick
    if path in ("created_at", "updated_at", "owner", "team"):
        return {"created_at": _("Created at"), "updated_at": _("Changed at"), "owner": _("Owner"),
                "team": _("Team")}[path]
    version, name = fields.version, path
    if "." in path:
        ref, name = path.split(".", 1)
        version = fields._target(ref)
    prop = version.schema["properties"].get(name, {})
    return pick(version.ui.get("fields", {}).get(name, {}).get("label"), locale) or prop.get("title", name)


def _option_label(fields, path, value, locale):
    from ..forms.rendering import options_for
    version, name = fields.version, path
    if "." in path:
        ref, name = path.split(".", 1)
        version = fields._target(ref)
    prop = version.schema["properties"].get(name, {})
    return dict(options_for(name, prop, version.ui, locale)).get(value, str(value))


def measure_label(m, fields, by_key, locale):
    """A readable name for a measure: its title, else one made from what it counts."""
    from ..i18n import pick
    if m.get("title"):
        return pick(m["title"], locale)
    kind = m["type"]
    if kind == "count":
        if m.get("where"):
            w = m["where"][0]
            value = w.get("value")
            shown = _option_label(fields, w["field"], value, locale) if not isinstance(value, list) else "/".join(
                _option_label(fields, w["field"], v, locale) for v in value)
            return f"{_field_label(fields, w['field'], locale)}={shown}"
        return _("Record count")
    if kind in ("count_distinct", "sum", "avg", "min", "max"):
        names = {"count_distinct": _("distinct"), "sum": _("total"), "avg": _("average"), "min": _("minimum"),
                 "max": _("maximum")}
        return f"{_field_label(fields, m['field'], locale)} {names[kind]}"
    if kind == "share":
        return _("%(name)s share", name=measure_label(by_key[m["of"]], fields, by_key, locale))
    if kind == "ratio":
        return _("%(name)s share", name=measure_label(by_key[m["numerator"]], fields, by_key, locale))
    def states(xs):
        return "/".join(_("Created at") if x == "created" else _field_label(fields, x[6:], locale)
                        if x.startswith("field:") else _option_label(fields, _state_field(fields, m), x, locale)
                        for x in xs)
    if kind == "reached":
        return _("Reached %(states)s", states=states(m["states"]))
    if kind == "conversion":
        return _("Conversion %(a)s → %(b)s", a=states(m["from"]), b=states(m["to"]))
    if kind == "within":
        return _("%(b)s within %(hours)s h of %(a)s", a=states(m["from"]), b=states(m["to"]),
                 hours=f"{m['hours']:g}")
    return _("Days %(a)s → %(b)s", a=states(m["from"]), b=states(m["to"]))


def _label_columns(columns, fields, measures=()):
    from ..forms.rendering import options_for
    from ..i18n import doc_locale, pick
    locale = doc_locale()
    ui = fields.version.ui
    by_key = {m["key"]: m for m in measures}
    for c in columns:
        if c.kind == "measure":
            c.label = measure_label(by_key[c.key], fields, by_key, locale) if c.key in by_key else c.key
            continue
        path = c.field
        if path == "owner":
            c.label = _("Owner")
            c.labels = {u.username: u.display_name for u in db.session.scalars(select(User))}
            continue
        if path == "team":
            c.label = _("Team")
            c.labels = {t.key: pick(t.name, locale) for t in db.session.scalars(select(Team))}
            continue
        if path in ("created_at", "updated_at"):
            c.label = _("Created at") if path == "created_at" else _("Changed at")
            continue
        version, name = fields.version, path
        if "." in path:
            ref, name = path.split(".", 1)
            version = fields._target(ref)
            ui = version.ui
        prop = version.schema["properties"].get(name, {})
        c.label = pick(ui.get("fields", {}).get(name, {}).get("label"), locale) or prop.get("title", name)
        if enum_of(prop) is not None:
            c.labels = dict(options_for(name, prop, version.ui, locale))
        ui = fields.version.ui


def drill(defn, user, cell, limit=500, measure=None):
    """The records behind one cell: the report's filters, each dimension equal to its value
    (given as shown in the result or as query text) and, for a measure's cell, the measure's
    own condition, so the list is exactly what its number counts."""
    form = check(defn)
    dialect = db.engine.dialect.name
    fields = _Fields(form, dialect)
    stmt = select(Record).where(Record.form_id == form.id)
    conditions = [_condition(f, fields, dialect) for f in defn.get("filters", [])]
    for d in defn.get("dimensions", []):
        key = _dim_key(d)
        if key not in cell:
            continue
        value, path = _cell_value(fields, d, cell[key]), d["field"]
        if fields.is_list(path):
            conditions.append(_condition({"field": path, "op": "contains", "value": value}, fields, dialect)
                              if value is not None else fields.value(path).is_(None))
            continue
        expr = fields.value(path)
        if d.get("grain"):
            expr = grain_of(expr, d["grain"], dialect, fields.is_datetime(path))
        conditions.append(expr.is_(None) if value is None else expr == value)
    if measure is not None:
        if measure not in {m["key"] for m in defn["measures"]}:
            raise ReportInvalid({"measure": [_("%(param)s: the report has no measure “%(name)s”", param="measure",
                                                name=str(measure)[:100])]})
        behind = _behind(defn, measure, fields)
        if behind is not None:
            conditions.append(behind)
    stmt = fields.apply_joins(stmt, user)
    stmt = access.visible_records(user, stmt.where(*conditions) if conditions else stmt)
    _prepare(dialect)
    return db.session.scalars(stmt.order_by(Record.id.desc()).limit(limit)).unique().all()


def _cell_value(fields, d, value):
    """A dimension's value typed as the field is: a drill link's "2026" is a year's label, a
    number field's 3 is a number, "true" a yes; ReportInvalid names the dimension when it cannot be."""
    if value is None or d.get("grain"):
        return value if value is None else str(value)
    kind = (fields.prop(d["field"]) or {}).get("type")
    if fields.is_list(d["field"]):
        kind = ((fields.prop(d["field"]) or {}).get("items") or {}).get("type")
    if not isinstance(value, str) or kind in (None, "string"):
        return value
    try:
        if kind == "boolean":
            return {"true": True, "false": False}[value]
        return int(value) if kind == "integer" else float(value)
    except (KeyError, ValueError):
        raise ReportInvalid({_dim_key(d): [_("%(param)s: “%(value)s” is not a value of this field",
                                             param=_dim_key(d), value=value[:100])]}) from None


def describe(defn, cell, measure=None):
    """A drilled cell for people: [(dimension label, value label)] and the measure's label (or None)."""
    from .export import cell_text
    form = check(defn)
    fields = _Fields(form, db.engine.dialect.name)
    shown = [d for d in defn.get("dimensions", []) if _dim_key(d) in cell]
    columns = [Column(key=_dim_key(d), kind="dimension", field=d["field"], grain=d.get("grain", "")) for d in shown]
    _label_columns(columns, fields, defn["measures"])
    parts = [(c.label, cell_text(_cell_value(fields, d, cell[c.key]), c)) for c, d in zip(columns, shown)]
    if measure is None:
        return parts, None
    from ..i18n import doc_locale
    by_key = {m["key"]: m for m in defn["measures"]}
    return parts, measure_label(by_key[measure], fields, by_key, doc_locale()) if measure in by_key else None
