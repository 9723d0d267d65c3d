"""Status flows: which state changes are allowed, by whom, under which guard, and with which
form filled first; and the history of when each record entered each state."""
from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..forms import catalog, records
from ..forms.models import Form, Record
from ..forms.pointers import pointer
from ..forms.rendering import options_for
from ..i18n import doc_locale, pick
from . import expressions
from .models import StatusChange


def flow_of(version):
    return (version.settings or {}).get("status_flow") if version is not None else None


def _label(version, field, value):
    if value in (None, ""):
        return _("(empty)")
    return dict(options_for(field, version.schema["properties"][field], version.ui, doc_locale())).get(value, value)


def required_form_filled(form_key, record):
    """Is there a live record of form_key that references this record?"""
    try:
        target = catalog.get_form(form_key)
    except catalog.FormNotFound:
        return False
    version = catalog.current_version(target)
    fields = [n for n, p in version.schema["properties"].items()
              if isinstance(p, dict) and p.get("x-reference") == record.form.key]
    for name in fields:
        hit = db.session.scalar(select(Record.id).where(
            Record.form_id == target.id, Record.deleted_at.is_(None), Record.data[name].as_integer() == record.id))
        if hit is not None:
            return True
    return False


def enforce(record, old, new, user, form=None, prefix=(), system=False):
    """before_save hook: refuse a state change the form's flow does not allow.

    Imported history (system) is taken as it was: it happened before the flow applied.
    """
    if system:
        return
    version = record.form_version if record is not None else catalog.current_version(form)
    flow = flow_of(version)
    if not flow:
        return
    field = flow["field"]
    before, after = old.get(field), new.get(field)
    if before == after:
        return
    where = pointer([*prefix, field])
    if record is None:
        if flow.get("initial") and after not in flow["initial"]:
            raise records.RecordInvalid({where: [_("A new record cannot start as “%(state)s”",
                                                   state=_label(version, field, after))]})
        return
    candidates = [t for t in flow["transitions"] if t["to"] == after and (not t.get("from") or before in t["from"])]
    if not candidates:
        raise records.RecordInvalid({where: [_("“%(a)s” cannot change to “%(b)s”", a=_label(version, field, before),
                                               b=_label(version, field, after))]})
    problems = []
    for t in candidates:
        if user is not None and t.get("roles") and user.role not in t["roles"]:
            problems.append(_("Your role may not change the state to “%(state)s”", state=_label(version, field, after)))
            continue
        if t.get("guard"):
            names = expressions.names_for(new, version.schema["properties"], old=old, user=user_dict(user))
            try:
                ok = expressions.truthy(t["guard"], names)
            except expressions.ExpressionError as err:
                ok, problems = False, [*problems, _("The conditions for “%(state)s” could not be checked: %(detail)s",
                                                    state=_label(version, field, after), detail=err.message)]
            if not ok:
                problems.append(pick(t.get("message")) or _("The conditions for “%(state)s” are not met",
                                                              state=_label(version, field, after)))
                continue
        if t.get("requires_form") and not required_form_filled(t["requires_form"], record):
            target = db.session.scalars(select(Form).where(Form.key == t["requires_form"])).first()
            err = records.RecordInvalid({where: [_("Fill in “%(form)s” for this record before changing the state "
                                                   "to “%(state)s”", form=pick(target.title) if target else t["requires_form"],
                                                   state=_label(version, field, after))]})
            err.hint = {"requires_form": t["requires_form"], "record": record.id}
            raise err
        return
    raise records.RecordInvalid({where: problems[:1]})


def user_dict(user):
    if user is None:
        return {}
    return {"username": user.username, "role": user.role, "team": user.team.key if user.team else None,
            "skills": list(user.skills or [])}


def track(record, action, old, user, system=False):
    """after_save hook: note when the record entered a new state."""
    flow = flow_of(record.form_version)
    if not flow or action not in ("create", "update"):
        return
    field = flow["field"]
    before, after = old.get(field), record.data.get(field)
    if after is not None and before != after:
        db.session.add(StatusChange(record_id=record.id, form_id=record.form_id, field=field, from_value=before,
                                    to_value=after, user_id=user.id if user else None,
                                    at=record.updated_at if action == "update" else record.created_at))


def entered_at(record, state):
    """When the record last entered ``state`` (None if never)."""
    return db.session.scalar(select(StatusChange.at).where(StatusChange.record_id == record.id,
                                                           StatusChange.to_value == state)
                             .order_by(StatusChange.at.desc(), StatusChange.id.desc()).limit(1))


def check_guards(definition, add):
    """definitions.extra_checks hook: guard expressions must be valid for the form."""
    flow = (definition.get("settings") or {}).get("status_flow")
    if not flow:
        return
    props = definition["schema"].get("properties", {})
    for i, t in enumerate(flow.get("transitions", [])):
        if t.get("guard"):
            for problem in expressions.check(t["guard"], props):
                add(pointer(["settings", "status_flow", "transitions", i, "guard"]), _expression_message(problem))


def _expression_message(problem):
    if problem.col:
        return _("%(message)s (column %(col)s)", message=problem.message, col=problem.col)
    return problem.message
