"""Admin pages for workflow rules: list, edit with live checks, dry run, history, run log."""
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from .. import access, clock, inputs
from ..extensions import db
from ..forms import catalog
from ..i18n import doc_locale, pick
from ..workflow import engine, expressions, jobs, rules, simulation, timers
from ..workflow.models import Job, Rule, RuleRun
from . import bp
from .admin import admin_required

TRIGGERS = ("created", "updated", "saved", "status", "time", "cron", "manual", "scheduled")
ACTION_TEMPLATES = {
    "set": {"type": "set", "values": {"field": "expression"}},
    "status": {"type": "status", "to": "state"},
    "assign": {"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
               "strategies": [{"strategy": "least_loaded", "team": "team_key", "cap": 15}]},
    "task": {"type": "task", "to": ["owner"], "title": "…", "due": {"hours": 24}, "priority": "normal"},
    "notify": {"type": "notify", "to": ["manager"], "title": "…", "channels": ["inbox"]},
    "create_record": {"type": "create_record", "form": "form_key", "values": {"field": "expression"}},
    "update_record": {"type": "update_record", "ref": "reference_field", "values": {"field": "expression"}},
    "for_each": {"type": "for_each", "form": "form_key", "where": "expression", "actions": []},
    "schedule": {"type": "schedule", "rule": "rule_key", "after": {"days": 30}},
    "stop": {"type": "stop"},
}


def _fields_of(form_key):
    try:
        version = catalog.current_version(catalog.get_form(form_key))
    except catalog.FormNotFound:
        return []
    locale = doc_locale()
    return [(n, pick(version.ui.get("fields", {}).get(n, {}).get("label"), locale) or n, p.get("type"))
            for n, p in version.schema["properties"].items()]


@bp.get("/admin/rules")
@admin_required
def admin_rules():
    rows = db.session.scalars(select(Rule).order_by(Rule.form_key, Rule.priority, Rule.key)).all()
    forms = {f.key: f for f in catalog.all_forms()}
    return render_template("admin/rules.html", rules=rows, forms=forms)


@bp.route("/admin/rules/new", methods=["GET", "POST"], defaults={"key": None})
@bp.route("/admin/rules/<key>", methods=["GET", "POST"])
@admin_required
def admin_rule_edit(key):
    rule = rules.get(key) if key else None
    if key and rule is None:
        abort(404)
    errors = {}
    if request.method == "POST":
        body = _body_from_form(errors)
        if not errors:
            try:
                rule, changed = rules.save(body, current_user, note=request.form.get("note", ""))
            except rules.RuleInvalid as err:
                db.session.rollback()
                errors = err.errors
            else:
                db.session.commit()
                flash(_("Rule saved (revision %(n)s).", n=rule.revision) if changed else _("Nothing changed."),
                      "success")
                return redirect(url_for("web.admin_rule_edit", key=rule.key))
        flash(_("The rule was not saved; see the problems below."), "danger")
        body_json = request.form
    else:
        body_json = None
    body = rule.body if rule else {"key": "", "form": request.args.get("form", ""), "trigger": {"type": "created"},
                                   "condition": "", "actions": [], "priority": 100, "enabled": False}
    forms = [f for f in catalog.all_forms() if catalog.current_version(f) is not None]
    return render_template("admin/rule_edit.html", rule=rule, body=body, posted=body_json, errors=errors,
                           forms=forms, triggers=TRIGGERS, templates=ACTION_TEMPLATES,
                           fields={f.key: _fields_of(f.key) for f in forms},
                           revisions=rules.revisions(rule) if rule else [],
                           rule_jobs=jobs.for_rule(rule) if rule else [], job_kinds=_job_kinds(),
                           job_states=_job_states(),
                           runs=db.session.scalars(select(RuleRun).where(RuleRun.rule_id == rule.id)
                                                   .order_by(RuleRun.id.desc()).limit(50)).all() if rule else []
                           ), 422 if errors else 200


def _job_kinds():
    return {"rearm_rule": _("re-arming after a timing change"), "catch_up": _("catching up"),
            "simulate": _("simulation"), "for_each": _("for each record"), "send_report": _("sending a report"),
            "owner_index": _("building the index assignment counts with")}


def _job_states():
    return {"pending": _("waiting"), "running": _("running"), "done": _("done"), "failed": _("failed"),
            "superseded": _("replaced by a newer edit")}


def _body_from_form(errors):
    f = request.form
    body = {"key": f.get("key", "").strip(), "form": f.get("form", ""), "priority": 100,
            "enabled": f.get("enabled") == "on"}
    title = {k: v for k, v in (("zh-CN", f.get("title_zh", "").strip()), ("en", f.get("title_en", "").strip())) if v}
    if title:
        body["title"] = title
    try:
        body["priority"] = int(f.get("priority") or 100)
    except ValueError:
        errors["/priority"] = [_("Priority is a whole number")]
    if f.get("condition", "").strip():
        body["condition"] = f["condition"].strip()
    for part in ("trigger", "actions"):
        try:
            body[part] = inputs.parse_json(f.get(part) or ("[]" if part == "actions" else "{}"))
        except inputs.BadJSON as err:
            errors.update({f"/{part}{p}": m for p, m in err.errors.items()} or {f"/{part}": [err.message]})
    return body


@bp.post("/admin/rules/<key>/enable")
@admin_required
def admin_rule_enable(key):
    rule = rules.get(key) or abort(404)
    try:
        rules.set_enabled(rule, request.form.get("enabled") == "1", current_user)
    except rules.RuleInvalid as err:
        db.session.rollback()
        flash("; ".join(f"{p}: {', '.join(map(str, m))}" for p, m in err.errors.items()), "danger")
    else:
        db.session.commit()
    return redirect(url_for("web.admin_rules"))


@bp.post("/admin/rules/<key>/rollback/<int:number>")
@admin_required
def admin_rule_rollback(key, number):
    rule = rules.get(key) or abort(404)
    try:
        rules.rollback(rule, number, current_user)
    except (LookupError, rules.RuleInvalid) as err:
        db.session.rollback()
        flash(str(err), "danger")
    else:
        db.session.commit()
        flash(_("Revision %(n)s is current again.", n=number), "success")
    return redirect(url_for("web.admin_rule_edit", key=key))


@bp.post("/admin/expressions/check")
@admin_required
def admin_check_expression():
    """Live checks for the rule editor (session + CSRF, unlike the bearer-token API)."""
    data = inputs.posted_object()
    try:
        problems = expressions.check_for_form(str(data.get("form")), str(data.get("expression", "")))
    except LookupError:
        return jsonify({"ok": False, "errors": [{"message": _("Choose a form first"), "line": None, "col": None}]})
    return jsonify({"ok": not problems, "errors": [p.to_json() for p in problems]})


@bp.post("/admin/rules/<key>/dry-run")
@admin_required
def admin_rule_dry_run(key):
    rule = rules.get(key) or abort(404)
    rid = inputs.whole_number(inputs.posted_object().get("record"), 1, inputs.MAX_ID)
    record = access.get_record(current_user, rid) if rid is not None else None
    if record is None or record.form.key != rule.form_key:
        return jsonify({"error": _("Give the id of a record of form “%(form)s”", form=rule.form_key)}), 422
    return jsonify(engine.dry_run(rule, record, current_user))


@bp.post("/admin/rules/<key>/simulate")
@admin_required
def admin_rule_simulate(key):
    from datetime import date, datetime, timedelta
    rule = rules.get(key) or abort(404)
    data = inputs.posted_object()
    try:
        start, end = date.fromisoformat(str(data.get("from"))), date.fromisoformat(str(data.get("to")))
        end += timedelta(days=1)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        return jsonify({"error": _("Give a date as YYYY-MM-DD")}), 422
    since = datetime(start.year, start.month, start.day, tzinfo=clock.zone())
    until = datetime(end.year, end.month, end.day, tzinfo=clock.zone())
    job = simulation.start(rule, since, until, current_user)
    db.session.commit()  # the replay runs in the queue; the page polls the job
    return jsonify({"job": job.id, "status_url": url_for("web.admin_job", job_id=job.id)}), 202


@bp.post("/admin/rules/<key>/catch-up")
@admin_required
def admin_rule_catch_up(key):
    """Preview, or queue, the occurrences a time rule missed since a chosen day."""
    from datetime import date, datetime
    rule = rules.get(key) or abort(404)
    if rule.trigger_type != "time" or rule.timing_since is None:
        return jsonify({"error": _("Only a time rule saved since this version can catch up")}), 422
    data = inputs.posted_object()
    try:
        day = date.fromisoformat(str(data.get("since")))
    except ValueError:
        return jsonify({"error": _("Give a date as YYYY-MM-DD"), "errors": {"/since": [_("Give a date as YYYY-MM-DD")]}}), 422
    since = datetime(day.year, day.month, day.day, tzinfo=clock.zone())
    if since >= rule.timing_since:
        return jsonify({"error": _("Choose a day before the rule's timing was last set"),
                        "errors": {"/since": [_("Choose a day before the rule's timing was last set")]}}), 422
    job = timers.catch_up(rule, since, preview=data.get("preview") is not False, user=current_user)
    db.session.commit()
    return jsonify({"job": job.id, "status_url": url_for("web.admin_job", job_id=job.id)}), 202


@bp.get("/admin/jobs/<int:job_id>")
@admin_required
def admin_job(job_id):
    job = db.session.get(Job, job_id) or abort(404)
    return jsonify(jobs.as_json(job))


@bp.get("/admin/runs")
@admin_required
def admin_runs():
    stmt = select(RuleRun).order_by(RuleRun.id.desc()).limit(200)
    if request.args.get("rule"):
        stmt = stmt.where(RuleRun.rule_key == request.args["rule"])
    record = inputs.int_arg("record", None, 1, inputs.MAX_ID) if request.args.get("record") else None
    if record is not None:
        stmt = stmt.where(RuleRun.record_id == record)
    return render_template("admin/runs.html", runs=db.session.scalars(stmt).all())
