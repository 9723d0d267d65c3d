"""Choosing an owner: a fallback chain of strategies, each user capped by open records.

Strategies: ``user`` (a fixed user), ``field_map`` (a field's value, or its value mapped,
names the user: a live session's host, a platform's operator), ``skill`` (users having every
skill the record needs), ``least_loaded`` (round robin within a team by open records, oldest
assignment first), ``manager`` (the owner's manager). The first strategy with an eligible
user wins; a user at the cap is skipped.

Concurrent assignments for the same form are serialised by updating that form's row in
``assignment_locks`` first: a row lock on PostgreSQL, the write lock on SQLite.
"""
from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..forms.models import Record
from ..forms import paths
from ..people.models import Team, User
from ..types import utcnow
from . import expressions, jobs, rules
from .audience import managers_of
from .models import AssignmentLock, AssignmentMark


_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _lock(form_id):
    """Hold the form's lock row until the transaction ends.

    On a new database the row does not exist yet and every concurrent first assignment sees
    none: it is inserted with ON CONFLICT DO NOTHING, so one insert wins, the others wait for
    it and do nothing, and all of them then queue on the same row with the UPDATE.
    """
    take = update(AssignmentLock).where(AssignmentLock.form_id == form_id).values(counter=AssignmentLock.counter + 1)
    if db.session.execute(take).rowcount:
        return
    insert = _INSERT[db.session.get_bind().dialect.name]
    db.session.execute(insert(AssignmentLock).values(form_id=form_id, counter=0)
                       .on_conflict_do_nothing(index_elements=["form_id"]))
    db.session.execute(take)


def open_counts(record, user_ids, open_spec):
    """{user id: number of open records of this form they own}.

    Counted over the (form, owner, field) index of forms.paths: "not in the closed states" of a
    field with choices is asked as "in the open ones", so the count reads the index entries of
    each person's open records only, not every record they ever had.
    """
    if not user_ids:
        return {}
    stmt = (select(Record.owner_id, func.count())
            .where(Record.form_id == record.form_id, Record.deleted_at.is_(None), Record.owner_id.in_(user_ids),
                   Record.id != record.id))
    if open_spec:
        prop = record.form_version.schema["properties"].get(open_spec["field"], {})
        column = paths.value(open_spec["field"], prop, db.engine.dialect.name)
        wanted = open_spec.get("in")
        if "not_in" in open_spec and prop.get("enum"):
            open_states = [v for v in prop["enum"] if v not in open_spec["not_in"]]
            wanted = open_states if wanted is None else [v for v in wanted if v in open_states]
            stmt = stmt.where(or_(column.is_(None), column.in_(wanted)) if "in" not in open_spec
                              else column.in_(wanted))
        else:
            if "not_in" in open_spec:
                stmt = stmt.where(or_(column.is_(None), column.not_in(open_spec["not_in"])))
            if wanted is not None:
                stmt = stmt.where(column.in_(wanted))
    counts = dict(db.session.execute(stmt.group_by(Record.owner_id)).all())
    return {uid: counts.get(uid, 0) for uid in user_ids}


@jobs.kind("owner_index")
def _build_owner_index(job):
    """Build the (form, owner, field) index an assignment rule counts open records with."""
    # the job's own transaction ends first: on SQLite it would hold the lock the build needs, on
    # PostgreSQL CREATE INDEX CONCURRENTLY waits for every older transaction, this one included
    field, prop = job.params["field"], job.params.get("prop") or {}
    db.session.commit()
    job.result = {"index": paths.ensure_owner_index(db.engine, field, prop)}
    return True


@rules.saved.connect
def _index_what_assignment_counts(rule, before):
    """A rule that assigns by open records gets its index built in the queue (once per field)."""
    fields = {}

    def walk(actions):
        for action in actions:
            if action["type"] == "assign" and action.get("open"):
                fields[action["open"]["field"]] = action
            walk(action.get("actions", []))
    walk(rule.body["actions"])
    if not fields:
        return
    from ..forms import catalog
    version = catalog.current_version(catalog.get_form(rule.form_key))
    props = version.schema["properties"] if version else {}
    for name in fields:
        jobs.start("owner_index", {"field": name, "prop": {"type": props.get(name, {}).get("type", "string")}}, rule=rule)
def _team_users(team_key, role):
    stmt = select(User).where(User.active.is_(True))
    if team_key:
        stmt = stmt.join(Team, User.team_id == Team.id).where(Team.key == team_key)
    if role:
        stmt = stmt.where(User.role == role)
    return db.session.scalars(stmt.order_by(User.id)).all()


def _by_username(name):
    if not name or not isinstance(name, str):
        return []
    return db.session.scalars(select(User).where(User.username == name, User.active.is_(True))).all()


def candidates(strategy, record, ctx):
    kind = strategy["strategy"]
    if kind == "user":
        return _by_username(strategy.get("user"))
    if kind == "field_map":
        value = record.data.get(strategy["field"])
        if "map" in strategy:
            value = strategy["map"].get(str(value)) if value is not None else None
        return _by_username(value)
    if kind == "manager":
        return managers_of(record.owner or (ctx.user if ctx else None))
    pool = _team_users(strategy.get("team"), strategy.get("role", "sales"))
    if kind == "skill":
        needed = set(strategy.get("skills", []))
        if strategy.get("field"):
            value = record.data.get(strategy["field"])
            values = value if isinstance(value, list) else [value]
            mapping = strategy.get("skills_map")
            needed |= {mapping.get(str(v)) if mapping else v for v in values if v is not None} - {None}
        if not needed:
            return []
        return [u for u in pool if needed <= set(u.skills or [])]
    return pool  # least_loaded


def choose(record, action, ctx=None):
    """(user, explanation) for the first strategy with an eligible user, or (None, why not)."""
    _lock(record.form_id)
    tried = []
    exclude = record.owner_id if action.get("exclude_current") else None
    names = ctx.names(record) if ctx is not None else None
    for i, strategy in enumerate(action["strategies"]):
        label = f"{i + 1}:{strategy['strategy']}"
        if strategy.get("when") and names is not None and not expressions.truthy(strategy["when"], names):
            tried.append(f"{label} skipped (when is false)")
            continue
        pool = [u for u in candidates(strategy, record, ctx) if u.id != exclude]
        if not pool:
            tried.append(f"{label} nobody matches")
            continue
        counts = open_counts(record, [u.id for u in pool], action.get("open"))
        cap = strategy.get("cap")
        eligible = [u for u in pool if cap is None or counts[u.id] < cap]
        if not eligible:
            tried.append(f"{label} everyone at the cap of {cap}")
            continue
        marks = dict(db.session.execute(select(AssignmentMark.user_id, AssignmentMark.at).where(
            AssignmentMark.form_id == record.form_id, AssignmentMark.user_id.in_([u.id for u in eligible]))).all())
        never = utcnow().replace(year=1970)
        best = min(eligible, key=lambda u: (counts[u.id], marks.get(u.id) or never, u.id))
        mark = db.session.scalars(select(AssignmentMark).where(AssignmentMark.form_id == record.form_id,
                                                               AssignmentMark.user_id == best.id)).first()
        if mark is None:
            db.session.add(AssignmentMark(form_id=record.form_id, user_id=best.id, at=utcnow()))
        else:
            mark.at = utcnow()
        why = _("%(strategy)s: %(user)s had %(n)s open", strategy=label, user=best.username, n=counts[best.id])
        return best, "; ".join([*tried, why])
    return None, "; ".join(tried) or _("no strategy matched")
