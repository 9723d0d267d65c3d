"""Every report the cardealer blueprint ships, checked against an independent count over its demo data.

The demo is loaded once; every record and status change is then read through the ORM into plain
dicts, and each report definition (blueprints/cardealer/reports/*.json) is evaluated again here, in
Python, from what docs/reports.md says it means: dimensions (fields, multi-select values, fields of a
referenced record, owner, team, date grains in Asia/Shanghai), filters, and measures (counts,
aggregates, share, ratio, reached, conversion, avg_days, within) and TOP n per group. The compiler's rows must match that
oracle row for row and measure for measure, for every user, before and after a few records are moved
through their status flow, unassigned and soft-deleted. Nothing here is hard-coded: a new report is
checked as soon as it is shipped, and a measure type the oracle does not know fails the test by name.
The dashboards are checked too: their tiles name shipped reports that show numbers on the demo.
"""
import functools
import json
import math
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone
from itertools import product
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from conftest import CARDEALER, load
from formflow import access, clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.reports import compiler, store
from formflow.workflow.models import StatusChange

ZONE = ZoneInfo("Asia/Shanghai")
REPORTS = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted((CARDEALER / "reports").glob("*.json"))}
DASHBOARDS = {p.stem: json.loads(p.read_text("utf-8")) for p in sorted((CARDEALER / "dashboards").glob("*.json"))}
COUNTS = ("count", "count_distinct", "reached")  # whole numbers, compared exactly


# --- the demo data as plain Python ------------------------------------------------------------------

def snapshot():
    """Every record (all forms, deleted ones marked) and every status change, as plain dicts."""
    recs = {}
    for r in db.session.scalars(select(Record)):
        owner = r.owner
        recs[r.id] = {"id": r.id, "form": r.form.key, "data": dict(r.data or {}),
                      "owner": owner.username if owner else None,
                      "team": owner.team.key if owner is not None and owner.team is not None else None,
                      "created_at": r.created_at, "updated_at": r.updated_at, "deleted": r.deleted_at is not None}
    history = defaultdict(list)
    for sc in db.session.scalars(select(StatusChange)):
        history[sc.record_id].append((sc.to_value, sc.at))
    return recs, history


def form_info(key):
    """The field definitions and status-flow field of a form's current version."""
    version = catalog.current_version(catalog.get_form(key))
    flow = (version.settings or {}).get("status_flow") or {}
    return {"props": version.schema["properties"], "state_field": flow.get("field") or "status"}


def instant(value):
    """A datetime, or an ISO text (date-time with offset, or a plain date = its midnight in Shanghai)."""
    if value is None or isinstance(value, datetime):
        return value
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=ZONE)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZONE)  # stored values carry an offset


def local_day(value, is_date):
    """The calendar day of a value in Asia/Shanghai (a plain date is already one)."""
    if is_date:
        return date.fromisoformat(value)
    return instant(value).astimezone(ZONE).date()


def grain_label(day, grain):
    """Period labels as documented: 2026-11-26, the week's Monday, 2026-11, 2026-Q4, 2026."""
    if grain == "day":
        return day.isoformat()
    if grain == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if grain == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if grain == "quarter":
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


def add_months(day, n):
    months = day.year * 12 + day.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


def period(name, now):
    """[first day, day after the last) of a relative period, in Asia/Shanghai."""
    today = now.astimezone(ZONE).date()
    one = timedelta(days=1)
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    return {
        "today": (today, today + one), "yesterday": (today - one, today),
        "this_week": (monday, monday + 7 * one), "last_week": (monday - 7 * one, monday),
        "this_month": (first, add_months(first, 1)), "last_month": (add_months(first, -1), first),
        "this_quarter": (quarter, add_months(quarter, 3)),
        "this_year": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
    }.get(name) or (today - (int(name.split("_")[1]) - 1) * one, today + one)


class Oracle:
    """One report evaluated in Python over the snapshot: {dimension key tuple: {measure: value}}."""

    def __init__(self, recs, history, defn, now, visible):
        self.recs, self.history, self.defn, self.now = recs, history, defn, now
        self.form = form_info(defn["source"])
        self.visible = visible  # ids of the records the viewer may see (access.visible_records)

    # fields

    def prop(self, path):
        if path in ("created_at", "updated_at"):
            return {"type": "string", "format": "date-time"}
        if path in ("owner", "team"):
            return {"type": "string"}
        if "." in path:
            ref, name = path.split(".", 1)
            target = self.form["props"][ref]["x-reference"]
            return form_info(target)["props"].get(name, {})
        return self.form["props"].get(path, {})

    def value(self, rec, path):
        """The field's value for a record: builtins, data, or a live referenced record's field."""
        if path in ("created_at", "updated_at", "owner", "team"):
            return rec[path]
        if "." in path:
            ref, name = path.split(".", 1)
            target = self.recs.get(rec["data"].get(ref))
            wanted = self.form["props"][ref]["x-reference"]
            if target is None or target["deleted"] or target["form"] != wanted:
                return None
            return target["data"].get(name)
        return rec["data"].get(path)

    # filters

    def holds(self, rec, f):
        path, op, want = f["field"], f["op"], f.get("value")
        v = self.value(rec, path)
        prop = self.prop(path)
        if op == "contains":
            return isinstance(v, list) and want in v
        if op == "is_empty":
            return v in (None, "", [])
        if op == "not_empty":
            return v not in (None, "", [])
        if op == "relative":
            if v is None:
                return False
            start, end = period(want, self.now)
            if prop.get("format") == "date":
                return start <= date.fromisoformat(v) < end
            moment = instant(v)
            return instant(start.isoformat()) <= moment < instant(end.isoformat())
        if prop.get("format") == "date-time" and v is not None:  # compare instants, not texts
            v = instant(v)
            want = [instant(w) for w in want] if isinstance(want, list) else instant(want)
        if op == "ne":
            return v is None or v != want
        if op == "not_in":
            return v is None or v not in want
        if v is None:
            return False
        if op == "eq":
            return v == want
        if op == "in":
            return v in want
        if op == "between":
            return want[0] <= v <= want[1]
        return {"gt": v > want, "gte": v >= want, "lt": v < want, "lte": v <= want}[op]

    def passes(self, rec, filters):
        return all(self.holds(rec, f) for f in filters or [])

    # dimensions

    def dim_values(self, rec, d):
        """A record's values for one dimension: one per chosen multi-select value, else one."""
        path, grain = d["field"], d.get("grain")
        v = self.value(rec, path)
        values = (list(dict.fromkeys(v)) or [None]) if isinstance(v, list) else [v]
        if grain:
            is_date = self.prop(path).get("format") == "date"
            values = [None if x is None else grain_label(local_day(x, is_date) if isinstance(x, str)
                                                         else x.astimezone(ZONE).date(), grain) for x in values]
        return values

    # status history

    def state_field(self, m):
        return m.get("field") or self.form["state_field"]

    def reached(self, rec, states, m):
        """Is the record in one of the states now, or did it ever enter one?"""
        if self.value(rec, self.state_field(m)) in states:
            return True
        return any(to in states for to, _at in self.history.get(rec["id"], []))

    def entered(self, rec, states):
        """When the record first entered one of: "created", "field:<date field>", or a state."""
        moments = []
        for s in states:
            if s == "created":
                moments.append(rec["created_at"])
            elif s.startswith("field:"):
                v = self.value(rec, s[6:])
                if v is not None:
                    moments.append(instant(v))
            else:
                moments += [at for to, at in self.history.get(rec["id"], []) if to == s]
        return min(moments) if moments else None

    # measures

    def measure(self, m, group):
        kind = m["type"]
        rows = [r for r in group if self.passes(r, m.get("where"))]
        if kind == "count":
            return len(rows)
        if kind == "count_distinct":
            return len({json.dumps(self.value(r, m["field"])) for r in rows if self.value(r, m["field"]) is not None})
        if kind in ("sum", "avg", "min", "max"):
            nums = [float(self.value(r, m["field"])) for r in rows if self.value(r, m["field"]) is not None]
            if not nums:
                return None
            return {"sum": sum, "min": min, "max": max, "avg": lambda xs: sum(xs) / len(xs)}[kind](nums)
        if kind == "reached":
            return sum(1 for r in rows if self.reached(r, m["states"], m))
        if kind == "conversion":
            base = [r for r in rows if self.reached(r, m["from"], m)]
            hit = [r for r in base if self.reached(r, m["to"], m)]
            return len(hit) / len(base) if base else None
        if kind == "avg_days":
            days = []
            for r in rows:
                start, end = self.entered(r, m["from"]), self.entered(r, m["to"])
                if start is not None and end is not None and end >= start:
                    days.append((end - start).total_seconds() / 86400)
            return sum(days) / len(days) if days else None
        if kind == "within":
            return self.within(rows, m)
        if kind in ("share", "ratio"):
            return None  # filled in from the other measures, over all rows
        raise AssertionError(f"the oracle does not know measure type {kind!r} (report {self.defn['key']}); "
                             "teach it before shipping a report that uses it")

    def within(self, rows, m):
        """Of the records whose from→to interval is over or has run past `hours`, the share whose
        end came at most `hours` after the start (an end before the start is on time: forms keep
        whole minutes); None when none is due yet."""
        limit, due, on_time = timedelta(hours=m["hours"]), 0, 0
        for r in rows:
            start, end = self.entered(r, m["from"]), self.entered(r, m["to"])
            if start is None:
                continue
            ended = end is not None
            if ended or self.now - start > limit:
                due += 1
                on_time += ended and end - start <= limit
        return on_time / due if due else None

    def members(self):
        """The live records of the source form the viewer may see that pass the report's filters."""
        return [rec for rec in self.recs.values()
                if rec["form"] == self.defn["source"] and not rec["deleted"] and rec["id"] in self.visible
                and self.passes(rec, self.defn.get("filters"))]

    def rows(self):
        """{dimension values: {measure key: value}}; a record is counted once per group it falls in."""
        dims = self.defn.get("dimensions", [])
        groups = defaultdict(dict)  # key -> {record id: record}
        if not dims:
            groups[()] = {}  # an aggregate without dimensions is one row, even over nothing
        for rec in self.members():
            for key in product(*(self.dim_values(rec, d) for d in dims)):
                groups[key][rec["id"]] = rec
        out = {key: {m["key"]: self.measure(m, list(group.values())) for m in self.defn["measures"]}
               for key, group in groups.items()}
        for m in self.defn["measures"]:
            if m["type"] == "share":
                total = sum(v[m["of"]] or 0 for v in out.values())
                for v in out.values():
                    v[m["key"]] = (v[m["of"]] or 0) / total if total else None
            elif m["type"] == "ratio":
                for v in out.values():
                    den = v[m["denominator"]]
                    v[m["key"]] = (v[m["numerator"]] or 0) / den if den else None
        if self.defn.get("top"):  # the n largest rows within each value of the first dimension
            by, n = self.defn["top"].get("by", self.defn["measures"][0]["key"]), self.defn["top"]["n"]
            kept = {}
            for first in {key[0] for key in out}:
                group = sorted((key for key in out if key[0] == first),
                               key=lambda key: (out[key][by] is None, -(out[key][by] or 0),
                                                [(x is None, str(x)) for x in key[1:]]))
                kept.update({key: out[key] for key in group[:n]})
            out = kept
        return out


# --- comparing ----------------------------------------------------------------------------------

def dim_key(d):
    return f"{d['field']}:{d['grain']}" if d.get("grain") else d["field"]


def same(expected, got, kind):
    """Counts exactly (and as ints); everything else to 1e-6 relative; None only equals None."""
    if expected is None or got is None:
        return expected is None and got is None
    if kind in COUNTS:
        return isinstance(got, int) and got == expected
    return math.isclose(float(got), float(expected), rel_tol=1e-6, abs_tol=1e-9)


def order_cmp(defn, a, b):
    """Compare two (key, values) rows by the report's sort (nulls last); without sort, by dimension text."""
    dims = [dim_key(d) for d in defn.get("dimensions", [])]
    specs = defn.get("sort") or [{"by": k} for k in dims]
    for s in specs:
        def pick(row):
            key, values = row
            if s["by"] in dims:
                x = key[dims.index(s["by"])]
                return x if defn.get("sort") or x is None else str(x)
            return values[s["by"]]
        x, y = pick(a), pick(b)
        if x == y:
            continue
        if x is None or y is None:
            return 1 if x is None else -1
        less = x < y
        return (-1 if less else 1) * (-1 if s.get("dir") == "desc" else 1)
    return 0


def compare(defn, result, expected, who):
    """Mismatches between the compiler's Result and the oracle's rows, as readable lines."""
    name, problems = f"{defn['key']} as {who}", []
    dims = [dim_key(d) for d in defn.get("dimensions", [])]
    measures = {m["key"]: m["type"] for m in defn["measures"]}
    keys = [c.key for c in result.columns]
    if keys != dims + list(measures):
        return [f"{name}: columns {keys}, expected {dims + list(measures)}"]
    got = {}
    for row in result.rows:
        key = tuple(row[:len(dims)])
        if key in got:
            problems.append(f"{name}: row {key} appears twice")
        got[key] = dict(zip(measures, row[len(dims):]))
    limit = defn.get("limit")
    if limit and len(expected) > limit:
        if len(got) != limit:
            problems.append(f"{name}: {len(got)} rows, expected the top {limit} of {len(expected)}")
        cmp = functools.partial(order_cmp, defn)
        kept = [(k, expected[k]) for k in got if k in expected]
        for k, v in expected.items():
            if k not in got and any(cmp((k, v), row) < 0 for row in kept):
                problems.append(f"{name}: row {k} {v} ranks above a returned row but is missing (limit {limit})")
    else:
        for k in expected.keys() - got.keys():
            problems.append(f"{name}: row {k} missing, expected {expected[k]}")
    for k in got.keys() - expected.keys():
        problems.append(f"{name}: row {k} {got[k]} should not exist")
    for k in got.keys() & expected.keys():
        for mk, kind in measures.items():
            if not same(expected[k][mk], got[k][mk], kind):
                problems.append(f"{name}: row {k} measure {mk}: expected {expected[k][mk]!r}, got {got[k][mk]!r}")
    if defn.get("sort"):
        ranked = [(tuple(r[:len(dims)]), expected.get(tuple(r[:len(dims)]))) for r in result.rows]
        ranked = [r for r in ranked if r[1] is not None]
        for a, b in zip(ranked, ranked[1:]):
            if order_cmp(defn, a, b) > 0:
                problems.append(f"{name}: row {a[0]} is listed before {b[0]} against the sort {defn['sort']}")
    return problems


def users():
    return db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.username)).all()


def visible_ids(user):
    return set(db.session.scalars(access.visible_records(user, select(Record.id))))


def check_all_reports(app, phase):
    """Every shipped report, run as every active user, against the oracle; the list of mismatches."""
    problems = []
    with app.test_request_context():
        recs, history = snapshot()
        now = clock.now()
        for user in users():
            visible = visible_ids(user)
            for key, defn in REPORTS.items():
                result = compiler.run(defn, user)
                expected = Oracle(recs, history, defn, now, visible).rows()
                problems += [f"[{phase}] {p}" for p in compare(defn, result, expected, user.username)]
    return problems


# --- moving the demo on ------------------------------------------------------------------------

def move_some_records(app):
    """What users do next, so that history, ownership and deletion matter: two lost leads are won back
    (their defeats now count as won back) and one of them is soft-deleted, a won lead is reopened (won
    only in its history now), a few more leads take one step along the flow, one lead goes back to the
    unassigned pool, and a defeat is soft-deleted. Returns the ids of the leads whose state changed."""
    with app.test_request_context():
        admin = db.session.scalars(select(User).where(User.role == "admin")).first()
        lead_form = catalog.get_form("lead")
        flow = (catalog.current_version(lead_form).settings or {}).get("status_flow") or {}
        field = flow.get("field", "status")
        today = clock.now().astimezone(ZONE).date().isoformat()
        leads = db.session.scalars(select(Record).where(Record.form_id == lead_form.id,
                                                        Record.deleted_at.is_(None)).order_by(Record.id)).all()
        moved = set()

        def step(rec, to, extra=()):
            """Move one lead as an admin would; False when the form wants more for that state."""
            try:
                records.update(rec, {field: to, **dict(extra)}, rec.version, admin)
            except records.RecordInvalid:
                return False
            moved.add(rec.id)
            return True

        lost = [r for r in leads if r.data.get(field) == "defeated"]
        won_back = [rec for rec in lost[:2] if all(step(rec, to, extra) for to, extra in (
            ("contacted", ()), ("visited", ()), ("won", {"deal_date": today})))]
        won = [r for r in leads if r.data.get(field) == "won" and r.id not in moved]
        for rec in won[:1]:
            step(rec, "visited")
        for t in flow.get("transitions", []):
            if t.get("guard") or t.get("requires_form"):
                continue
            for rec in leads:
                state = rec.data.get(field)
                if rec.id not in moved and state != t["to"] and (not t.get("from") or state in t["from"]) \
                        and step(rec, t["to"]):
                    break
        still = [r for r in leads if r.id not in moved]
        pooled = next(r for r in still if r.owner is not None)
        records.update(pooled, {}, pooled.version, admin, owner=None)
        for rec in won_back[1:]:  # its defeat stays: a deleted lead no longer counts as won back
            records.delete(rec, admin)
        defeats = db.session.scalars(select(Record).where(Record.form_id == catalog.get_form("defeat").id,
                                                          Record.deleted_at.is_(None)).order_by(Record.id)).all()
        for rec in [d for d in defeats if d.data.get("lead") not in moved][:1]:  # keep the won-back one
            records.delete(rec, admin)
        db.session.commit()
        return moved


# --- dashboards --------------------------------------------------------------------------------

def check_dashboards(app):
    """Every dashboard tile names a shipped (and loaded, unchanged) report or is a task list; each report
    on a dashboard shows a non-zero number on the demo data to someone of every role the dashboard is
    for; a tile listing a report's records lists exactly the records the report counts."""
    problems = []
    with app.test_request_context():
        recs, history = snapshot()
        for key, dash in DASHBOARDS.items():
            if store.get(dash["key"], "dashboard") is None:
                problems.append(f"dashboard {key} was not loaded")
            roles = dash.get("roles") or ["admin", "manager", "sales"]
            for i, tile in enumerate(dash["tiles"]):
                if "tasks" in tile and "report" not in tile:
                    continue  # the viewer's own task list, not a report
                name = tile.get("report")
                if name not in REPORTS:
                    problems.append(f"dashboard {key} tile {i} names {name!r}, which the blueprint does not ship")
                    continue
                stored = store.get(name)
                if stored is None or stored.body != REPORTS[name]:
                    problems.append(f"dashboard {key} tile {i}: report {name} is not loaded as shipped")
                for role in roles:
                    problems += tile_problems(key, tile, REPORTS[name], role, recs, history)
    return problems


def tile_problems(dash, tile, defn, role, recs, history):
    """Someone of the role sees a non-zero number in the tile; a records tile lists, for everyone of
    the role, exactly the records the report counts for them."""
    where = f"dashboard {dash} tile {defn['key']}"
    ndim = len(defn.get("dimensions", []))
    viewers = db.session.scalars(select(User).where(User.role == role, User.active.is_(True))).all()
    problems, seen = [], {}
    for viewer in viewers:
        result = compiler.run(defn, viewer)
        seen[viewer.username] = result.rows
        if tile.get("view") == "records":
            listed = {r.id for r in compiler.drill(defn, viewer, {}, limit=10000)}
            counted = {r["id"] for r in Oracle(recs, history, defn, clock.now(), visible_ids(viewer)).members()}
            if listed != counted:
                problems.append(f"{where} for {viewer.username}: lists records {sorted(listed ^ counted)} wrongly "
                                f"(listed {len(listed)}, the report counts {len(counted)})")
    if not any(isinstance(v, (int, float)) and not isinstance(v, bool) and v
               for rows in seen.values() for row in rows for v in row[ndim:]):
        problems.append(f"{where}: no {role} sees a non-zero number: {seen}")
    return problems


# --- the test ----------------------------------------------------------------------------------

@pytest.mark.parametrize("now", [datetime(2027, 3, 1, 4, 0, tzinfo=timezone.utc),    # 12:00 in Shanghai
                                 datetime(2027, 3, 1, 13, 0, tzinfo=timezone.utc)])  # 21:00, after as_of's hour
def test_reports_and_dashboards_match_an_independent_count_over_the_demo(app, now):
    """The demo is loaded once (it takes seconds). Dashboards: see check_dashboards. Reports: each
    shipped report, for every active user (admin, manager, each salesperson), equals the oracle's rows,
    first on the demo as loaded, then after states change, a lead is unassigned and records are deleted."""
    clock.freeze(now)  # one "now" for relative periods; the demo moves to end then (both sides of as_of's hour)
    try:
        load(app, CARDEALER, demo=True, passwords=False)
        with app.app_context():
            assert db.session.scalar(select(db.func.count(Record.id))) > 0, "the demo loaded no records"
        problems = check_dashboards(app)
        problems += check_all_reports(app, "demo")
        assert move_some_records(app), "no lead could be moved along its status flow"
        problems += check_all_reports(app, "after changes")
    finally:
        clock.reset()
    assert not problems, f"{len(problems)} differences from the independent count:\n" + "\n".join(problems)
