"""Running rules: which rules an event fires, their conditions, their actions, the run log.

Rules run inside the transaction of the change that triggered them, each in a savepoint:
a failing rule is rolled back alone and logged, and never costs the user their data.
Rules that trigger rules are bounded by MAX_DEPTH and by cycle detection.
"""
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from flask_babel import gettext as _

from ..extensions import db

from . import expressions, flows, rules
from .models import RuleRun

log = logging.getLogger(__name__)

MAX_DEPTH = 5
_chain = ContextVar("formflow_rule_chain", default=())
_dry = ContextVar("formflow_dry_run", default=False)


class Stop(Exception):
    """The stop action: no further actions of this rule."""


@dataclass
class Context:
    rule: object
    record: object
    trigger: str
    old: dict = field(default_factory=dict)
    user: object = None
    event: dict = field(default_factory=dict)
    done: list = field(default_factory=list)

    def names(self, record=None, event=None):
        record = record if record is not None else self.record
        if record is None:
            return expressions.names_for({}, {}, user=flows.user_dict(self.user), event=event or self.event)
        props = record.form_version.schema["properties"]
        meta = {"id": record.id, "owner": record.owner.username if record.owner else None,
                "created_at": record.created_at.isoformat() if record.created_at else None,
                "updated_at": record.updated_at.isoformat() if record.updated_at else None}
        names = expressions.names_for(record.data, props, old=self.old if record is self.record else {},
                                      user=flows.user_dict(self.user), record=meta, event=event or self.event)
        names["created_at"] = meta["created_at"]
        names["updated_at"] = meta["updated_at"]
        names["owner"] = meta["owner"]
        return names

    def functions(self):
        from .actions import count_records
        return {"count": count_records}


def on_save(record, action, old, user, system=False):
    """after_save hook: fire created/updated/status rules, then refresh the record's timers.

    Imported history (system) fires no rules and arms only timers still in the future: a
    blueprint's six months of demo data must not replay six months of reminders at once.
    """
    from . import timers
    if system:
        timers.schedule_for(record, future_only=True)
        return
    form_key = record.form.key
    if action == "create":
        for rule in rules.enabled_rules(form_key, ["created", "saved"]):
            run(rule, record, "created", old={}, user=user)
    if action in ("create", "update"):
        changed = {k for k in set(old) | set(record.data) if old.get(k) != record.data.get(k)}
        if action == "update":  # "saved" = created, or later changed in one of its fields
            for rule in rules.enabled_rules(form_key, ["updated", "saved"]):
                fields = rule.body["trigger"].get("fields")
                if not fields or changed & set(fields):
                    run(rule, record, "updated", old=old, user=user)
        for rule in rules.enabled_rules(form_key, ["status"]):
            t = rule.body["trigger"]
            name = t["field"]
            if name in changed and (not t.get("from") or old.get(name) in t["from"]) \
                    and (not t.get("to") or record.data.get(name) in t["to"]):
                run(rule, record, f"status {old.get(name)} → {record.data.get(name)}", old=old, user=user)
        timers.schedule_for(record)


def run(rule, record, trigger, old=None, user=None, event=None, dry=False):
    """Fire one rule on one record (or none, for cron rules); returns its RuleRun."""
    chain = _chain.get()
    link = (rule.id, record.id if record is not None else None)
    entry = RuleRun(rule_id=rule.id, rule_key=rule.key, rule_revision=rule.revision,
                    record_id=record.id if record is not None else None, trigger=trigger[:200],
                    depth=len(chain), dry_run=dry or _dry.get())
    if link in chain:
        entry.error = _("Stopped: this rule already ran on this record earlier in the same chain (a cycle)")
        db.session.add(entry)
        return entry
    if len(chain) >= MAX_DEPTH:
        entry.error = _("Stopped: rules triggered rules more than %(n)s levels deep", n=MAX_DEPTH)
        db.session.add(entry)
        return entry
    ctx = Context(rule=rule, record=record, trigger=trigger, old=dict(old or {}), user=user, event=dict(event or {}))
    token = _chain.set((*chain, link))
    savepoint = db.session.begin_nested()
    try:
        entry.matched = expressions.truthy(rule.body.get("condition"), ctx.names(), ctx.functions())
        if entry.matched:
            from . import actions
            try:
                actions.perform_all(rule.body["actions"], ctx)
            except Stop:
                ctx.done.append({"type": "stop"})
        savepoint.commit()
    except Exception as err:  # a broken rule must not lose the user's change: roll it back alone
        savepoint.rollback()
        entry.error = _error_text(err)
        if not isinstance(err, (expressions.ExpressionError,)) and not hasattr(err, "errors"):
            log.exception("rule %s failed on record %s", rule.key, link[1])
    finally:
        _chain.reset(token)
    entry.actions = ctx.done
    db.session.add(entry)
    return entry


def run_actions(rule, record, action, event, origin=None):
    """One record of a for_each walk (in a queued job): when its ``where`` holds, the nested
    actions, in a savepoint of their own. None when ``where`` is false, else what was done
    (``{"done": [...], "error": None}``) or why it failed (rolled back alone, logged)."""
    ctx = Context(rule=rule, record=origin, trigger="for_each", event=dict(event))
    token = _chain.set(((rule.id, origin.id if origin is not None else None),))
    savepoint = db.session.begin_nested()
    try:
        if action.get("where") and not expressions.truthy(action["where"], ctx.names(record, ctx.event),
                                                          ctx.functions()):
            savepoint.commit()
            return None
        from . import actions
        try:
            actions.perform_all(action["actions"], ctx, record)
        except Stop:
            pass
        savepoint.commit()
        return {"done": ctx.done, "error": None}
    except Exception as err:  # one record's failure is logged and the walk goes on
        savepoint.rollback()
        if not isinstance(err, expressions.ExpressionError) and not hasattr(err, "errors"):
            log.exception("for_each of rule %s failed on record %s", rule.key, record.id)
        return {"done": [], "error": _error_text(err)}
    finally:
        _chain.reset(token)


def _error_text(err):
    if isinstance(err, expressions.ExpressionError):
        return err.message[:2000]
    if hasattr(err, "errors"):
        return "; ".join(f"{p}: {', '.join(map(str, m))}" for p, m in err.errors.items())[:2000]
    return f"{type(err).__name__}: {err}"[:2000]


def dry_run(rule, record, user=None):
    """What the rule would do to this record, with every effect rolled back afterwards."""
    outer = db.session.begin_nested()
    token = _dry.set(True)
    try:
        entry = run(rule, record, "dry run", old={}, user=user, dry=True)
        result = {"matched": entry.matched, "actions": list(entry.actions), "error": entry.error}
    finally:
        _dry.reset(token)
        outer.rollback()
    return result


def is_dry():
    return _dry.get()


@contextmanager
def dry():
    """Within this block rules run as dry runs: no outbox, nothing queued."""
    token = _dry.set(True)
    try:
        yield
    finally:
        _dry.reset(token)


def init_app(app):
    from ..forms import definitions, records
    if flows.enforce not in records.before_save:
        records.before_save.append(flows.enforce)
    if flows.track not in records.after_save:
        records.after_save.append(flows.track)
    if on_save not in records.after_save:
        records.after_save.append(on_save)
    from . import handover
    handover.init_app(app)
    if flows.check_guards not in definitions.extra_checks:
        definitions.extra_checks.append(flows.check_guards)
