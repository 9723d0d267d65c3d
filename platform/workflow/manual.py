"""Manual rules: buttons on a record's page that run a rule on demand."""
from .. import access
from . import engine, rules


def available(user, record):
    """Manual rules of the record's form this user may press."""
    out = []
    for rule in rules.enabled_rules(record.form.key, ["manual"]):
        roles = rule.body["trigger"].get("roles")
        if not roles or user.role in roles:
            out.append(rule)
    return out


def press(user, record, key):
    """Run manual rule `key` on a record the user can see; None when not allowed."""
    if access.get_record(user, record.id) is None:
        return None
    rule = next((r for r in available(user, record) if r.key == key), None)
    if rule is None:
        return None
    return engine.run(rule, record, "manual", user=user)
