"""Server-side rendering of a form version as a WTForms form (mobile-first widgets).

WTForms only converts text to typed values here; whether the values are acceptable is
decided by the JSON Schema (see validation.py), and its messages are put back on fields.
"""
import json
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import SelectChoice, fields, widgets
from wtforms.validators import Optional


from .. import clock
from ..i18n import pick
from . import definitions


# Field attributes carry a prefix so a form field can never shadow a FlaskForm attribute
# (a schema may well have fields called "data" or "meta").
PREFIX = "f_"


def _zone():
    return clock.zone()


class MultiCheckboxField(fields.SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class TriStateField(fields.RadioField):
    """Yes / no / not answered, so an optional boolean can stay empty."""

    def __init__(self, *args, **kwargs):
        kwargs["choices"] = _choices([("true", _("Yes")), ("false", _("No"))])
        kwargs["validate_choice"] = False
        super().__init__(*args, **kwargs)


def _choices(pairs):
    return [SelectChoice(str(value), label) for value, label in pairs]


def options_for(name, prop, ui, locale):
    values = definitions.enum_of(prop) or []
    labels = ui.get("fields", {}).get(name, {}).get("options", {})
    return [(v, pick(labels.get(v), locale) or str(v)) for v in values]


def build_form_class(version, locale, users=(), references=None):
    """A FlaskForm subclass with one field per schema property, in display order.

    :param users: [(username, display name)] for user fields
    :param references: {form key: [(id, title)]} for reference fields
    """
    schema, ui = version.schema, version.ui
    props = schema["properties"]
    required = set(schema.get("required", []))

    class RecordForm(FlaskForm):
        pass

    meta = {}
    for _section, names in definitions.field_order(schema, ui):
        for name in names:
            prop = props[name]
            uif = ui.get("fields", {}).get(name, {})
            widget = definitions.widget_for(name, prop, ui)
            label = pick(uif.get("label"), locale) or prop.get("title") or name
            # Optional: an empty input is simply absent; the schema decides if that is allowed.
            kw = {"label": label, "description": pick(uif.get("help"), locale), "validators": [Optional()]}
            attrs = {}
            if uif.get("placeholder"):
                attrs["placeholder"] = pick(uif["placeholder"], locale)
            field = _field(widget, name, prop, ui, locale, users, references or {}, kw, attrs)
            if uif.get("readonly"):  # shown, never submitted: filled in by the system
                field.kwargs["render_kw"] = {**(field.kwargs.get("render_kw") or {}), "disabled": True}
            setattr(RecordForm, PREFIX + name, field)
            meta[name] = {"widget": widget, "required": name in required, "readonly": bool(uif.get("readonly")),
                          "visible_when": uif.get("visible_when"), "required_when": uif.get("required_when")}
    RecordForm.field_meta = meta
    return RecordForm


def _field(widget, name, prop, ui, locale, users, references, kw, attrs):
    blank = [("", "—")]
    if widget == "textarea":
        return fields.TextAreaField(render_kw={**attrs, "rows": 3}, **kw)
    if widget == "integer":
        return fields.IntegerField(render_kw={**attrs, "inputmode": "numeric"}, **kw)
    if widget in ("number", "money"):
        step = "0.01" if widget == "money" else "any"
        return fields.DecimalField(render_kw={**attrs, "inputmode": "decimal", "step": step}, **kw)
    if widget == "select":
        return fields.SelectField(choices=_choices(blank + options_for(name, prop, ui, locale)),
                                  validate_choice=False, **kw)
    if widget == "radio":
        return fields.RadioField(choices=_choices(options_for(name, prop, ui, locale)), validate_choice=False, **kw)
    if widget == "multiselect":
        return MultiCheckboxField(choices=_choices(options_for(name, prop, ui, locale)), validate_choice=False, **kw)
    if widget == "boolean":
        return TriStateField(**kw)
    if widget == "date":
        return fields.DateField(**kw)
    if widget == "datetime":
        return fields.DateTimeLocalField(format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], **kw)
    if widget == "phone":
        return fields.TelField(render_kw={**attrs, "inputmode": "tel", "autocomplete": "tel"}, **kw)
    if widget == "user":
        return fields.SelectField(choices=_choices(blank + list(users)), validate_choice=False, **kw)
    if widget == "reference":
        choices = [(str(i), t) for i, t in references.get(prop.get("x-reference"), [])]
        return fields.SelectField(choices=_choices(blank + choices), validate_choice=False, **kw)
    return fields.StringField(render_kw={**attrs, "maxlength": prop.get("maxLength")} if prop.get("maxLength") else attrs, **kw)


def to_data(form):
    """Typed record data from a submitted form (empty inputs left out)."""
    data = {}
    for name, meta in form.field_meta.items():
        if meta.get("readonly"):
            continue  # never submitted (disabled), never changed by people
        value = form[PREFIX + name].data
        widget = meta["widget"]
        if value in (None, "", []):
            continue
        if widget == "boolean":
            value = {"true": True, "false": False}.get(value)
        elif widget in ("number", "money") and isinstance(value, Decimal):
            value = int(value) if value == value.to_integral_value() and widget == "number" else float(value)
        elif widget == "date":
            value = value.isoformat()
        elif widget == "datetime":
            value = value.replace(tzinfo=_zone()).isoformat()
        elif widget == "reference":
            value = int(value) if str(value).isdigit() else value
        if value is not None:
            data[name] = value
    return data


def from_data(data, version):
    """Form field values for existing record data (the inverse of to_data)."""
    out = {}
    for name, prop in version.schema["properties"].items():
        if name not in data:
            continue
        value = data[name]
        widget = definitions.widget_for(name, prop, version.ui)
        if widget == "boolean":
            value = "true" if value else "false"
        elif widget == "date" and isinstance(value, str):
            value = _parse(lambda: datetime.fromisoformat(value).date())
        elif widget == "datetime" and isinstance(value, str):
            value = _parse(lambda: datetime.fromisoformat(value).astimezone(_zone()).replace(tzinfo=None))
        elif widget in ("number", "money") and isinstance(value, (int, float)):
            value = Decimal(str(value))
        elif widget == "reference":
            value = str(value)
        out[PREFIX + name] = value
    return out


def _parse(fn):
    try:
        return fn()
    except ValueError:
        return None


def put_errors(form, errors):
    """Attach schema errors ({"/field": [...]}) to the form's fields; return the rest.

    A field that already failed conversion keeps only that message.
    """
    rest = {}
    for ptr, messages in errors.items():
        name = ptr.split("/")[1] if ptr.count("/") >= 1 else ""
        if name in form.field_meta:
            field = form[PREFIX + name]
            if not field.errors:
                field.errors = list(messages)
        else:
            rest[ptr] = messages
    return rest


def display_value(value, name, version, locale, users=None, titles=None):
    """A record value as text for reading: option labels, yes/no, local times."""
    prop = version.schema["properties"].get(name, {})
    widget = definitions.widget_for(name, prop, version.ui)
    if value in (None, "", []):
        return ""
    if widget in ("select", "radio", "multiselect"):
        labels = dict(options_for(name, prop, version.ui, locale))
        if isinstance(value, list):
            return "、".join(labels.get(v, str(v)) for v in value)
        return labels.get(value, str(value))
    if widget == "boolean":
        return _("Yes") if value else _("No")
    if widget == "datetime":
        try:
            return datetime.fromisoformat(value).astimezone(_zone()).strftime("%Y-%m-%d %H:%M")
        except (TypeError, ValueError):
            return str(value)
    if widget == "money":
        return f"¥{value:,.2f}" if isinstance(value, (int, float)) else str(value)
    if widget == "user" and users:
        return users.get(value, value)
    if widget == "reference" and titles:
        return titles.get(value, f"#{value}")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
