"""What rules do: set values, change state, assign, create tasks, notify, create or update
records, act on each record of a query, schedule another rule, stop."""
import re
from datetime import date, datetime, timedelta


from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import clock
from ..extensions import db
from ..forms import catalog, records
from ..forms.models import Record
from ..forms.queries import where_field
from ..people.models import User
from . import assignment, expressions, outbox
from .models import DueEntry, Notification, Rule, Task

FOR_EACH_LIMIT = 5000


def perform_all(actions, ctx, record=None):
    for action in actions:
        perform(action, ctx, record)


def perform(action, ctx, record=None):
    record = record if record is not None else ctx.record
    handler = HANDLERS[action["type"]]
    return handler(action, ctx, record)


def duration(spec):
    spec = spec or {}
    return timedelta(minutes=spec.get("minutes", 0), hours=spec.get("hours", 0), days=spec.get("days", 0),
                     weeks=spec.get("weeks", 0))


def later(spec):
    """Now plus a due/after spec; ``working_days`` steps over Saturdays and Sundays in Asia/Shanghai
    (public holidays are not known), keeping the time of day."""
    moment = clock.now() + duration(spec)
    days = spec.get("working_days", 0)
    if days:
        local = moment.astimezone(clock.zone())
        while days:
            local += timedelta(days=1)
            if local.weekday() < 5:
                days -= 1
        moment = local
    return moment


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


def _assign(action, ctx, record):
    _needs_record(record, "assign")
    user, why = assignment.choose(record, action, ctx)
    if user is None:
        ctx.done.append({"type": "assign", "record": record.id, "owner": None, "why": why})
        return
    before = record.owner.username if record.owner else None
    records.update(record, {}, record.version, None, owner=user)
    ctx.done.append({"type": "assign", "record": record.id, "from": before, "owner": user.username, "why": why})


def recipients(specs, ctx, record):
    """Users named by owner / manager / creator / user:NAME / role:ROLE / field:FIELD."""
    out = []
    owner = record.owner if record is not None else None
    for spec in specs:
        kind, _sep, arg = spec.partition(":")
        found = []
        if kind == "owner" and owner is not None:
            found = [owner]
        elif kind == "creator" and record is not None and record.created_by is not None:
            found = [record.created_by]
        elif kind == "manager":
            found = managers_of(owner)
        elif kind == "user":
            found = db.session.scalars(select(User).where(User.username == arg, User.active.is_(True))).all()
        elif kind == "role":
            stmt = select(User).where(User.role == arg, User.active.is_(True))
            if owner is not None and owner.team_id and arg != "admin":
                stmt = stmt.where(User.team_id == owner.team_id)
            found = db.session.scalars(stmt.order_by(User.id)).all()
        elif kind == "field" and record is not None:
            name = record.data.get(arg)
            found = db.session.scalars(select(User).where(User.username == name, User.active.is_(True))).all()
        for u in found:
            if u not in out:
                out.append(u)
    return out


def managers_of(user):
    """The managers of a user's team; admins when the user has no team or the team no manager."""
    found = []
    if user is not None and user.team_id:
        found = db.session.scalars(select(User).where(User.team_id == user.team_id, User.role == "manager",
                                                      User.active.is_(True)).order_by(User.id)).all()
    if not found:
        found = db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                                   .order_by(User.id)).all()
    return found


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
    new = records.create(form, values, None, owner=owner, system=True)
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


def _for_each(action, ctx, record):
    form = catalog.get_form(action["form"])
    event = dict(record.data) if record is not None else dict(ctx.event)
    if record is not None:
        event["id"] = record.id
    matched = []
    rows = db.session.scalars(select(Record).where(Record.form_id == form.id, Record.deleted_at.is_(None))
                              .order_by(Record.id).limit(FOR_EACH_LIMIT)).all()
    for item in rows:
        if action.get("where") and not expressions.truthy(action["where"], ctx.names(item, event), ctx.functions()):
            continue
        matched.append(item.id)
        saved_event, ctx.event = ctx.event, event
        try:
            perform_all(action["actions"], ctx, item)
        finally:
            ctx.event = saved_event
    ctx.done.append({"type": "for_each", "form": form.key, "records": matched})


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
    """Deliver a saved report: each recipient gets their own view of the data (row-level access)."""
    from ..i18n import pick
    from ..reports import compiler, export, store
    report = store.get(action["report"])
    if report is None:
        raise ValueError(f"no report {action['report']!r}")
    title = pick(report.body.get("title")) or report.key
    channels = action.get("channels") or ["inbox"]

    def text_for(user):
        rows = export.table(compiler.run(report.body, user))
        return "\n".join(" | ".join(row) for row in rows)

    sent = []
    base = f"{ctx.rule.key}:{report.key}:{clock.now().isoformat()}"
    for user in recipients(action.get("to", []), ctx, record):
        body = text_for(user)
        if "inbox" in channels:
            db.session.add(Notification(user_id=user.id, title=title[:200], body=body[:2000], rule_key=ctx.rule.key))
        if "email" in channels and (user.email or "").strip():
            outbox.add("email", f"{base}:{user.username}", {"to": user.email.strip(), "subject": title, "body": body})
        sent.append(user.username)
    if "webhook" in channels and action.get("webhook"):
        viewer = db.session.scalars(select(User).where(User.username == action.get("as", ""))).first()
        if viewer is None:
            raise ValueError("a report sent to a webhook needs \"as\": the user whose view it carries")
        hook = action["webhook"]
        outbox.add("webhook", f"{base}:webhook", {"url": hook["url"], "format": hook.get("format", "json"),
                                                   "secret": hook.get("secret"), "title": title,
                                                   "body": text_for(viewer), "rule": ctx.rule.key})
    ctx.done.append({"type": "send_report", "report": report.key, "to": sent, "channels": channels})


def _stop(action, ctx, record):
    from .engine import Stop
    raise Stop()


HANDLERS = {"set": _set, "status": _status, "assign": _assign, "task": _task, "notify": _notify,
            "create_record": _create_record, "update_record": _update_record, "for_each": _for_each,
            "schedule": _schedule, "send_report": _send_report, "stop": _stop}


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


