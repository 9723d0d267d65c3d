"""Every expression Formflow evaluates goes through this module (simpleeval, sandboxed).

Expressions are single Python-like expressions over a record: ``status == "new" and
hours_since(created_at) > 2``. They are parsed once and cached, checked against a form's
schema before a rule may be enabled, and evaluated with a deny-by-default evaluator:
no comprehensions, no f-strings, an attribute allow-list, and named size limits.

Bounds. Every operation that can build a large value (``+``, ``*``, ``%`` formatting,
``str.replace``, ``str.split``, ``str()``, list literals, ``**``) predicts the size of its result
from its arguments and refuses before building it: text up to MAX_STRING characters, lists up to
MAX_ITEMS (their items plus what those hold), whole numbers up to MAX_DIGITS digits, exponents
up to MAX_POWER. The limits belong to each evaluator (a ``Limits``), never to simpleeval's
module globals, so threads cannot see each other's limits.

Dates. A field whose schema says ``format: date`` reaches expressions as a date, ``format:
date-time`` as an aware date-time in the business time zone (``clock.zone()``); a stored value
that does not parse stays the text it is. They compare as instants: ISO text beside a date or
date-time is read as one (``expected < today()``, ``visit < "2026-12-01T03:00+00:00"``), and a
date beside a date-time stands for its midnight in the business time zone. Durations are not
values: ``a - b`` of two dates or date-times is refused, and ``hours_between(a, b)`` (hours, by
instant) and ``days_between(a, b)`` (calendar days in the business time zone) say how far apart
they are. ``today()`` stays the text ``YYYY-MM-DD``. Values written back by actions become ISO
text again (``actions._values``).
"""
import ast
import functools
import math
import operator as op
import re
from dataclasses import dataclass
from datetime import date, datetime

import simpleeval
from flask_babel import gettext as _

from .. import clock

MAX_LENGTH = 1000          # characters in one expression
MAX_NODES = 300            # syntax-tree nodes in one expression
MAX_STRING = 10_000        # characters in any text an expression builds
MAX_ITEMS = 10_000         # size of any list an expression builds: its items plus what they hold
MAX_DIGITS = 4_300         # digits of any whole number (Python's own limit for turning one into text)
MAX_POWER = 10_000         # largest exponent


@dataclass(frozen=True)
class Limits:
    """The size limits one evaluator applies (the module's MAX_* by default)."""
    string: int = MAX_STRING
    items: int = MAX_ITEMS
    digits: int = MAX_DIGITS
    power: int = MAX_POWER


LIMITS = Limits()

# Attributes an expression may read, per kind of value: reading only, nothing that formats or
# mutates. Keys of old/user/record/event read as attributes instead (Fields).
ALLOWED_ATTRS = {
    "text": {"lower", "upper", "strip", "startswith", "endswith", "count", "find", "isdigit", "split", "replace"},
    "fields": {"get", "keys", "values", "items"},
    "list": {"count", "index"},
    "date": {"year", "month", "day", "weekday", "isoformat"},
    "date-time": {"year", "month", "day", "hour", "minute", "weekday", "isoformat", "date"},
}
ANY_ATTR = set().union(*ALLOWED_ATTRS.values())

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


# --- kinds of values, in the words users know ---------------------------------------------

def kind(value):
    """The kind of a value: text, number, boolean, date, date-time, list, fields, empty or other."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "date-time"
    if isinstance(value, date):
        return "date"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "fields"
    return "other"


def word(k):
    """A kind in the user's words ("a date-time", 日期时间)."""
    return {"empty": _("empty"), "boolean": _("yes/no"), "number": _("a number"), "text": _("text"),
            "date": _("a date"), "date-time": _("a date-time"), "list": _("a list"),
            "fields": _("a group of fields")}.get(k, _("a value"))


def _word_of(value):
    return word(kind(value))


def _show(value):
    """A short rendering of a value for a message."""
    if isinstance(value, str):
        return "“" + (value if len(value) <= 30 else value[:30] + "…") + "”"
    if isinstance(value, (bool, int, float)) and not (isinstance(value, int) and _digits(value) > 30):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return _word_of(value)


def _digits(number):
    """Digits of a whole number, from its bit length (never turning it into text)."""
    return int(abs(number).bit_length() * 0.30103) + 1


def _size(value, budget):
    """How large a value is: characters of text, digits of whole numbers, and for lists and
    groups their items plus what those hold; counting stops once past budget."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple, dict)):
        return 1
    if isinstance(value, int):
        return _digits(value)
    total = len(value)
    for item in (value.items() if isinstance(value, dict) else value):
        if total > budget:
            break
        total += _size(item, budget - total)
    return total


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


def _local_date(value):
    """The calendar day of a date or moment in the business time zone (None when empty)."""
    dt = _as_datetime(value)
    return None if dt is None else dt.astimezone(clock.zone()).date()


def hours_since(value):
    """Hours from a date/time until now (None when empty)."""
    dt = _as_datetime(value)
    return None if dt is None else (clock.now() - dt).total_seconds() / 3600


def days_since(value):
    dt = _as_datetime(value)
    return None if dt is None else (clock.now() - dt).total_seconds() / 86400


def days_until(value):
    """Whole days from today (business time zone) until a date; negative once it has passed."""
    day = _local_date(value)
    return None if day is None else (day - _local_date(clock.now())).days


def hours_between(start, end):
    """Hours from start to end, by instant (negative when end comes first; None when either is empty)."""
    a, b = _as_datetime(start), _as_datetime(end)
    return None if a is None or b is None else (b - a).total_seconds() / 3600


def days_between(start, end):
    """Calendar days from start's day to end's day in the business time zone (None when either is empty)."""
    a, b = _local_date(start), _local_date(end)
    return None if a is None or b is None else (b - a).days


def today():
    """Today's date in the business time zone, as YYYY-MM-DD (comparable with date fields)."""
    return _local_date(clock.now()).isoformat()


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
    "hours_between": hours_between, "days_between": days_between,
    "contains": contains, "any_of": any_of, "all_of": all_of, "coalesce": coalesce, "lower": lower,
    "len": length, "abs": abs, "min": min, "max": max, "round": round, "int": int, "float": float, "str": str,
}
# (min arguments, max arguments or None) for checking calls before they run
ARITY = {"hours_since": (1, 1), "days_since": (1, 1), "days_until": (1, 1), "today": (0, 0),
         "hours_between": (2, 2), "days_between": (2, 2),
         "contains": (2, 2), "any_of": (2, None), "all_of": (2, None), "coalesce": (1, None),
         "lower": (1, 1), "len": (1, 1), "abs": (1, 1), "min": (1, None), "max": (1, None),
         "round": (1, 2), "int": (1, 1), "float": (1, 1), "str": (1, 1), "count": (1, 2)}
# The kind each function returns, for type checks (absent: depends on its arguments)
RETURNS = {"hours_since": "number", "days_since": "number", "days_until": "number", "today": "text",
           "hours_between": "number", "days_between": "number",
           "contains": "boolean", "any_of": "boolean", "all_of": "boolean", "lower": "text", "len": "number",
           "count": "number", "abs": "number", "round": "number", "int": "number", "float": "number", "str": "text"}
# Functions whose result depends only on their arguments: the check evaluates them on constants
PURE = {"contains", "any_of", "all_of", "coalesce", "lower", "len", "abs", "min", "max", "round", "int", "float",
        "str"}
CONTEXT_NAMES = ("old", "user", "now", "record", "event", "owner", "created_at", "updated_at", "True", "False", "None")
# What old/user/record hold (event is whatever record triggered the rule)
CONTEXT_KEYS = {"user": {"username": "text", "role": "text", "team": "text", "skills": "list"},
                "record": {"id": "number", "owner": "text", "created_at": "date-time", "updated_at": "date-time"}}


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
        if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, complex)):
            # no field holds bytes or complex numbers, and their sizes are not bounded below
            raise ExpressionError(_("“%(what)s” is not allowed in expressions", what=type(node.value).__name__),
                                  expression, *_pos(node))
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
    """A context object (old, user, record, event) whose keys read as attributes: old.status.

    A key it does not hold reads as None, by attribute or by subscript.
    """

    def __missing__(self, key):
        return None


# %[(key)][flags][width][.precision][length]type, as printf-style formatting reads it
_FORMAT_SPEC = re.compile(r"%(?:\(([^)]*)\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)


_NESTED_KEY = re.compile(r"%\([^)]*\(")


def _subtracting_moments():
    return _("Dates and date-times cannot be subtracted: use hours_between(a, b) or days_between(a, b)")


class _Evaluator(simpleeval.EvalWithCompoundTypes):
    """simpleeval's evaluator with the size limits on the instance: each operation that can build
    a large value checks the size it would build against ``self.limits`` first, and every
    refusal is an ExpressionError in plain words carrying the position of its node."""

    def __init__(self, names, functions, limits=LIMITS, own=()):
        super().__init__(functions=functions, names=names)
        self.limits, self.own = limits, set(own)
        for node in (ast.JoinedStr, ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp,
                     ast.GeneratorExp, ast.Set):
            self.nodes.pop(node, None)
        for name, builtin in (("list", list), ("tuple", tuple), ("dict", dict), ("set", set)):
            if self.functions.get(name) is builtin:  # EvalWithCompoundTypes adds them, unbounded
                del self.functions[name]
        self.functions.update(str=self._str, lower=self._lower, round=self._round)
        self.operators = {
            ast.Add: self._add, ast.Sub: self._sub, ast.Mult: self._mult, ast.Mod: self._mod, ast.Pow: self._pow,
            ast.Div: lambda a, b: self._apply("/", op.truediv, a, b),
            ast.FloorDiv: lambda a, b: self._apply("//", op.floordiv, a, b),
            ast.USub: lambda a: self._unary("-", op.neg, a), ast.UAdd: lambda a: self._unary("+", op.pos, a),
            ast.Not: op.not_,
            ast.Eq: lambda a, b: self._compare(op.eq, a, b, strict=False),
            ast.NotEq: lambda a, b: self._compare(op.ne, a, b, strict=False),
            ast.Lt: lambda a, b: self._compare(op.lt, a, b), ast.LtE: lambda a, b: self._compare(op.le, a, b),
            ast.Gt: lambda a, b: self._compare(op.gt, a, b), ast.GtE: lambda a, b: self._compare(op.ge, a, b),
            ast.In: self._in, ast.NotIn: lambda a, b: not self._in(a, b),
            ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
        }

    # every node: a refusal carries the innermost node's position; nothing Python-internal escapes
    def _eval(self, node):
        try:
            return super()._eval(node)
        except ExpressionError as err:
            if err.col is None:
                err.line, err.col = _pos(node)
            raise
        except simpleeval.NameNotDefined as err:
            raise ExpressionError(_("Unknown name “%(name)s”", name=err.name), self.expr, *_pos(node)) from None
        except simpleeval.FunctionNotDefined as err:
            raise ExpressionError(_("Unknown function “%(name)s”", name=err.func_name), self.expr,
                                  *_pos(node)) from None
        except (OverflowError, MemoryError, RecursionError):
            raise ExpressionError(_("The expression would compute a value that is too large"), self.expr,
                                  *_pos(node)) from None
        except ZeroDivisionError:
            raise ExpressionError(_("Division by zero"), self.expr, *_pos(node)) from None
        except (simpleeval.InvalidExpression, TypeError, ValueError, KeyError, IndexError, AttributeError):
            raise ExpressionError(_("This part of the expression could not be evaluated"), self.expr,
                                  *_pos(node)) from None

    # --- limits
    def _fits_text(self, size):
        if size > self.limits.string:
            raise ExpressionError(_("The text would be longer than %(n)s characters", n=self.limits.string))

    def _fits_items(self, size):
        if size > self.limits.items:
            raise ExpressionError(_("The list would be larger than %(n)s items", n=self.limits.items))

    def _fits_digits(self, digits):
        if digits > self.limits.digits:
            raise ExpressionError(_("The number would have more than %(n)s digits", n=self.limits.digits))

    def _size(self, value):
        return _size(value, self.limits.items)

    # --- operators
    def _apply(self, symbol, fn, a, b):
        try:
            return fn(a, b)
        except ZeroDivisionError:
            raise ExpressionError(_("Division by zero")) from None
        except OverflowError:
            raise ExpressionError(_("The expression would compute a value that is too large")) from None
        except (TypeError, ValueError, KeyError):
            raise self._cannot(symbol, a, b) from None

    @staticmethod
    def _cannot(symbol, a, b):
        return ExpressionError(_("Cannot use “%(op)s” on %(a)s and %(b)s", op=symbol, a=_word_of(a), b=_word_of(b)))

    def _unary(self, symbol, fn, a):
        try:
            return fn(a)
        except TypeError:
            raise ExpressionError(_("Cannot use “%(op)s” on %(a)s", op=symbol, a=_word_of(a))) from None

    def _add(self, a, b):
        if isinstance(a, date) or isinstance(b, date):
            raise self._cannot("+", a, b)
        if isinstance(a, str) and isinstance(b, str):
            self._fits_text(len(a) + len(b))
        elif isinstance(a, (list, tuple)) and type(a) is type(b):
            self._fits_items(self._size(a) + self._size(b))
        return self._apply("+", op.add, a, b)

    def _sub(self, a, b):
        if isinstance(a, date) and isinstance(b, date):
            raise ExpressionError(_subtracting_moments())
        if isinstance(a, date) or isinstance(b, date):
            raise self._cannot("-", a, b)
        return self._apply("-", op.sub, a, b)

    def _mult(self, a, b):
        seq, times = (a, b) if isinstance(b, int) else (b, a)
        if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
            if isinstance(seq, str):
                self._fits_text(len(seq) * max(times, 0))
            else:
                self._fits_items(self._size(seq) * max(times, 0))
        elif isinstance(a, int) and isinstance(b, int):
            self._fits_digits(_digits(a) + _digits(b))
        return self._apply("*", op.mul, a, b)

    def _pow(self, a, b):
        if isinstance(b, (int, float)) and abs(b) > self.limits.power:
            raise ExpressionError(_("The exponent may be at most %(n)s", n=self.limits.power))
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            self._fits_digits(int(b * math.log10(abs(a))) + 1)
        return self._apply("**", op.pow, a, b)

    def _mod(self, a, b):
        if isinstance(a, str):
            if _NESTED_KEY.search(a):  # Python reads %(a(b)c) as one key: the size could not be bounded
                raise ExpressionError(_("A text format's %(key)s may not contain brackets", key="%(…)"))
            self._fits_text(self._formatted_size(a, b))
        return self._apply("%", op.mod, a, b)

    def _formatted_size(self, fmt, args):
        """An upper bound of len(fmt % args), read from the format's specifications."""
        values = list(args) if isinstance(args, tuple) else [args]
        total, position = len(fmt), 0
        for key, width, precision, conversion in _FORMAT_SPEC.findall(fmt):
            if conversion == "%":
                continue
            if "*" in (width, precision):
                raise ExpressionError(_("A text format cannot take its width from a value (“*”)"))
            if key and isinstance(args, dict):
                value = args.get(key)
            else:
                value = values[position] if position < len(values) else None
                position += 1
            # a number's text is at most a float's 309 digits and sign, or its own digits
            size = self._size(value) if conversion in "sra" else max(self._size(value), 400)
            total += int(width or 0) + int(precision or 0) + size
            if total > self.limits.string:
                break
        return total

    def _compare(self, fn, a, b, strict=True):
        a, b = _moments(a, b, strict)
        try:
            return fn(a, b)
        except TypeError:
            raise ExpressionError(_("Cannot compare %(a)s with %(b)s", a=_word_of(a), b=_word_of(b))) from None

    @staticmethod
    def _in(a, b):
        try:
            return a in b
        except TypeError:
            raise ExpressionError(_("Cannot look for %(a)s in %(b)s", a=_word_of(a), b=_word_of(b))) from None

    # --- functions that build text, and round()
    def _str(self, value):
        self._fits_text(self._size(value))
        return str(value)

    def _lower(self, value):
        return None if value is None else self._str(value).lower()

    def _round(self, number, ndigits=None):
        if isinstance(ndigits, int) and abs(ndigits) > self.limits.digits:
            raise ExpressionError(_("round() keeps at most %(n)s digits", n=self.limits.digits))
        return round(number, ndigits)

    def _text_replace(self, text):
        def replace(old, new, count=-1):
            if isinstance(old, str) and isinstance(new, str) and isinstance(count, int):
                found = text.count(old) if old else len(text) + 1
                found = min(found, count) if count >= 0 else found
                self._fits_text(len(text) + found * (len(new) - len(old)))
            return text.replace(old, new, count)
        return replace

    def _text_split(self, text):
        def split(sep=None, maxsplit=-1):
            if sep is None:
                pieces = sum(1 for _match in re.finditer(r"\S+", text))
            else:
                pieces = text.count(sep) + 1 if isinstance(sep, str) and sep else 0
            if isinstance(maxsplit, int) and maxsplit >= 0:
                pieces = min(pieces, maxsplit + 1)
            self._fits_items(pieces + len(text))
            return text.split(sep, maxsplit)
        return split

    # --- nodes
    def _eval_constant(self, node):
        if isinstance(node.value, str):
            self._fits_text(len(node.value))
        return node.value

    def _items(self, nodes):
        items, size = [], 0
        for node in nodes:
            value = self._eval(node)
            size += 1 + self._size(value)
            self._fits_items(size)
            items.append(value)
        return items, size

    def _eval_list(self, node):
        return self._items(node.elts)[0]

    def _eval_tuple(self, node):
        return tuple(self._items(node.elts)[0])

    def _eval_dict(self, node):
        result, size = {}, 0
        for key, value in zip(node.keys, node.values):
            if key is None:  # {**x}
                more = self._eval(value)
                if not isinstance(more, dict):
                    raise ExpressionError(_("Cannot use “%(op)s” on %(a)s", op="**", a=_word_of(more)))
                size += self._size(more)
                self._fits_items(size)
                result.update(more)
            else:
                (k, v), more = self._items((key, value))
                size += more
                self._fits_items(size)
                result[k] = v
        return result

    def _eval_attribute(self, node):
        base = self._eval(node.value)
        if isinstance(base, Fields):
            return base.get(node.attr)
        k = kind(base)
        if node.attr not in ALLOWED_ATTRS.get(k, ()):
            raise ExpressionError(_("“%(name)s” is not available on %(type)s", name=node.attr, type=word(k)))
        if k == "text" and node.attr in ("replace", "split"):
            return getattr(self, "_text_" + node.attr)(base)
        return getattr(base, node.attr)

    def _eval_subscript(self, node):
        container, key = self._eval(node.value), self._eval(node.slice)
        try:
            return container[key]
        except (KeyError, IndexError):
            raise ExpressionError(_("%(type)s has no item %(key)s", type=_word_of(container), key=_show(key))) from None
        except (TypeError, ValueError):
            raise ExpressionError(_("Cannot take an item of %(type)s with %(key)s", type=_word_of(container),
                                    key=_word_of(key))) from None

    def _eval_call(self, node):
        if isinstance(node.func, ast.Attribute):
            func, name = self._eval(node.func), node.func.attr
        else:
            name = node.func.id
            if name not in self.functions:
                raise ExpressionError(_("Unknown function “%(name)s”", name=name))
            func = self.functions[name]
        if func in simpleeval.DISALLOW_FUNCTIONS:
            raise ExpressionError(_("“%(what)s” is not allowed in expressions", what=name))
        args = [self._eval(a) for a in node.args]
        kwargs = dict(self._eval(k) for k in node.keywords)
        try:
            return func(*args, **kwargs)
        except (ExpressionError, ZeroDivisionError, OverflowError, RecursionError, MemoryError):
            raise
        except TypeError:
            raise ExpressionError(_("%(name)s() cannot take %(args)s", name=name,
                                    args=_(", ").join(_word_of(a) for a in args) or _("nothing"))) from None
        except (ValueError, KeyError, IndexError) as err:
            if name in self.own:  # the engine's own functions (count) explain themselves
                raise ExpressionError(str(err)) from None
            raise ExpressionError(_("%(name)s() cannot use the value %(value)s", name=name,
                                    value=_show(args[0]) if args else _("nothing"))) from None


def _moments(a, b, strict):
    """a and b made comparable as instants when either is a date or date-time: ISO text beside one
    is read as one, and a date beside a date-time is its midnight in the business time zone.
    Text that is not a date is refused when ordering (strict) and left as it is otherwise."""
    if not (isinstance(a, date) or isinstance(b, date)):
        return a, b
    try:
        a2, b2 = _read_moment(a, b), _read_moment(b, a)
    except ValueError:
        if not strict:
            return a, b
        bad = a if isinstance(a, str) else b
        raise ExpressionError(_("“%(value)s” is not a date or date-time", value=bad[:30])) from None
    if isinstance(a2, date) and isinstance(b2, date) and isinstance(a2, datetime) != isinstance(b2, datetime):
        a2, b2 = _as_datetime(a2), _as_datetime(b2)
    return a2, b2


def _read_moment(value, beside):
    if not (isinstance(value, str) and isinstance(beside, date)):
        return value
    if len(value) == 10 and not isinstance(beside, datetime):
        return date.fromisoformat(value)
    return _as_datetime(value)


def _run(evaluator, expression, node):
    try:
        return evaluator.eval(expression.strip(), previously_parsed=node)
    except ExpressionError as err:
        err.expression = expression
        raise


def evaluate(expression, names, functions=None, limits=None):
    """Evaluate an expression with the given names; raises ExpressionError on any failure.

    :param names: the record's fields and context values (``old``, ``user``, ``now`` ...)
    :param functions: extra functions (e.g. ``count`` bound to the database)
    :param limits: the size limits (``LIMITS``, the module's MAX_*, by default)
    """
    tree = parse(expression)
    evaluator = _Evaluator(dict(names), {**FUNCTIONS, **(functions or {})}, limits or LIMITS, own=functions or ())
    return _run(evaluator, expression, tree.body)


def truthy(expression, names, functions=None):
    """A condition's result; an empty condition holds."""
    if expression is None or not str(expression).strip():
        return True
    return bool(evaluate(expression, names, functions))


def _typed(value, prop):
    """A stored value as expressions see it: dates and date-times (aware, in the business time zone)
    as values, anything else (including text that does not parse) as it is."""
    fmt = prop.get("format") if isinstance(prop, dict) else None
    if not isinstance(value, str) or fmt not in ("date", "date-time"):
        return value
    try:
        if fmt == "date":
            return date.fromisoformat(value)
        return _as_datetime(value).astimezone(clock.zone())
    except ValueError:
        return value


def names_for(data, props, old=None, user=None, record=None, event=None):
    """The names a rule's expressions see: every field (None when empty) plus the context."""
    names = {name: _typed(data.get(name), prop) for name, prop in props.items()}
    old = {name: _typed(value, props.get(name)) for name, value in (old or {}).items()}
    names.update(old=Fields(old), user=Fields(user or {}), now=clock.now().astimezone(clock.zone()),
                 record=Fields(record or {}), event=Fields(event or {}))
    return names


# --- checking against a schema -----------------------------------------------------------

def check(expression, props, extra_names=(), expect=None):
    """Problems with an expression for a form whose schema properties are ``props``.

    Reports syntax, unknown names and functions, wrong argument counts, attributes that are not
    allowed, operations and comparisons of kinds that cannot meet (a field with a literal of the
    wrong type or outside its choices included), and constant parts that can only fail (they are
    evaluated with the same bounded evaluator). Returns a list of ExpressionError (empty when fine).
    """
    try:
        tree = parse(expression)
    except ExpressionError as err:
        return [err]
    problems, seen = [], set()
    known = set(props) | set(CONTEXT_NAMES) | set(extra_names)

    def add(msg, node=None, line=None, col=None):
        where = _pos(node) if node is not None else (line, col)
        if (msg, *where) not in seen:
            seen.add((msg, *where))
            problems.append(ExpressionError(msg, expression, *where))

    types = _Kinds(props)
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
            _check_compare(node, props, add, types)
        elif isinstance(node, ast.Attribute):
            _check_attribute(node, props, add, types)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            _check_key(node.value.id, node.slice.value, node, props, add)
        elif isinstance(node, ast.BinOp):
            _check_binop(node, add, types)
    _fold(tree.body, expression, add)
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


def _prop_kind(prop):
    """The kind of value a schema property gives expressions (None when it cannot be told)."""
    if not isinstance(prop, dict):
        return None
    ftype = prop.get("type")
    if isinstance(ftype, list):
        real = [t for t in ftype if t != "null"]
        ftype = real[0] if len(real) == 1 else None
    if ftype == "string" and prop.get("format") in ("date", "date-time"):
        return prop["format"]
    return {"integer": "number", "number": "number", "string": "text", "boolean": "boolean", "array": "list",
            "object": "fields"}.get(ftype)


# What reading an attribute, or calling a method, of a known kind gives
ATTR_KINDS = {"year": "number", "month": "number", "day": "number", "hour": "number", "minute": "number"}
METHOD_KINDS = {"lower": "text", "upper": "text", "strip": "text", "replace": "text", "isoformat": "text",
                "startswith": "boolean", "endswith": "boolean", "isdigit": "boolean", "count": "number",
                "find": "number", "index": "number", "weekday": "number", "split": "list", "date": "date"}
NUMERIC = {"number", "boolean"}
MOMENTS = {"date", "date-time"}


class _Kinds:
    """Infers the kind of a syntax node from the schema, where it can be told (None otherwise)."""

    def __init__(self, props):
        self.props = props

    def __call__(self, node):
        if isinstance(node, ast.Constant):
            return kind(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.props:
                return _prop_kind(self.props[node.id])
            return {"now": "date-time", "owner": "text", "created_at": "date-time",
                    "updated_at": "date-time"}.get(node.id)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "old":
                return _prop_kind(self.props.get(node.attr))
            if isinstance(node.value, ast.Name) and node.value.id in CONTEXT_KEYS:
                return CONTEXT_KEYS[node.value.id].get(node.attr)
            return ATTR_KINDS.get(node.attr) if self(node.value) in MOMENTS else None
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                return RETURNS.get(node.func.id)
            return METHOD_KINDS.get(node.func.attr) if self(node.func.value) is not None else None
        if isinstance(node, (ast.Compare,)) or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)):
            return "boolean"
        if isinstance(node, ast.UnaryOp):
            return "number" if self(node.operand) in NUMERIC else None
        if isinstance(node, (ast.List, ast.Tuple)):
            return "list"
        if isinstance(node, ast.Dict):
            return "fields"
        if isinstance(node, ast.IfExp):
            body, orelse = self(node.body), self(node.orelse)
            return body if body == orelse else None
        if isinstance(node, ast.BinOp):
            a, b = self(node.left), self(node.right)
            if a in NUMERIC and b in NUMERIC:
                return "number"
            if isinstance(node.op, ast.Mod) and a == "text":
                return "text"
            if isinstance(node.op, ast.Add) and a == b and a in ("text", "list"):
                return a
            if isinstance(node.op, ast.Mult) and {a, b} & {"text", "list"} and {a, b} & NUMERIC:
                return a if a in ("text", "list") else b
        return None


def _arithmetic_fits(operation, a, b):
    if a in NUMERIC and b in NUMERIC:
        return True
    if isinstance(operation, ast.Add):
        return a == b and a in ("text", "list")
    if isinstance(operation, ast.Mult):
        return (a in ("text", "list") and b in NUMERIC) or (b in ("text", "list") and a in NUMERIC)
    if isinstance(operation, ast.Mod):
        return a == "text"
    return False


_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}


def _check_binop(node, add, kinds):
    a, b = kinds(node.left), kinds(node.right)
    if a is None or b is None:
        return
    if isinstance(node.op, ast.Sub) and a in MOMENTS and b in MOMENTS:
        add(_subtracting_moments(), node)
    elif not _arithmetic_fits(node.op, a, b):
        add(_("Cannot use “%(op)s” on %(a)s and %(b)s", op=_SYMBOLS[type(node.op)], a=word(a), b=word(b)), node)


def _check_attribute(node, props, add, kinds):
    base = node.value
    if isinstance(base, ast.Name) and base.id in ("old", "user", "record", "event"):
        _check_key(base.id, node.attr, node, props, add)
        return
    k = kinds(base)
    if k is None:
        if node.attr not in ANY_ATTR:
            add(_("“%(what)s” is not allowed in expressions", what=node.attr), node)
    elif node.attr not in ALLOWED_ATTRS.get(k, ()):
        add(_("“%(name)s” is not available on %(type)s", name=node.attr, type=word(k)), node)


def _check_key(name, key, node, props, add):
    """old.x / user.x / record.x (or [...]) must be something they hold; event holds anything."""
    if name == "old" and key not in props:
        add(_("The form has no field “%(name)s”", name=key), node)
    elif name in CONTEXT_KEYS and key not in CONTEXT_KEYS[name]:
        add(_("“%(name)s” has no “%(attr)s”", name=name, attr=key), node)


def _is_moment_text(value):
    try:
        _as_datetime(value)
        return True
    except ValueError:
        return False


def _json_type(value):
    return kind(value) if isinstance(value, (bool, int, float, str)) else None


def _check_compare(node, props, add, kinds):
    parts = [node.left, *node.comparators]
    for i, op_ in enumerate(node.ops):
        left, right = parts[i], parts[i + 1]
        if _check_field_literal(op_, left, right, props, add):
            continue
        a, b = kinds(left), kinds(right)
        if a is None or b is None:
            continue
        if isinstance(op_, (ast.In, ast.NotIn)):
            if b not in ("text", "list", "fields") or (b == "text" and a != "text"):
                add(_("Cannot look for %(a)s in %(b)s", a=word(a), b=word(b)), node)
        elif isinstance(op_, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) and not _orderable(a, b):
            add(_("Cannot compare %(a)s with %(b)s", a=word(a), b=word(b)), node)


def _orderable(a, b):
    if a in NUMERIC and b in NUMERIC:
        return True
    if a in MOMENTS or b in MOMENTS:
        return {a, b} <= MOMENTS | {"text"}
    return a == b and a in ("text", "list")


def _check_field_literal(op_, left, right, props, add):
    """A field compared with literals: their type and the field's choices. True when it was such a pair."""
    handled = False
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
        elif isinstance(b, (ast.List, ast.Tuple)) and isinstance(op_, (ast.In, ast.NotIn)) and b is right:
            literals = [e.value for e in b.elts if isinstance(e, ast.Constant)]
        else:
            continue
        handled = True
        for lit in literals:
            if lit is None:
                continue
            if ftype == "array":
                if isinstance(op_, (ast.In, ast.NotIn)) and a is right:
                    choices = items.get("enum")
                    if choices is not None and lit not in choices:
                        add(_("“%(value)s” is not one of the choices of “%(name)s”", value=lit, name=field), b)
                else:
                    add(_("“%(name)s” is a list: use contains(%(name)s, …) or “… in %(name)s”", name=field), a)
                continue
            want, got = _prop_kind(prop), _json_type(lit)
            if want in MOMENTS and got == "text":
                if not _is_moment_text(lit):
                    add(_("“%(value)s” is not a date or date-time", value=lit[:30]), b)
            elif want and got and want != got:
                add(_("“%(name)s” holds %(want)s, compared here with %(got)s", name=field, want=word(want),
                      got=word(got)), b)
            elif "enum" in prop and lit not in prop["enum"]:
                add(_("“%(value)s” is not one of the choices of “%(name)s”", value=lit, name=field), b)
    return handled


def _constant(node):
    """Does a node depend on nothing but literals and pure functions?"""
    if isinstance(node, ast.Name):
        return False
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            if node.func.id not in PURE:
                return False
        elif not _constant(node.func):
            return False
        return all(_constant(a) for a in node.args) and all(_constant(k.value) for k in node.keywords)
    return all(_constant(child) for child in ast.iter_child_nodes(node))


def _fold(node, expression, add):
    """Evaluate each largest constant part with the bounded evaluator; report what it refuses."""
    if _constant(node):
        if isinstance(node, ast.expr) and not isinstance(node, ast.Constant):
            try:
                _run(_Evaluator({}, dict(FUNCTIONS)), expression, node)
            except ExpressionError as err:
                add(err.message, line=err.line, col=err.col)
        return
    for child in ast.iter_child_nodes(node):
        _fold(child, expression, add)
