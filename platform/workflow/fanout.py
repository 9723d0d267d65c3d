"""A rule acting on every record of a query (``for_each``), done in the queue in batches.

The action itself only starts a job; the job walks the target form's live records in id
order, a batch per transaction, each record's actions in their own savepoint (one failing
record is logged and skipped, the others go on), and writes its progress on the job and a
summary line in the rule's run log. Nothing is truncated: every matching record is visited.

The ``where`` expression is narrowed in SQL where that is exact enough to be safe: parts of
it (comparisons of a field with a constant of the field's own type, ``contains`` on a list,
``and``/``or``/``not`` of those) become a prefilter that only ever lets through a superset
of the matches; the whole expression is still evaluated on every record it lets through, so
the result is the expression's, whatever part SQL could not express.
"""
import ast
import logging

from sqlalchemy import and_, false, func, not_, or_, select

from ..extensions import db
from ..forms import catalog
from ..forms.models import Record
from ..forms.queries import field_value, where_field
from . import actions, engine, expressions, jobs, runstate
from .models import Rule, RuleRun

log = logging.getLogger(__name__)
DRY_RUN_LIMIT = 50  # a dry run or simulation shows this many matches, and says so when there are more

_OPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge",
        ast.In: "in", ast.NotIn: "not_in"}
_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}


def prefilter(where, props, event, dialect):
    """A SQL condition every record matching ``where`` satisfies (None: no narrowing)."""
    if not where:
        return None
    try:
        tree = ast.parse(where, mode="eval").body
    except SyntaxError:
        return None
    return _condition(tree, props, event or {}, dialect)


def _constant(node, event):
    """The value of a constant, a list of constants, or ``event.name``; raises ValueError."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_constant(n, event) for n in node.elts]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "event":
        return event.get(node.attr)
    raise ValueError("not a constant")


def _typed(prop, value):
    kinds = _TYPES.get(prop.get("type"))
    if kinds is None or prop.get("format") in ("date", "date-time"):
        return False  # dates compare as instants in expressions: leave them to Python
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, kinds) and not (isinstance(v, bool) and bool not in kinds) for v in values)


def _condition(node, props, event, dialect):
    if isinstance(node, ast.BoolOp):
        parts = [_condition(v, props, event, dialect) for v in node.values]
        if isinstance(node.op, ast.And):
            kept = [p for p in parts if p is not None]  # a necessary condition may drop parts of an "and"
            return and_(*kept) if kept else None
        return or_(*parts) if all(p is not None for p in parts) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _exact(node.operand, props, event, dialect)
        return not_(inner) if inner is not None else None
    return _exact(node, props, event, dialect)


def _exact(node, props, event, dialect):
    """A condition exactly equivalent to the node (same records, nulls included), or None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "contains" \
            and len(node.args) == 2 and not node.keywords and isinstance(node.args[0], ast.Name):
        name = node.args[0].id
        prop = props.get(name, {})
        try:
            value = _constant(node.args[1], event)
        except ValueError:
            return None
        if name not in expressions.CONTEXT_NAMES and prop.get("type") == "array" \
                and _typed(prop.get("items", {}), value) and not isinstance(value, list):
            # two-valued: PostgreSQL's @> is NULL for a missing list, which "not" would drop
            return func.coalesce(where_field(name, prop, value, dialect), false())
        return None
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)):
        return None
    name, op = node.left.id, _OPS.get(type(node.ops[0]))
    prop = props.get(name)
    if prop is None or op is None or name in expressions.CONTEXT_NAMES:
        return None  # (a field named like owner or created_at: expressions see the record's own)
    try:
        value = _constant(node.comparators[0], event)
    except ValueError:
        return None
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not _typed(prop, value):
            return None
    elif value is None or isinstance(value, list) or not _typed(prop, value):
        return None
    # integers as numbers: JSON Schema accepts 3.0 for an integer, which PostgreSQL's integer cast refuses
    column = field_value(name, {**prop, "type": "number"} if prop.get("type") == "integer" else prop, dialect)
    # Two-valued on purpose: SQL's NULL for a missing field would make "not (…)" drop records
    # that Python (None == "b" is False, so not … is True) keeps.
    if op == "ne":
        return or_(column.is_(None), column != value)
    if op == "not_in":
        return or_(column.is_(None), column.not_in(value))
    if op == "eq":
        cond = column == value
    elif op == "in":
        cond = column.in_(value)
    elif prop.get("type") == "string":
        return None  # SQL and Python order text differently (collations): Python decides
    else:
        cond = {"lt": column < value, "le": column <= value, "gt": column > value, "ge": column >= value}[op]
    return and_(column.is_not(None), cond)


def _props(form):
    version = catalog.current_version(form)
    return version.schema["properties"] if version else {}


def candidates(form, action, event, after_id=0, limit=None):
    """The next live records of the form, in id order, that the prefilter lets through."""
    stmt = select(Record).where(Record.form_id == form.id, Record.deleted_at.is_(None), Record.id > after_id)
    cond = prefilter(action.get("where"), _props(form), event, db.engine.dialect.name)
    if cond is not None:
        stmt = stmt.where(cond)
    stmt = stmt.order_by(Record.id)
    return db.session.scalars(stmt.limit(limit) if limit else stmt).all()


def count_candidates(form, action, event):
    cond = prefilter(action.get("where"), _props(form), event, db.engine.dialect.name)
    stmt = select(func.count(Record.id)).where(Record.form_id == form.id, Record.deleted_at.is_(None))
    return db.session.scalar(stmt.where(cond) if cond is not None else stmt)


def matches(action, ctx, item, event):
    return not action.get("where") or expressions.truthy(action["where"], ctx.names(item, event), ctx.functions())


@actions.register("for_each")
def _for_each(action, ctx, record):
    start(action, ctx, record, _path(ctx.rule.body["actions"], action))


def _path(actions_, wanted, base=()):
    """Where an action sits in its rule (indexes through nested for_each), for the queued job."""
    for i, action in enumerate(actions_):
        if action is wanted:
            return (*base, i)
        found = _path(action.get("actions", []), wanted, (*base, i)) if action.get("type") == "for_each" else None
        if found:
            return found
    raise LookupError("action not in its rule")


def start(action, ctx, record, path):
    """The for_each action: queue the walk (a dry run walks the first matches here, and says
    how many it did not show)."""
    form = catalog.get_form(action["form"])
    event = dict(record.data) if record is not None else dict(ctx.event)
    if record is not None:
        event["id"] = record.id
    if runstate.is_dry():
        shown, more = [], False
        for item in candidates(form, action, event):
            if matches(action, ctx, item, event):
                if len(shown) == DRY_RUN_LIMIT:
                    more = True
                    break
                shown.append(item.id)
                saved, ctx.event = ctx.event, event
                try:
                    actions.perform_all(action["actions"], ctx, item)
                finally:
                    ctx.event = saved
        ctx.done.append({"type": "for_each", "form": form.key, "records": shown, "more": more})
        return None
    job = jobs.start("for_each", {"revision": ctx.rule.revision, "path": list(path), "event": event,
                                  "record": record.id if record is not None else None},
                     rule=ctx.rule, user=ctx.user)
    ctx.done.append({"type": "for_each", "form": form.key, "job": job.id})
    return job


def _action_at(rule, path):
    actions = rule.body["actions"]
    action = None
    for i in path:
        action = actions[i]
        actions = action.get("actions", [])
    return action


@jobs.kind("for_each")
def _walk(job):
    rule = db.session.get(Rule, job.rule_id)
    if rule is None or rule.revision != job.params["revision"]:
        job.status = "superseded"  # the rule changed since: its old action is not run
        return True
    action = _action_at(rule, job.params["path"])
    form = catalog.get_form(action["form"])
    event = job.params["event"]
    if job.total is None:
        job.total = count_candidates(form, action, event)
    result = dict(job.result or {"matched": 0, "errors": 0, "first_error": None})
    batch = candidates(form, action, event, job.state.get("cursor", 0), jobs.BATCH)
    origin = db.session.get(Record, job.params["record"]) if job.params.get("record") else None
    for item in batch:
        outcome = engine.run_actions(rule, item, action, event, origin=origin)
        if outcome is None:
            continue
        result["matched"] += 1
        if outcome.get("error"):
            result["errors"] += 1
            result["first_error"] = result["first_error"] or {"record": item.id, "error": outcome["error"]}
    job.done += len(batch)
    job.result = result
    if batch:
        job.state = {"cursor": batch[-1].id}
    finished = len(batch) < jobs.BATCH
    if finished:
        db.session.add(RuleRun(rule_id=rule.id, rule_key=rule.key, rule_revision=rule.revision,
                               record_id=job.params.get("record"), trigger=f"for_each (job {job.id})", matched=None,
                               actions=[{"type": "for_each", "form": form.key, "job": job.id, **result}]))
    return finished
