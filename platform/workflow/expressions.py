"""Every expression Formflow evaluates goes through this module (simpleeval, sandboxed).

Expressions are single Python-like expressions over a record: ``status == "new" and
hours_since(created_at) > 2``. They are parsed once and cached, checked against a form's
schema before a rule may be enabled, and evaluated with a deny-by-default evaluator:
no comprehensions, no f-strings, an attribute allow-list, and named size limits.
"""
import ast
import functools
from datetime import date, datetime

import simpleeval
from flask_babel import gettext as _

from .. import clock

MAX_LENGTH = 1000          # characters in one expression
MAX_NODES = 300            # syntax-tree nodes in one expression
MAX_STRING = 10_000        # characters in any string an expression builds
MAX_POWER = 10_000         # largest exponent

# Attributes an expression may read, per type: reading only, nothing that formats or mutates.
ALLOWED_ATTRS = {
    str: {"lower", "upper", "strip", "startswith", "endswith", "count", "find", "isdigit", "split", "replace"},
    dict: {"get", "keys", "values", "items"},
    list: {"count", "index"},
    tuple: {"count", "index"},
    int: set(), float: set(), bool: set(), None: set(),
}

# Nodes the evaluator accepts; anything else is refused before evaluation.
ALLOWED_NODES = (
    ast.Expression, ast.Expr, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.IfExp, ast.Call, ast.keyword, ast.Name, ast.Load, ast.Constant, ast.Attribute, ast.Subscript,
    ast.List, ast.Tuple, ast.Dict, ast.Slice,
)


class ExpressionError(Exception):
    """An expression is unusable; carries where (1-based line and column) when known."""

    def __init__(self, message, expression="", line=None, col=None):
        self.message, self.expression, self.line, self.col = message, expression, line, col
        super().__init__(message)

    def to_json(self):
        return {"message": self.message, "line": self.line, "col": self.col}


# --- functions available to expressions -------------------------------------------------

def _as_datetime(value):
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=clock.zone())
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=clock.zone())
    text = str(value)
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=clock.zone())
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=clock.zone())


def hours_since(value):
    """Hours from a date/time until now (None when empty)."""
    dt = _as_datetime(value)
    return None if dt is None else (clock.now() - dt).total_seconds() / 3600


def days_since(value):
    dt = _as_datetime(value)
    return None if dt is None else (clock.now() - dt).total_seconds() / 86400


def days_until(value):
    """Whole days from today (Asia/Shanghai) until a date; negative once it has passed."""
    dt = _as_datetime(value)
    if dt is None:
        return None
    return (dt.astimezone(clock.zone()).date() - clock.now().astimezone(clock.zone()).date()).days


def today():
    """Today's date in Asia/Shanghai, as YYYY-MM-DD (comparable with date fields)."""
    return clock.now().astimezone(clock.zone()).date().isoformat()


def contains(values, value):
    return isinstance(values, (list, tuple)) and value in values


def any_of(values, *wanted):
    return isinstance(values, (list, tuple)) and any(w in values for w in wanted)


def all_of(values, *wanted):
    return isinstance(values, (list, tuple)) and all(w in values for w in wanted)


def coalesce(*values):
    return next((v for v in values if v not in (None, "", [])), None)


def lower(value):
    return str(value).lower() if value is not None else None


def length(value):
    return 0 if value is None else len(value)


FUNCTIONS = {
    "hours_since": hours_since, "days_since": days_since, "days_until": days_until, "today": today,
    "contains": contains, "any_of": any_of, "all_of": all_of, "coalesce": coalesce, "lower": lower,
    "len": length, "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float, "str": str,
}
# (min arguments, max arguments or None) for checking calls before they run
ARITY = {"hours_since": (1, 1), "days_since": (1, 1), "days_until": (1, 1), "today": (0, 0),
         "contains": (2, 2), "any_of": (2, None), "all_of": (2, None), "coalesce": (1, None),
         "lower": (1, 1), "len": (1, 1), "abs": (1, 1), "min": (1, None), "max": (1, None),
         "round": (1, 2), "int": (1, 1), "float": (1, 1), "str": (1, 1), "count": (1, 2)}
# What each function returns, for type checks ("number", "string", "boolean", "any")
RETURNS = {"hours_since": "number", "days_since": "number", "days_until": "number", "today": "string",
           "contains": "boolean", "any_of": "boolean", "all_of": "boolean", "lower": "string", "len": "number",
           "count": "number", "abs": "number", "round": "number", "int": "number", "float": "number", "str": "string"}
CONTEXT_NAMES = ("old", "user", "now", "record", "event", "owner", "created_at", "updated_at", "True", "False", "None")


# --- parsing -----------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def parse(expression):
    """The checked syntax tree of an expression (cached). Raises ExpressionError."""
    if not isinstance(expression, str) or not expression.strip():
        raise ExpressionError(_("The expression is empty"), expression or "")
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(_("The expression is longer than %(n)s characters", n=MAX_LENGTH), expression)
    text = expression.strip()
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        line, col = err.lineno, err.offset
        if _looks_like_assignment(text):
            raise ExpressionError(_("Use == to compare; = is not allowed in a condition"), expression,
                                  *_assignment_position(text)) from None
        raise ExpressionError(_("Syntax error: %(detail)s", detail=err.msg), expression, line, col) from None
    nodes = list(ast.walk(tree))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(_("The expression is too complex"), expression)
    for node in nodes:
        if not isinstance(node, ALLOWED_NODES):
            raise ExpressionError(_("“%(what)s” is not allowed in expressions", what=type(node).__name__),
                                  expression, *_pos(node))
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(_("“%(what)s” is not allowed in expressions", what=node.attr), expression, *_pos(node))
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ExpressionError(_("“%(what)s” is not allowed in expressions", what=node.id), expression, *_pos(node))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > MAX_STRING:
            raise ExpressionError(_("A text in the expression is too long"), expression, *_pos(node))
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            if not (isinstance(node.func, ast.Attribute)):
                raise ExpressionError(_("Only named functions can be called"), expression, *_pos(node))
    return tree


def _looks_like_assignment(text):
    try:
        ast.parse(text.replace("==", "\0\0").replace("=", "==").replace("\0\0", "=="), mode="eval")
        return "=" in text.replace("==", "").replace("!=", "").replace("<=", "").replace(">=", "")
    except SyntaxError:
        return False


def _assignment_position(text):
    for i, ch in enumerate(text):
        if ch == "=" and text[i - 1:i] not in ("=", "!", "<", ">") and text[i + 1:i + 2] != "=":
            return 1, i + 1
    return None, None


def _pos(node):
    return getattr(node, "lineno", None), (getattr(node, "col_offset", -1) + 1) or None


# --- evaluation --------------------------------------------------------------------------

class Fields(dict):
    """A context object (old, user, record, event) whose keys read as attributes: old.status."""


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    def _eval_attribute(self, node):
        if isinstance(node.value, ast.Name):
            base = self._eval(node.value)
            if isinstance(base, Fields):
                return base.get(node.attr)
        return super()._eval_attribute(node)

    def __init__(self, names, functions):
        super().__init__(functions=functions, names=names, allowed_attrs=ALLOWED_ATTRS)
        for node in (ast.JoinedStr, ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp,
                     ast.GeneratorExp, ast.Set):
            self.nodes.pop(node, None)


def evaluate(expression, names, functions=None):
    """Evaluate an expression with the given names; raises ExpressionError on any failure.

    :param names: the record's fields and context values (``old``, ``user``, ``now`` ...)
    :param functions: extra functions (e.g. ``count`` bound to the database)
    """
    tree = parse(expression)
    old_limits = (simpleeval.MAX_STRING_LENGTH, simpleeval.MAX_POWER)
    simpleeval.MAX_STRING_LENGTH, simpleeval.MAX_POWER = MAX_STRING, MAX_POWER
    try:
        ev = _Evaluator(dict(names), {**FUNCTIONS, **(functions or {})})
        return ev.eval(expression.strip(), previously_parsed=tree.body)
    except ExpressionError:
        raise
    except simpleeval.NameNotDefined as err:
        raise ExpressionError(_("Unknown name “%(name)s”", name=err.name), expression) from None
    except simpleeval.FunctionNotDefined as err:
        raise ExpressionError(_("Unknown function “%(name)s”", name=err.func_name), expression) from None
    except (simpleeval.NumberTooHigh, simpleeval.IterableTooLong, OverflowError, MemoryError, RecursionError):
        raise ExpressionError(_("The expression would compute a value that is too large"), expression) from None
    except simpleeval.InvalidExpression as err:
        raise ExpressionError(_("Not allowed: %(detail)s", detail=str(err)[:200]), expression) from None
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, AttributeError) as err:
        raise ExpressionError(_("Could not evaluate: %(detail)s", detail=str(err)[:200]), expression) from None
    finally:
        simpleeval.MAX_STRING_LENGTH, simpleeval.MAX_POWER = old_limits


def truthy(expression, names, functions=None):
    """A condition's result; an empty condition holds."""
    if expression is None or not str(expression).strip():
        return True
    return bool(evaluate(expression, names, functions))


def names_for(data, props, old=None, user=None, record=None, event=None):
    """The names a rule's expressions see: every field (None when empty) plus the context."""
    names = {name: data.get(name) for name in props}
    names.update(old=Fields(old or {}), user=Fields(user or {}), now=clock.now().astimezone(clock.zone()),
                 record=Fields(record or {}), event=Fields(event or {}))
    return names


# --- checking against a schema -----------------------------------------------------------

def check(expression, props, extra_names=(), expect=None):
    """Problems with an expression for a form whose schema properties are ``props``.

    Reports syntax, unknown names and functions, wrong argument counts, and comparisons of a
    field with a literal of the wrong type or outside the field's choices. Returns a list of
    ExpressionError (empty when fine).
    """
    try:
        tree = parse(expression)
    except ExpressionError as err:
        return [err]
    problems = []
    known = set(props) | set(CONTEXT_NAMES) | set(extra_names)

    def add(msg, node):
        problems.append(ExpressionError(msg, expression, *_pos(node)))

    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in known:
            add(_("The form has no field “%(name)s”", name=node.id), node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in FUNCTIONS and name != "count":
                add(_("Unknown function “%(name)s”", name=name), node)
            else:
                lo, hi = ARITY.get(name, (0, None))
                n = len(node.args)
                if n < lo or (hi is not None and n > hi):
                    add(_("%(name)s() takes %(n)s arguments", name=name,
                          n=str(lo) if lo == hi else f"{lo}–{hi if hi is not None else '…'}"), node)
        elif isinstance(node, ast.Compare):
            _check_compare(node, props, add)
    return problems


def check_for_form(form_key, expression):
    """check() against a form's current published schema; raises LookupError for an unknown form."""
    from ..forms import catalog
    try:
        version = catalog.current_version(catalog.get_form(form_key))
    except catalog.FormNotFound:
        raise LookupError(form_key) from None
    return check(expression, version.schema["properties"] if version else {})


def _field_of(node, props):
    if isinstance(node, ast.Name) and node.id in props:
        return node.id
    # old.status / old["status"]
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "old" \
            and node.attr in props:
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "old" \
            and isinstance(node.slice, ast.Constant) and node.slice.value in props:
        return node.slice.value
    return None


def _json_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return None


def _check_compare(node, props, add):
    parts = [node.left, *node.comparators]
    for i, op in enumerate(node.ops):
        left, right = parts[i], parts[i + 1]
        for a, b in ((left, right), (right, left)):
            field = _field_of(a, props)
            if field is None:
                continue
            prop = props[field]
            ftype = prop.get("type")
            items = prop.get("items", {}) if ftype == "array" else None
            literals = []
            if isinstance(b, ast.Constant):
                literals = [b.value]
            elif isinstance(b, (ast.List, ast.Tuple)) and isinstance(op, (ast.In, ast.NotIn)) and b is right:
                literals = [e.value for e in b.elts if isinstance(e, ast.Constant)]
            for lit in literals:
                if lit is None:
                    continue
                if ftype == "array":
                    if isinstance(op, (ast.In, ast.NotIn)) and a is right:
                        choices = items.get("enum")
                        if choices is not None and lit not in choices:
                            add(_("“%(value)s” is not one of the choices of “%(name)s”", value=lit, name=field), b)
                    else:
                        add(_("“%(name)s” is a list: use contains(%(name)s, …) or “… in %(name)s”", name=field), a)
                    continue
                want = {"integer": "number", "number": "number", "string": "string", "boolean": "boolean"}.get(ftype)
                got = _json_type(lit)
                if want and got and want != got:
                    add(_("“%(name)s” holds %(want)s, compared here with %(got)s", name=field, want=want, got=got), b)
                elif "enum" in prop and lit not in prop["enum"]:
                    add(_("“%(value)s” is not one of the choices of “%(name)s”", value=lit, name=field), b)
