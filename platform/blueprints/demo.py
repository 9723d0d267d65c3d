"""Importing a blueprint's demo data: history records and the open tasks of its last days.

Demo files are written once, as of a fixed moment (``blueprint.json`` → ``demo.as_of``). On import
every date moves forward by whole days so that moment falls on today (yesterday, before its hour of
day), so a fresh start always shows the last months up to now; open tasks move by the exact time
since that moment, so what was due in two hours is due in two hours. Imported history fires no rules
and passes no status flow (it already happened); only timers still in the future are armed.
"""
from datetime import date, datetime, timedelta

from sqlalchemy import select

from .. import clock
from ..extensions import db
from ..forms import catalog, records
from ..forms.models import Record
from ..people.models import User
from ..workflow.models import Task


class Shift:
    """Moves the demo's dates by whole days, keeping times of day and offsets."""

    def __init__(self, as_of):
        if not as_of:
            self.days = self.exact = timedelta(0)
            return
        anchor, now = datetime.fromisoformat(as_of), clock.now()
        self.days = timedelta(days=(now.astimezone(anchor.tzinfo).date() - anchor.date()).days)
        if anchor + self.days > now:  # nothing may happen in the future: before as_of's hour, end yesterday
            self.days -= timedelta(days=1)
        self.exact = now - anchor

    def instant(self, text):
        return datetime.fromisoformat(text) + self.days

    def pending(self, text):
        """An open task's time keeps its distance from now: due two hours after as_of is due in two hours."""
        return datetime.fromisoformat(text) + self.exact

    def value(self, prop, value):
        """A data value moved if its field is a date or date-time; anything else unchanged."""
        if not isinstance(value, str) or not self.days:
            return value
        fmt = prop.get("format")
        try:
            if fmt == "date":
                return (date.fromisoformat(value) + self.days).isoformat()
            if fmt == "date-time":
                return (datetime.fromisoformat(value) + self.days).isoformat()
        except ValueError:
            return value  # validation names the field
        return value


def write(bundle, problem):
    """Import the bundle's demo lines; returns how many records and tasks were written.

    ``problem(where, pointer, message)`` raises: a bad line stops the whole load.
    """
    shift = Shift((bundle.manifest.get("demo") or {}).get("as_of"))
    users = {u.username: u for u in db.session.scalars(select(User))}
    order = {k: i for i, k in enumerate(bundle.form_order())}

    def rank(item):
        line = item[2]
        return ("task" in line, order.get(line.get("form"), len(order)), item[0], item[1])

    forms, count = {}, 0
    for name, n, line in sorted(bundle.demo, key=rank):
        where = f"{name}:{n}"
        if "task" in line:
            count += _task(line, users, shift, where, problem)
            continue
        form = _form(forms, line["form"], where, problem)
        if db.session.scalar(select(Record.id).where(Record.form_id == form.id, Record.import_key == line["key"])):
            continue
        version = catalog.current_version(form)
        props = version.schema["properties"]
        data = {k: shift.value(props.get(k) or {}, v) for k, v in line["data"].items()}
        data = _resolve_references(props, data, where, problem)
        owner = _user(users, line.get("owner"), where, "/owner", problem)
        author = _user(users, line.get("created_by"), where, "/created_by", problem)
        created_at = shift.instant(line["created_at"]) if line.get("created_at") else None
        try:
            records.create(form, data, author, owner=owner, import_key=line["key"], created_at=created_at,
                           prefix=("data",), system=True)
        except records.RecordInvalid as err:
            for ptr, messages in err.errors.items():
                problem(where, ptr, "; ".join(map(str, messages)))
        count += 1
    return count


def _form(cache, key, where, problem):
    if key not in cache:
        try:
            cache[key] = catalog.get_form(key)
        except catalog.FormNotFound:
            problem(where, "/form", f"no form {key!r}")
    return cache[key]


def _user(users, username, where, ptr, problem):
    if not username:
        return None
    if username not in users:
        problem(where, ptr, f"no user {username!r}")
    return users[username]


def _record_id(form_key, import_key, where, ptr, problem):
    rid = db.session.scalar(select(Record.id).join(Record.form).where(
        catalog.Form.key == form_key, Record.import_key == import_key))
    if rid is None:
        problem(where, ptr, f"no {form_key} record with key {import_key!r}")
    return rid


def _resolve_references(props, data, where, problem):
    for name, prop in props.items():
        target = prop.get("x-reference") if isinstance(prop, dict) else None
        if target and isinstance(data.get(name), str):
            data[name] = _record_id(target, data[name], where, f"/data/{name}", problem)
    return data


def _task(line, users, shift, where, problem):
    """An open task as the blueprint's rules would have left it; skipped when already there."""
    t = line["task"]
    record_id = _record_id(t["form"], t["record"], where, "/task/record", problem) if t.get("record") else None
    assignee = _user(users, t["assignee"], where, "/task/assignee", problem)
    due = shift.pending(t["due_at"]) if t.get("due_at") else None
    if db.session.scalar(select(Task.id).where(Task.record_id == record_id, Task.assignee_id == assignee.id,
                                               Task.title == t["title"], Task.rule_key == t.get("rule"))):
        return 0  # loaded before (its due time moves with the clock, so it is not part of the match)
    db.session.add(Task(record_id=record_id, assignee_id=assignee.id, title=t["title"], body=t.get("body", ""),
                        priority=t.get("priority", "normal"), due_at=due, rule_key=t.get("rule"),
                        created_at=shift.pending(line["created_at"]) if line.get("created_at") else clock.now()))
    return 1
