"""Form definitions: refused with messages that name the place, and what they compile to."""

import json

import pytest
from jsonschema import Draft202012Validator

from formflow.forms import conditions, definitions
from conftest import CARDEALER, HELPDESK


def lead():
    return json.loads((CARDEALER / "forms" / "lead.json").read_text("utf-8"))


def errors_of(doc, known=("lead", "defeat", "followup", "market_event")):
    with pytest.raises(definitions.DefinitionError) as info:
        definitions.check(doc, known)
    return info.value.errors


def test_shipped_forms_are_valid(app):
    with app.test_request_context():
        for folder in (CARDEALER, HELPDESK):
            docs = [json.loads(p.read_text("utf-8")) for p in (folder / "forms").glob("*.json")]
            keys = {d["key"] for d in docs}
            for doc in docs:
                definitions.check(doc, keys)


def test_invalid_json_schema_is_refused_at_its_pointer(app):
    doc = lead()
    doc["schema"]["properties"]["phone"]["type"] = "telephone"
    with app.test_request_context():
        errors = errors_of(doc)
    assert list(errors) == ["/schema/properties/phone/type"]


def test_remote_ref_is_refused(app):
    doc = lead()
    doc["schema"]["properties"]["notes"] = {"$ref": "https://example.com/evil.json"}
    with app.test_request_context():
        errors = errors_of(doc)
    assert "/schema/properties/notes/$ref" in errors


def test_ui_naming_a_missing_field_is_refused(app):
    doc = lead()
    doc["ui"]["sections"][0]["fields"].append("ghost")
    doc["ui"]["fields"]["phantom"] = {"widget": "text"}
    with app.test_request_context():
        errors = errors_of(doc)
    n = len(doc["ui"]["sections"][0]["fields"]) - 1
    assert f"/ui/sections/0/fields/{n}" in errors
    assert "/ui/fields/phantom" in errors
    assert "ghost" in errors[f"/ui/sections/0/fields/{n}"][0]


def test_condition_on_unknown_field_and_bad_widget(app):
    doc = lead()
    doc["ui"]["fields"]["notes"] = {"widget": "integer", "visible_when": {"field": "nope", "equals": 1}}
    with app.test_request_context():
        errors = errors_of(doc)
    assert "/ui/fields/notes/widget" in errors
    assert "/ui/fields/notes/visible_when" in errors


def test_reference_to_unknown_form(app):
    doc = json.loads((CARDEALER / "forms" / "defeat.json").read_text("utf-8"))
    with app.test_request_context():
        errors = errors_of(doc, known=("defeat",))
    assert "/schema/properties/lead/x-reference" in errors


def test_messages_in_english_when_asked(app):
    doc = lead()
    doc["ui"]["fields"]["ghost"] = {"widget": "text"}
    from flask_babel import force_locale
    with app.test_request_context(), force_locale("en"):
        errors = errors_of(doc)
    assert errors["/ui/fields/ghost"] == ["The schema has no field “ghost”"]


@pytest.mark.parametrize("cond,data,expected", [
    ({"field": "s", "equals": "x"}, {"s": "x"}, True),
    ({"field": "s", "equals": "x"}, {"s": "y"}, False),
    ({"field": "s", "equals": "x"}, {}, False),
    ({"field": "s", "in": ["a", "b"]}, {"s": "b"}, True),
    ({"field": "m", "contains": "k"}, {"m": ["j", "k"]}, True),
    ({"field": "m", "contains": "k"}, {"m": ["j"]}, False),
    ({"field": "s", "filled": True}, {"s": "q"}, True),
    ({"field": "s", "filled": True}, {"s": ""}, False),
    ({"field": "s", "filled": False}, {}, True),
    ({"field": "s", "filled": False}, {"s": "x"}, False),
    ({"not": {"field": "s", "equals": "x"}}, {"s": "x"}, False),
    ({"all": [{"field": "s", "equals": "x"}, {"field": "t", "equals": 1}]}, {"s": "x", "t": 1}, True),
    ({"any": [{"field": "s", "equals": "x"}, {"field": "t", "equals": 1}]}, {"s": "z", "t": 2}, False),
])
def test_conditions_agree_with_their_json_schema(cond, data, expected):
    assert conditions.holds(cond, data) is expected
    schema = {"$schema": definitions.DIALECT, **conditions.to_schema(cond)}
    assert Draft202012Validator(schema).is_valid(data) is expected


def test_required_when_compiles_to_if_then():
    doc = lead()
    eff = definitions.effective_schema(doc["schema"], doc["ui"])
    v = Draft202012Validator(eff)
    base = {"customer_name": "a", "phone": "13812345678", "source_channel": "showroom", "status": "invited"}
    assert not v.is_valid(base)
    assert v.is_valid({**base, "appointment_at": "2026-12-01T10:00:00+08:00"})
    assert v.is_valid({**base, "status": "new"})
    assert doc["schema"].get("allOf") == lead()["schema"].get("allOf")  # the stored schema is untouched

