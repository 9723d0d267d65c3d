"""Running rules: which rules an event fires, their conditions, their actions, the run log.

Rules run inside the transaction of the change that triggered them, each in a savepoint:
a failing rule is rolled back alone and logged, and never costs the user their data.
Rules that trigger rules are bounded by MAX_DEPTH and by cycle detection.
"""
import logging
from dataclasses import dataclass, field

from flask_babel import gettext as _

from .. import clock
from ..extensions import db

from . import actions, expressions, flows, rules, runstate
from .models import RuleRun

log = logging.getLogger(__name__)

MAX_DEPTH = 5


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
        zone = clock.zone()  # moments, like date-time fields: compared and subtracted by instant
        meta = {"id": record.id, "owner": record.owner.username if record.owner else None,
                "created_at": record.created_at.astimezone(zone) if record.created_at else None,
                "updated_at": record.updated_at.astimezone(zone) if record.updated_at else None}
        names = expressions.names_for(record.data, props, old=self.old if record is self.record else {},
                                      user=flows.user_dict(self.user), record=meta, event=event or self.event)
        names["created_at"] = meta["created_at"]
        names["updated_at"] = meta["updated_at"]
        names["owner"] = meta["owner"]
        return names

    def functions(self):
        return {"count": actions.count_records}


def on_save(record, action, old, user, system=False):
    """after_save hook: fire created/updated/status rules (the timers' own hook follows).

    Imported history (system) fires no rules: a blueprint's six months of demo data must not
    replay six months of reminders at once.
    """
    if system:
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


def run(rule, record, trigger, old=None, user=None, event=None, dry=False):
    """Fire one rule on one record (or none, for cron rules); returns its RuleRun."""
    chain = runstate.chain.get()
    link = (rule.id, record.id if record is not None else None)
    entry = RuleRun(rule_id=rule.id, rule_key=rule.key, rule_revision=rule.revision,
                    record_id=record.id if record is not None else None, trigger=trigger[:200],
                    depth=len(chain), dry_run=dry or runstate.is_dry())
    if link in chain:
        entry.error = _("Stopped: this rule already ran on this record earlier in the same chain (a cycle)")
        db.session.add(entry)
        return entry
    if len(chain) >= MAX_DEPTH:
        entry.error = _("Stopped: rules triggered rules more than %(n)s levels deep", n=MAX_DEPTH)
        db.session.add(entry)
        return entry
    ctx = Context(rule=rule, record=record, trigger=trigger, old=dict(old or {}), user=user, event=dict(event or {}))
    token = runstate.chain.set((*chain, link))
    savepoint = db.session.begin_nested()
    try:
        entry.matched = expressions.truthy(rule.body.get("condition"), ctx.names(), ctx.functions())
        if entry.matched:
            try:
                actions.perform_all(rule.body["actions"], ctx)
            except runstate.Stop:
                ctx.done.append({"type": "stop"})
        savepoint.commit()
    except Exception as err:  # a broken rule must not lose the user's change: roll it back alone
        savepoint.rollback()
        entry.error = _error_text(err)
        if not isinstance(err, (expressions.ExpressionError,)) and not hasattr(err, "errors"):
            log.exception("rule %s failed on record %s", rule.key, link[1])
    finally:
        runstate.chain.reset(token)
    entry.actions = ctx.done
    db.session.add(entry)
    return entry


def run_actions(rule, record, action, event, origin=None):
    """One record of a for_each walk (in a queued job): when its ``where`` holds, the nested
    actions, in a savepoint of their own. None when ``where`` is false, else what was done
    (``{"done": [...], "error": None}``) or why it failed (rolled back alone, logged)."""
    ctx = Context(rule=rule, record=origin, trigger="for_each", event=dict(event))
    token = runstate.chain.set(((rule.id, origin.id if origin is not None else None),))
    savepoint = db.session.begin_nested()
    try:
        if action.get("where") and not expressions.truthy(action["where"], ctx.names(record, ctx.event),
                                                          ctx.functions()):
            savepoint.commit()
            return None
        try:
            actions.perform_all(action["actions"], ctx, record)
        except runstate.Stop:
            pass
        savepoint.commit()
        return {"done": ctx.done, "error": None}
    except Exception as err:  # one record's failure is logged and the walk goes on
        savepoint.rollback()
        if not isinstance(err, expressions.ExpressionError) and not hasattr(err, "errors"):
            log.exception("for_each of rule %s failed on record %s", rule.key, record.id)
        return {"done": [], "error": _error_text(err)}
    finally:
        runstate.chain.reset(token)


def _error_text(err):
    if isinstance(err, expressions.ExpressionError):
        return err.message[:2000]
    if hasattr(err, "errors"):
        return "; ".join(f"{p}: {', '.join(map(str, m))}" for p, m in err.errors.items())[:2000]
    return f"{type(err).__name__}: {err}"[:2000]


def dry_run(rule, record, user=None):
    """What the rule would do to this record, with every effect rolled back afterwards."""
    outer = db.session.begin_nested()
    try:
        with runstate.dry():
            entry = run(rule, record, "dry run", old={}, user=user, dry=True)
            result = {"matched": entry.matched, "actions": list(entry.actions), "error": entry.error}
    finally:
        outer.rollback()
    return result
