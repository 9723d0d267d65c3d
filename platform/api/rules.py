"""Workflow rules over the API (admins), expression checks, manual rules and run logs."""
from datetime import date, datetime, timedelta

from flask import abort, g, jsonify, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from .. import access, clock, inputs
from ..extensions import db
from ..workflow import engine, expressions, jobs, manual, rules, simulation
from ..workflow.models import RuleRun
from . import bp, serialize
from .auth import invalid, json_body, problem, require_admin

RULE_FIELDS = ("key", "title", "description", "form", "trigger", "condition", "actions", "priority", "enabled")


def rule_json(rule):
    return {**rule.body, "revision": rule.revision, "updated_at": serialize.iso(rule.updated_at)}


def run_json(run):
    return {"id": run.id, "rule": run.rule_key, "revision": run.rule_revision, "record": run.record_id,
            "trigger": run.trigger, "matched": run.matched, "actions": run.actions, "error": run.error,
            "depth": run.depth, "at": serialize.iso(run.at)}


def _rule_or_404(key):
    rule = rules.get(key)
    if rule is None:
        abort(404)
    return rule


@bp.get("/rules")
def list_rules():
    require_admin()
    form = request.args.get("form")
    rows = [r for r in db.session.scalars(select(rules.Rule).order_by(rules.Rule.form_key, rules.Rule.priority,
                                                                        rules.Rule.key)) if not form or r.form_key == form]
    return jsonify({"rules": [rule_json(r) for r in rows]})


@bp.get("/rules/<key>")
def get_rule(key):
    require_admin()
    return jsonify(rule_json(_rule_or_404(key)))


def _save(body, status):
    try:
        rule, _changed = rules.save(body, g.user, note="api")
    except rules.RuleInvalid as err:
        db.session.rollback()
        return invalid(err.errors)
    db.session.commit()
    response = jsonify(rule_json(rule))
    response.status_code = status
    return response


@bp.post("/rules")
def create_rule():
    require_admin()
    body = json_body(RULE_FIELDS)
    if isinstance(body.get("key"), str) and rules.get(body["key"]) is not None:
        return problem(409, _("A rule with this key exists; use PUT to change it."))
    return _save(body, 201)


@bp.put("/rules/<key>")
def update_rule(key):
    require_admin()
    _rule_or_404(key)
    body = json_body(RULE_FIELDS)
    if body.get("key", key) != key:
        return invalid({"/key": [_("The key cannot change")]})
    return _save({**body, "key": key}, 200)


@bp.post("/rules/<key>/dry-run")
def dry_run_rule(key):
    require_admin()
    rule = _rule_or_404(key)
    body = json_body(("record",))
    rid = body.get("record")
    rid = inputs.whole_number(rid, 1, inputs.MAX_ID) if isinstance(rid, int) else None
    record = access.get_record(g.user, rid) if rid is not None else None
    if record is None or record.form.key != rule.form_key:
        return invalid({"/record": [_("Give the id of a record of form “%(form)s”", form=rule.form_key)]})
    return jsonify(engine.dry_run(rule, record, g.user))


@bp.post("/rules/<key>/simulate")
def simulate_rule(key):
    require_admin()
    rule = _rule_or_404(key)
    body = json_body(("from", "to"))
    try:
        since = _day(body.get("from"), "/from")
        until = _day(body.get("to"), "/to", days=1)
    except ValueError as err:
        return invalid({str(err): [_("Give a date as YYYY-MM-DD")]})
    job = simulation.start(rule, since, until, g.user)
    db.session.commit()
    response = jsonify(jobs.as_json(job))
    response.status_code = 202  # the replay runs in the queue; poll the job
    response.headers["Location"] = url_for("api.get_job", job_id=job.id)
    return response


def _day(value, where, days=0):
    """The start of a day (plus ``days``) in the business time zone; ValueError names where."""
    try:
        d = date.fromisoformat(str(value)) + timedelta(days=days)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        raise ValueError(where) from None
    return datetime(d.year, d.month, d.day, tzinfo=clock.zone())


@bp.get("/rules/<key>/runs")
def rule_runs(key):
    require_admin()
    rule = _rule_or_404(key)
    rows = db.session.scalars(select(RuleRun).where(RuleRun.rule_id == rule.id).order_by(RuleRun.id.desc())
                              .limit(inputs.int_arg("limit", 100, 1, 1000))).all()
    return jsonify({"runs": [run_json(r) for r in rows]})


@bp.get("/records/<int:record_id>/runs")
def record_runs(record_id):
    record = access.get_record_or_404(g.user, record_id, include_deleted=True)
    rows = db.session.scalars(select(RuleRun).where(RuleRun.record_id == record.id).order_by(RuleRun.id)).all()
    return jsonify({"runs": [run_json(r) for r in rows]})


@bp.post("/records/<int:record_id>/rules/<key>")
def press_rule(record_id, key):
    record = access.get_record_or_404(g.user, record_id)
    run = manual.press(g.user, record, key)
    if run is None:
        abort(404)
    db.session.commit()
    return jsonify(run_json(run))


@bp.post("/expressions/check")
def check_expression():
    body = json_body(("form", "expression"))
    if not isinstance(body.get("expression"), str):
        return invalid({"/expression": [_("Give the expression as text")]})
    try:
        problems = expressions.check_for_form(str(body.get("form")), body["expression"])
    except LookupError:
        return invalid({"/form": [_("There is no form “%(name)s”", name=body.get("form"))]})
    return jsonify({"ok": not problems, "errors": [p.to_json() for p in problems]})
