"""Rules as data: checking a definition against its form, saving it with revisions, rolling back."""
import json
from importlib import resources

from flask_babel import gettext as _
from blinker import Namespace
from huey import crontab
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from ..extensions import db
from ..forms import catalog
from ..forms.definitions import DefinitionError
from ..forms.pointers import pointer, problems
from ..types import utcnow
from . import expressions
from .models import Rule, RuleRevision

# Sent after a rule is saved, in the saving transaction: saved.send(rule, before=previous body or None).
# The timers re-arm a rule whose timing changed.
saved = Namespace().signal("rule-saved")

META = Draft202012Validator(json.loads(resources.files("formflow.workflow").joinpath("rule.schema.json")
                                       .read_text("utf-8")))


class RuleInvalid(DefinitionError):
    """A rule definition was refused; ``errors`` maps JSON pointers to messages."""


def _props(form_key):
    form = catalog.get_form(form_key)
    version = catalog.current_version(form)
    return version.schema["properties"] if version else {}


def check(body, known_rules=()):
    """Every problem with a rule definition, by JSON pointer; raises RuleInvalid.

    Expressions are checked against the form's schema (syntax, unknown fields, type
    mismatches) with their column, so a rule cannot be saved in a state that would fail.
    """
    errors = {}

    def add(ptr, msg):
        errors.setdefault(ptr, []).append(msg)

    for ptr, message in problems(META, body):
        add(ptr, _("Not a valid rule: %(detail)s", detail=message[:300]))
    if errors:
        raise RuleInvalid(errors)
    try:
        props = _props(body["form"])
    except catalog.FormNotFound:
        raise RuleInvalid({"/form": [_("There is no form “%(name)s”", name=body["form"])]}) from None

    def expr(ptr, text, fields, extra=()):
        for problem in expressions.check(text, fields, extra):
            msg = problem.message if not problem.col else _("%(message)s (column %(col)s)",
                                                            message=problem.message, col=problem.col)
            add(ptr, msg)

    trigger = body["trigger"]
    if trigger["type"] == "cron":
        try:
            crontab(*trigger["schedule"].split())
        except (ValueError, TypeError) as err:
            add("/trigger/schedule", _("Not a valid cron schedule: %(detail)s", detail=str(err)))
    if trigger["type"] == "time" and isinstance(trigger["from"], str) and trigger["from"] not in (
            "created_at", "updated_at", "assigned_at") and trigger["from"] not in props:
        add("/trigger/from", _("The form has no field “%(name)s”", name=trigger["from"]))
    if trigger["type"] in ("updated", "saved"):
        for i, name in enumerate(trigger.get("fields", [])):
            if name not in props:
                add(f"/trigger/fields/{i}", _("The form has no field “%(name)s”", name=name))
    if trigger["type"] == "status" and trigger["field"] not in props:
        add("/trigger/field", _("The form has no field “%(name)s”", name=trigger["field"]))
    if body.get("condition"):
        expr("/condition", body["condition"], props)
    _check_actions(body["actions"], ["actions"], props, add, expr, body["form"], set(known_rules))
    if errors:
        raise RuleInvalid(errors)


def _check_actions(actions, base, props, add, expr, form_key, known_rules):
    for i, action in enumerate(actions):
        at = [*base, i]
        kind = action["type"]
        if kind in ("set", "create_record", "update_record"):
            target_props = props
            if kind == "create_record":
                try:
                    target_props = _props(action["form"])
                except catalog.FormNotFound:
                    add(pointer([*at, "form"]), _("There is no form “%(name)s”", name=action["form"]))
                    continue
            if kind == "update_record":
                ref = props.get(action["ref"], {})
                if not ref.get("x-reference"):
                    add(pointer([*at, "ref"]), _("“%(name)s” is not a reference field", name=action["ref"]))
                    continue
                target_props = _props(ref["x-reference"])
            for name, text in action["values"].items():
                if name not in target_props:
                    add(pointer([*at, "values", name]), _("The form has no field “%(name)s”", name=name))
                expr(pointer([*at, "values", name]), text, props)
        elif kind == "status":
            pass
        elif kind == "assign":
            for j, s in enumerate(action["strategies"]):
                if s.get("when"):
                    expr(pointer([*at, "strategies", j, "when"]), s["when"], props)
                if s.get("field") and s["field"] not in props:
                    add(pointer([*at, "strategies", j, "field"]), _("The form has no field “%(name)s”", name=s["field"]))
            if action.get("open") and action["open"]["field"] not in props:
                add(pointer([*at, "open", "field"]), _("The form has no field “%(name)s”", name=action["open"]["field"]))
        elif kind == "for_each":
            try:
                inner = _props(action["form"])
            except catalog.FormNotFound:
                add(pointer([*at, "form"]), _("There is no form “%(name)s”", name=action["form"]))
                continue
            if action.get("where"):
                expr(pointer([*at, "where"]), action["where"], inner)
            _check_actions(action["actions"], [*at, "actions"], inner, add, expr, action["form"], known_rules)
        elif kind == "send_report":
            from ..reports import store
            if store.get(action["report"]) is None:
                add(pointer([*at, "report"]), _("There is no report “%(name)s”", name=action["report"]))
            if "webhook" in (action.get("channels") or []) and not action.get("as"):
                add(pointer([*at, "as"]), _("Name the user whose view of the report the webhook receives"))
        elif kind == "schedule":
            if action["rule"] not in known_rules and \
                    db.session.scalar(select(Rule.id).where(Rule.key == action["rule"])) is None:
                add(pointer([*at, "rule"]), _("There is no rule “%(name)s”", name=action["rule"]))


def _columns(rule, body):
    rule.form_key = body["form"]
    rule.trigger_type = body["trigger"]["type"]
    rule.priority = body.get("priority", 100)
    rule.enabled = body.get("enabled", True)
    rule.body = body
    rule.updated_at = utcnow()


def save(body, user=None, note="", blueprint_key=None, known_rules=()):
    """Create or change a rule after checking it; every change adds a revision.

    Returns (rule, changed).
    """
    check(body, known_rules)
    rule = db.session.scalars(select(Rule).where(Rule.key == body["key"])).first()
    if rule is not None and rule.body == body:
        return rule, False
    before = dict(rule.body) if rule is not None else None
    if rule is None:
        rule = Rule(key=body["key"], blueprint_key=blueprint_key, revision=0)
        db.session.add(rule)
    _columns(rule, body)
    rule.revision = (rule.revision or 0) + 1
    db.session.flush()
    db.session.add(RuleRevision(rule_id=rule.id, number=rule.revision, body=body,
                                user_id=user.id if user else None, note=note[:200]))
    saved.send(rule, before=before)
    db.session.flush()
    return rule, True


def set_enabled(rule, enabled, user=None):
    body = {**rule.body, "enabled": bool(enabled)}
    return save(body, user, note=_("enabled") if enabled else _("disabled"))[0]


def rollback(rule, number, user=None):
    """Make an earlier revision current again (as a new revision)."""
    rev = db.session.scalars(select(RuleRevision).where(RuleRevision.rule_id == rule.id,
                                                        RuleRevision.number == number)).first()
    if rev is None:
        raise LookupError(number)
    return save(dict(rev.body), user, note=_("restored revision %(n)s", n=number))[0]


def revisions(rule):
    return db.session.scalars(select(RuleRevision).where(RuleRevision.rule_id == rule.id)
                              .order_by(RuleRevision.number.desc())).all()


def get(key):
    return db.session.scalars(select(Rule).where(Rule.key == key)).first()


def enabled_rules(form_key, trigger_types):
    return db.session.scalars(select(Rule).where(Rule.form_key == form_key, Rule.enabled.is_(True),
                                                 Rule.trigger_type.in_(trigger_types))
                              .order_by(Rule.priority, Rule.id)).all()


def count():
    return db.session.scalar(select(func.count(Rule.id)))
