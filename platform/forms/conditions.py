"""Declarative field conditions of UI documents (visible_when, required_when).

A condition is data, so the same rule runs in three places: here on the server, in the
browser (static/formflow.js) and, for requiredness, inside the JSON Schema as if/then.
"""

OPERATORS = ("equals", "in", "contains", "filled")


def fields_of(cond):
    """Every field name a condition reads."""
    if "all" in cond or "any" in cond:
        return [name for c in cond.get("all", cond.get("any", [])) for name in fields_of(c)]
    if "not" in cond:
        return fields_of(cond["not"])
    return [cond["field"]]


def holds(cond, data):
    """Evaluate a condition against record data."""
    if "all" in cond:
        return all(holds(c, data) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, data) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], data)
    value = data.get(cond["field"])
    if "equals" in cond:
        return value == cond["equals"]
    if "in" in cond:
        return value in cond["in"]
    if "contains" in cond:
        return isinstance(value, list) and cond["contains"] in value
    if "filled" in cond:
        return _filled(value) == bool(cond["filled"])
    raise ValueError(f"unknown condition {cond!r}")


def to_schema(cond):
    """The JSON Schema that an instance satisfies exactly when the condition holds."""
    if "all" in cond:
        return {"allOf": [to_schema(c) for c in cond["all"]]}
    if "any" in cond:
        return {"anyOf": [to_schema(c) for c in cond["any"]]}
    if "not" in cond:
        return {"not": to_schema(cond["not"])}
    name = cond["field"]
    if "equals" in cond:
        test = {"const": cond["equals"]}
    elif "in" in cond:
        test = {"enum": list(cond["in"])}
    elif "contains" in cond:
        test = {"type": "array", "contains": {"const": cond["contains"]}}
    elif cond["filled"]:
        test = {"not": {"enum": ["", [], None]}}
    else:
        return {"anyOf": [{"not": {"required": [name]}},
                          {"properties": {name: {"enum": ["", [], None]}}}]}
    return {"properties": {name: test}, "required": [name]}


def _filled(value):
    return value not in (None, "", [])
