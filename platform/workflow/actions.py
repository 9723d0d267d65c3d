"""What rules do: set values, change state, assign, create tasks, notify, create or update
records, act on each record of a query, schedule another rule, stop."""
import logging
import re
from datetime import date, datetime


from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from .. import clock
from ..extensions import db
from ..forms import catalog, records
from ..forms.models import Record
from ..forms.queries import where_field
from ..people.models import User
from . import assignment, expressions, handover, jobs, outbox, runstate
from .audience import recipients
from .durations import later
from .models import DueEntry, Notification, Rule, RuleRun, Task

def perform_all(actions, ctx, record=None):
    for action in actions:
        perform(action, ctx, record)


def perform(action, ctx, record=None):
    record = record if record is not None else ctx.record
    handler = HANDLERS[action["type"]]
    return handler(action, ctx, record)


def _needs_record(record, kind):
    if record is None:
        raise ValueError(f"the {kind} action needs a record (cron rules act through for_each)")


def _values(action, names, ctx):
    """Evaluate an action's field values; a moment (``now``) is stored as a form stores one: ISO
    text in Asia/Shanghai to the minute, so saving the form again does not change it."""
    out = {}
    for name, source in action["values"].items():
        value = expressions.evaluate(source, names, ctx.functions())
        if isinstance(value, datetime):
            value = value.astimezone(clock.zone()).replace(second=0, microsecond=0).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        out[name] = value
    return out


def _set(action, ctx, record):
    _needs_record(record, "set")
    names = ctx.names(record)
    values = _values(action, names, ctx)
    records.update(record, values, record.version, None)
    ctx.done.append({"type": "set", "record": record.id, "values": values})


def _status(action, ctx, record):
    _needs_record(record, "status")
    flow = (record.form_version.settings or {}).get("status_flow") or {}
    field = flow.get("field", "status")
    before = record.data.get(field)
    records.update(record, {field: action["to"]}, record.version, None)
    ctx.done.append({"type": "status", "record": record.id, "from": before, "to": action["to"]})


log = logging.getLogger(__name__)
ASSIGN_ATTEMPTS = 2  # a second try after a database error (a deadlock, a lost race)


def _assign(action, ctx, record):
    """Choose and set the owner. It never ends silently without one: a database error (a lost
    race, a deadlock) is tried once more, and when nobody is found or the assignment fails the
    managers are told (handover.escalate); the rest of the rule goes on either way."""
    _needs_record(record, "assign")
    before = record.owner.username if record.owner else None
    user, why, failures, failed = None, "", [], None
    if action.get("max_times") and _assignments_by(ctx.rule, record) >= action["max_times"]:
        # an SLA that reassigns from a fresh window would pass an untouched record round for ever
        why = _("Already assigned %(n)s times by this rule: a person decides now", n=action["max_times"])
        done = {"type": "assign", "record": record.id, "from": before, "owner": None, "why": why,
                "escalated_to": handover.escalate(record, why, ctx.user, ctx.rule.key)}
        ctx.done.append(done)
        return
    for _attempt in range(ASSIGN_ATTEMPTS):
        failed = None
        savepoint = db.session.begin_nested()
        try:
            user, why = assignment.choose(record, action, ctx)
            if user is not None:
                records.update(record, {}, record.version, None, owner=user)
            savepoint.commit()
            break
        except Exception as err:  # rolled back alone: the record keeps its owner, the rule goes on
            savepoint.rollback()
            user, failed = None, err
            failures.append(err)
            if not isinstance(err, expressions.ExpressionError):
                log.error("assignment failed on record %s (rule %s)", record.id, ctx.rule.key, exc_info=err)
            if not isinstance(err, DBAPIError):  # only a database error is worth a second try
                break
    done = {"type": "assign", "record": record.id, "from": before, "owner": user.username if user else None,
            "why": why}
    if user is not None:
        if failures:  # the run log shows the retry
            done["retried_after"] = _failure_text(failures[0])
        ctx.done.append(done)
        return
    if failed is not None:  # else the last attempt ran and found nobody
        done["error"] = _failure_text(failed)
    done["escalated_to"] = handover.escalate(record, done.get("error") or why, ctx.user, ctx.rule.key)
    ctx.done.append(done)


def _assignments_by(rule, record):
    """How many times this rule gave the record an owner (from the run log)."""
    runs = db.session.scalars(select(RuleRun.actions).where(RuleRun.rule_id == rule.id, RuleRun.record_id == record.id,
                                                            RuleRun.dry_run.is_(False))).all()
    return sum(1 for done in runs for a in done or () if a.get("type") == "assign" and a.get("owner"))


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


def render(template, ctx, record):
    """Fill {field} placeholders with display values; nothing else is interpreted."""
    if not template:
        return ""
    from ..forms.rendering import display_value
    from ..i18n import doc_locale
    names = ctx.names(record) if record is not None else ctx.names()

    def sub(m):
        key = m.group(1)
        if key.startswith("event."):
            return str(ctx.event.get(key[6:], ""))
        if key == "owner":
            return record.owner.display_name if record is not None and record.owner else ""
        if key == "id":
            return str(record.id) if record is not None else ""
        if record is not None and key in record.form_version.schema["properties"]:
            # the stored value: expressions see dates as values, display_value reads the stored text
            return display_value(record.data.get(key), key, record.form_version, doc_locale())
        value = names.get(key)
        return "" if value is None else str(value)
    return _PLACEHOLDER.sub(sub, template)


def _task(action, ctx, record):
    due = later(action["due"]) if action.get("due") else None
    title, body = render(action["title"], ctx, record), render(action.get("body"), ctx, record)
    made = []
    for user in recipients(action["to"], ctx, record):
        db.session.add(Task(record_id=record.id if record is not None else None, assignee_id=user.id, title=title[:200],
                            body=body[:2000], priority=action.get("priority", "normal"), due_at=due,
                            rule_key=ctx.rule.key))
        made.append(user.username)
    ctx.done.append({"type": "task", "record": record.id if record is not None else None, "to": made,
                     "title": title, "due": due.isoformat() if due else None, "priority": action.get("priority", "normal")})


def _notify(action, ctx, record):
    channels = action.get("channels") or ["inbox"]
    title, body = render(action["title"], ctx, record), render(action.get("body"), ctx, record)
    users = recipients(action.get("to", []), ctx, record) if action.get("to") else []
    rid = record.id if record is not None else None
    base = f"{ctx.rule.key}:{ctx.rule.revision}:{rid}:{clock.now().isoformat()}"
    done = {"type": "notify", "record": rid, "title": title, "to": [u.username for u in users], "channels": channels}
    if "inbox" in channels:
        for u in users:
            db.session.add(Notification(user_id=u.id, record_id=rid, title=title[:200], body=body[:2000],
                                        rule_key=ctx.rule.key))
    if "email" in channels:
        for u in users:
            address = (u.email or "").strip()
            if address:
                outbox.add("email", f"{base}:email:{u.username}", {"to": address, "subject": title, "body": body})
    if "webhook" in channels and action.get("webhook"):
        hook = action["webhook"]
        outbox.add("webhook", f"{base}:webhook", {"url": hook["url"], "format": hook.get("format", "json"),
                                                   "secret": hook.get("secret"), "title": title, "body": body,
                                                   "record": rid, "rule": ctx.rule.key})
    ctx.done.append(done)


def _create_record(action, ctx, record):
    form = catalog.get_form(action["form"])
    names = ctx.names(record) if record is not None else ctx.names()
    values = _values(action, names, ctx)
    owner_spec = action.get("owner", "owner")
    owner = None
    if owner_spec == "owner" and record is not None:
        owner = record.owner
    elif owner_spec.startswith("user:"):
        owner = db.session.scalars(select(User).where(User.username == owner_spec[5:])).first()
    # A real record: validated, held to its form's status flow, and firing its own rules (the
    # chain's depth and cycle limits bound rules that create records that fire rules).
    new = records.create(form, values, None, owner=owner)
    ctx.done.append({"type": "create_record", "form": form.key, "record": new.id})


def _update_record(action, ctx, record):
    _needs_record(record, "update_record")
    target_id = record.data.get(action["ref"])
    target = db.session.get(Record, target_id) if isinstance(target_id, int) else None
    if target is None or target.deleted_at is not None:
        ctx.done.append({"type": "update_record", "ref": action["ref"], "record": None})
        return
    names = ctx.names(record)
    values = _values(action, names, ctx)
    records.update(target, values, target.version, None)
    ctx.done.append({"type": "update_record", "record": target.id, "values": values})


def _schedule(action, ctx, record):
    target = db.session.scalars(select(Rule).where(Rule.key == action["rule"])).first()
    if target is None:
        raise ValueError(f"no rule {action['rule']!r}")
    due = later(action["after"])
    rid = record.id if record is not None else None
    entry = db.session.scalars(select(DueEntry).where(DueEntry.rule_id == target.id,
                                                      DueEntry.record_id == rid)).first()
    if entry is None:
        db.session.add(DueEntry(rule_id=target.id, record_id=rid, due_at=due, payload={"by": ctx.rule.key}))
    else:
        entry.due_at = due
    ctx.done.append({"type": "schedule", "rule": target.key, "record": rid, "due": due.isoformat()})


def _send_report(action, ctx, record):
    """Deliver a saved report to each recipient's own view (row-level access), in the queue."""
    from ..reports import store
    report = store.get(action["report"])
    if report is None:
        raise ValueError(f"no report {action['report']!r}")
    channels = action.get("channels") or ["inbox"]
    to = [u.username for u in recipients(action.get("to", []), ctx, record)]
    done = {"type": "send_report", "report": report.key, "to": to, "channels": channels}
    if not runstate.is_dry():
        params = {"report": report.key, "to": to, "channels": channels, "rule": ctx.rule.key,
                  "base": f"{ctx.rule.key}:{report.key}:{clock.now().isoformat()}", "as": action.get("as"),
                  "webhook": action.get("webhook") if "webhook" in channels else None}
        done["job"] = jobs.start("send_report", params, rule=ctx.rule, user=ctx.user).id
    ctx.done.append(done)


def _stop(action, ctx, record):
    raise runstate.Stop()


# The registry of action types: rule.schema.json describes each one's definition, and a part of the
# workflow that owns an action elsewhere registers its handler here (fanout: for_each).
HANDLERS = {"set": _set, "status": _status, "assign": _assign, "task": _task, "notify": _notify,
            "create_record": _create_record, "update_record": _update_record, "schedule": _schedule,
            "send_report": _send_report, "stop": _stop}


def register(kind):
    """Declare the handler of an action type: ``fn(action, ctx, record)``."""
    def deco(fn):
        HANDLERS[kind] = fn
        return fn
    return deco


def count_records(form_key, filters=None):
    """count(form, {field: value, ...}) for expressions: live records of a form matching values."""
    try:
        form = catalog.get_form(form_key)
    except catalog.FormNotFound:
        raise ValueError(_("There is no form “%(name)s”", name=form_key)) from None
    version = catalog.current_version(form)
    props = version.schema["properties"]
    stmt = select(func.count(Record.id)).where(Record.form_id == form.id, Record.deleted_at.is_(None))
    dialect = db.engine.dialect.name
    for name, value in (filters or {}).items():
        if name == "owner":
            stmt = stmt.where(Record.owner_id.in_(select(User.id).where(User.username == value)))
        elif name in props:
            stmt = stmt.where(where_field(name, props[name], value, dialect))
        else:
            raise ValueError(_("The form has no field “%(name)s”", name=name))
    return db.session.scalar(stmt)


def _failure_text(err):
    """An assignment failure as the run log shows it: expression errors in the user's words."""
    if isinstance(err, expressions.ExpressionError):
        return err.message[:500]
    return f"{type(err).__name__}: {err}"[:500]
