"""Checking form definitions before they are stored, and deriving what they imply.

A definition is refused with every problem at once, each named by its JSON pointer
inside the definition document (for example ``/ui/sections/0/fields/3``).
"""
import copy
import hashlib
import json
import re
from importlib import resources

from flask_babel import gettext as _
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import conditions
from .pointers import pointer

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Which JSON types each widget can edit; the first is the one a widget is inferred from.
WIDGET_TYPES = {
    "text": {"string"}, "textarea": {"string"}, "select": {"string"}, "radio": {"string"},
    "phone": {"string"}, "user": {"string"}, "date": {"string"}, "datetime": {"string"},
    "integer": {"integer"}, "number": {"number", "integer"}, "money": {"number", "integer"},
    "boolean": {"boolean"}, "multiselect": {"array"}, "reference": {"integer"},
}
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
FORMAT_WIDGETS = {"date": "date", "date-time": "datetime", "cn-mobile": "phone"}


class DefinitionError(Exception):
    """A form definition was refused; ``errors`` maps JSON pointers to messages."""

    def __init__(self, errors, source=None):
        self.errors = errors
        self.source = source
        super().__init__("; ".join(f"{p or '/'}: {', '.join(m)}" for p, m in errors.items()))


def _meta_validator():
    doc = json.loads(resources.files("formflow.forms").joinpath("form.schema.json").read_text("utf-8"))
    return Draft202012Validator(doc)


META = _meta_validator()


def check(definition, known_forms=()):
    """Validate a whole form definition; raise DefinitionError naming every bad place.

    :param definition: dict with key, title, settings, schema and ui
    :param known_forms: keys of forms that reference fields may point at
    """
    errors = {}

    def add(ptr, msg):
        errors.setdefault(ptr, []).append(msg)

    for err in META.iter_errors(definition):
        add(pointer(err.absolute_path), _("Not a valid form definition: %(detail)s", detail=err.message))
    if errors:
        raise DefinitionError(errors)

    schema = definition["schema"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        add(pointer(["schema", *err.absolute_path]), _("Not valid JSON Schema: %(detail)s", detail=err.message))
        raise DefinitionError(errors)
    if schema.get("$schema", DIALECT) != DIALECT:
        add("/schema/$schema", _("Only JSON Schema draft 2020-12 is supported"))
    for path in _remote_refs(schema, ["schema"]):
        add(pointer(path), _("Remote references are not allowed; keep every definition inside the form"))
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        add("/schema", _("The schema must describe an object with properties"))
        raise DefinitionError(errors)

    props = schema["properties"]
    for name in props:
        if not conditions_key_ok(name):
            add(pointer(["schema", "properties", name]), _("Field names use lowercase letters, digits and _"))

    ui = definition["ui"]
    seen = {}
    for i, section in enumerate(ui["sections"]):
        for j, name in enumerate(section["fields"]):
            ptr = pointer(["ui", "sections", i, "fields", j])
            if name not in props:
                add(ptr, _("The schema has no field “%(name)s”", name=name))
            elif name in seen:
                add(ptr, _("“%(name)s” already appears in another section", name=name))
            seen[name] = ptr
    for name, field in ui["fields"].items():
        base = ["ui", "fields", name]
        if name not in props:
            add(pointer(base), _("The schema has no field “%(name)s”", name=name))
            continue
        _check_widget(field, props[name], base, add, known_forms, definition["key"])
        for which in ("visible_when", "required_when"):
            if which in field:
                for ref in conditions.fields_of(field[which]):
                    if ref not in props:
                        add(pointer([*base, which]), _("The schema has no field “%(name)s”", name=ref))

    settings = definition.get("settings", {})
    for name in ("search_fields", "list_fields", "duplicate_keys"):
        for i, ref in enumerate(settings.get(name, [])):
            if ref not in props:
                add(pointer(["settings", name, i]), _("The schema has no field “%(name)s”", name=ref))
    if settings.get("title_field") and settings["title_field"] not in props:
        add("/settings/title_field", _("The schema has no field “%(name)s”", name=settings["title_field"]))
    if "status_flow" in settings:
        _check_flow(settings["status_flow"], props, add, known_forms, definition["key"])
    for extra in extra_checks:
        extra(definition, add)
    if errors:
        raise DefinitionError(errors)


# Other parts of the engine add checks here: fn(definition, add(pointer, message)).
extra_checks = []


def _check_flow(flow, props, add, known_forms, own_key):
    field = flow["field"]
    if field not in props:
        add("/settings/status_flow/field", _("The schema has no field “%(name)s”", name=field))
        return
    states = enum_of(props[field]) or []
    for i, state in enumerate(flow.get("initial", [])):
        if state not in states:
            add(pointer(["settings", "status_flow", "initial", i]), _("“%(value)s” is not one of the field's values", value=state))
    for i, t in enumerate(flow["transitions"]):
        for j, state in enumerate(t.get("from", [])):
            if state not in states:
                add(pointer(["settings", "status_flow", "transitions", i, "from", j]),
                    _("“%(value)s” is not one of the field's values", value=state))
        if t["to"] not in states:
            add(pointer(["settings", "status_flow", "transitions", i, "to"]),
                _("“%(value)s” is not one of the field's values", value=t["to"]))
        if t.get("requires_form") and t["requires_form"] not in known_forms and t["requires_form"] != own_key:
            add(pointer(["settings", "status_flow", "transitions", i, "requires_form"]),
                _("There is no form “%(name)s”", name=t["requires_form"]))


def conditions_key_ok(name):
    return FIELD_NAME.fullmatch(name) is not None


def _check_widget(field, prop, base, add, known_forms, own_key):
    widget = field["widget"]
    types = _types(prop)
    if types and not types & WIDGET_TYPES[widget]:
        add(pointer([*base, "widget"]),
            _("Widget “%(widget)s” cannot edit a field of type %(type)s", widget=widget, type="/".join(sorted(types))))
    if "options" in field:
        values = enum_of(prop)
        if values is None:
            add(pointer([*base, "options"]), _("Options need an enum in the schema"))
        else:
            for value in field["options"]:
                if value not in values:
                    add(pointer([*base, "options", value]), _("“%(value)s” is not one of the field's values", value=value))
    if widget in ("select", "radio", "multiselect") and enum_of(prop) is None:
        add(pointer([*base, "widget"]), _("A choice widget needs an enum in the schema"))
    if widget == "reference":
        target = prop.get("x-reference")
        if not target:
            add(pointer(["schema", "properties", base[-1]]), _("A reference field needs x-reference naming a form"))
        elif target not in known_forms and target != own_key:
            add(pointer(["schema", "properties", base[-1], "x-reference"]),
                _("There is no form “%(name)s”", name=target))


def _types(prop):
    t = prop.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def enum_of(prop):
    """The allowed values of a choice field (items' enum for arrays), or None."""
    if prop.get("type") == "array":
        prop = prop.get("items", {})
    if "enum" in prop:
        return list(prop["enum"])
    return None


def _remote_refs(node, path):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("$ref", "$dynamicRef") and isinstance(v, str) and not v.startswith("#"):
                yield [*path, k]
            else:
                yield from _remote_refs(v, [*path, k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _remote_refs(v, [*path, i])


def widget_for(name, prop, ui):
    """The widget a field is edited with: the UI's choice, else inferred from the schema."""
    field = ui.get("fields", {}).get(name, {})
    if "widget" in field:
        return field["widget"]
    if "x-reference" in prop:
        return "reference"
    if prop.get("x-user"):
        return "user"
    if prop.get("format") in FORMAT_WIDGETS:
        return FORMAT_WIDGETS[prop["format"]]
    t = next(iter(sorted(_types(prop))), "string")
    if t == "array":
        return "multiselect"
    if "enum" in prop:
        return "select"
    return {"integer": "integer", "number": "number", "boolean": "boolean"}.get(t, "text")


def field_order(schema, ui):
    """[(section, [field names])] in display order; unplaced fields go last."""
    placed, out = set(), []
    for section in ui.get("sections", []):
        names = [n for n in section["fields"] if n in schema["properties"]]
        placed.update(names)
        out.append((section, names))
    rest = [n for n in schema["properties"] if n not in placed]
    if rest:
        out.append(({"key": "_other"}, rest))
    return out


def effective_schema(schema, ui):
    """The schema with the UI's conditional requiredness compiled in as if/then.

    Validation only ever runs against this, so JSON Schema stays the one authority.
    """
    rules = []
    for name, field in ui.get("fields", {}).items():
        if "required_when" in field:
            cond = field["required_when"]
            if "visible_when" in field:
                cond = {"all": [field["visible_when"], cond]}
            rules.append({"if": conditions.to_schema(cond), "then": {"required": [name]}})
    if not rules:
        return schema
    out = copy.deepcopy(schema)
    out["allOf"] = [*out.get("allOf", []), *rules]
    return out


def checksum(definition):
    """A stable digest of what a version holds, to tell changed definitions from reloads."""
    body = {k: definition.get(k) for k in ("schema", "ui", "settings")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def readonly_fields(ui):
    """Fields the UI document marks readonly: only rules and imports write them."""
    return {name for name, f in (ui or {}).get("fields", {}).items() if isinstance(f, dict) and f.get("readonly")}
