"""What a request's input must be before a route uses it: no NUL characters, ids and page
numbers that fit a column, JSON no deeper than anyone needs. Bad input is a 400 (or 422) naming
the parameter, never a 500 from the database or the JSON parser halfway through a request."""
import json
import math
import re

from flask import abort, g, jsonify, make_response, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, NotFound
from werkzeug.routing import IntegerConverter

from .forms.pointers import pointer

MAX_JSON_DEPTH = 64  # no form, rule or report comes near; Python's json recurses per level
MAX_ID = 2**31 - 1  # ids are INTEGER columns; PostgreSQL's is 32 bits
MAX_INT = 2**63 - 1  # what SQLite's integers and PostgreSQL's bigint hold
MAX_PAGE = 10**9  # (page - 1) * per_page stays far inside a 64-bit OFFSET

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class BadParameter(BadRequest):
    """A 400 for one request parameter; ``where`` names it (query, form field or path part)."""

    def __init__(self, where, message):
        super().__init__(description=message)
        self.where = where


class BadJSON(ValueError):
    """JSON text that cannot be used: ``message`` says why; ``errors`` maps JSON pointers to
    messages when the problem is in certain values (NUL characters, numbers no column holds)."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.message, self.errors = message, errors or {}


def shown(name):
    """A name as a message shows it: a NUL is invisible, so it is drawn as ␀."""
    return str(name).replace("\x00", "\u2400")


def nul_message(name):
    return _("“%(name)s” contains a NUL character, which cannot be stored.", name=shown(name))


def range_message(name, low, high):
    return _("“%(name)s” must be a whole number from %(min)s to %(max)s.", name=shown(name), min=low, max=high)


def length_message(name, most):
    return _("“%(name)s” is longer than %(max)s characters.", name=shown(name), max=most)


def whole_number(raw, low, high):
    """raw (query text or a JSON number) as an int within low..high, or None when it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]{1,20}", raw):
            return None
        raw = int(raw)
    return raw if isinstance(raw, int) and low <= raw <= high else None


def int_arg(name, default, low, high):
    """The query parameter ``name`` as a whole number in low..high (default when absent)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    value = whole_number(raw, low, high)
    if value is None:
        raise BadParameter(name, range_message(name, low, high))
    return value


def parse_json(text):
    """The JSON value of text, refusing (BadJSON) what a route or a column cannot take: nesting
    deeper than MAX_JSON_DEPTH (checked before parsing, so no depth can exhaust the stack), NUL
    characters, NaN, infinities and integers beyond 64 bits."""
    if _too_deep(text):
        raise BadJSON(_("The JSON is nested more than %(max)s levels deep.", max=MAX_JSON_DEPTH))
    try:
        value = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as err:
        raise BadJSON(_("Not valid JSON: line %(line)s, column %(col)s: %(msg)s",
                        line=err.lineno, col=err.colno, msg=err.msg)) from None
    errors = _unstorable(value)
    if errors:
        raise BadJSON(next(iter(errors.values()))[0], errors)
    return value


def _too_deep(text):
    depth = 0
    for char in _NOT_BRACKET.sub("", _STRING.sub("", text)):  # brackets outside strings
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _parse_int(text):
    # int() refuses more than 4300 digits with a bare ValueError; any integer longer than
    # MAX_INT's 19 digits is refused by name in _unstorable, so it need not be exact here.
    return int(text) if len(text) <= 21 else math.copysign(math.inf, -1 if text.startswith("-") else 1)


def _unstorable(value, limit=20):
    """{pointer: [message]} for NUL characters and numbers no column holds (the first ``limit``)."""
    errors, stack = {}, [((), value)]
    while stack and len(errors) < limit:
        path, item = stack.pop()
        name = path[-1] if path else "/"
        if isinstance(item, dict):
            for key, sub in item.items():
                if "\x00" in key:
                    errors[pointer((*path, key))] = [nul_message(key)]
                stack.append(((*path, key), sub))
        elif isinstance(item, list):
            stack.extend(((*path, i), sub) for i, sub in enumerate(item))
        elif isinstance(item, str) and "\x00" in item:
            errors.setdefault(pointer(path), []).append(nul_message(name))
        elif isinstance(item, float) and not math.isfinite(item) or (
                isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_INT):
            errors.setdefault(pointer(path), []).append(
                _("“%(name)s” is a number no database column can hold.", name=shown(name)))
    return errors


class IdConverter(IntegerConverter):
    """<int:...> in a route: an id past the id columns' range cannot exist, so it is a 404
    before the database sees it (which would answer an overflow error)."""

    def to_python(self, value):
        number = super().to_python(value)
        if number > MAX_ID:
            # not ValidationError: werkzeug would then answer 405 from a sibling rule's method
            raise NotFound()
        return number


def _refuse_nul():
    """PostgreSQL refuses NUL in text: refuse it in every parameter before a route runs."""
    texts = [*(request.view_args or {}).items(), *request.args.items(multi=True)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        texts += request.form.items(multi=True)
    for name, value in texts:
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            raise BadParameter(name, nul_message(name))


def _refuse_json_that_is_not_an_object():
    """Pages read a JSON body as form fields (Flask-WTF) or as an object: anything but a JSON
    object there (``1``, ``"x"``, a list) is a 400, not a 500 inside a form class. The API
    checks its bodies itself (api.auth.json_body)."""
    if request.blueprint == "api" or not request.is_json or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    try:
        body = parse_json(request.get_data(cache=True, as_text=True))
    except BadJSON as err:  # 422 for values no column can hold, 400 for a body that cannot be read
        abort(make_response(jsonify({"error": err.message, "errors": err.errors or {"": [err.message]}}),
                            422 if err.errors else 400))
    if not isinstance(body, dict):
        message = _("The body must be a JSON object.")
        abort(make_response(jsonify({"error": message, "errors": {"": [message]}}), 400))
    g.formflow_posted = body


def posted_object():
    """A page's posted JSON object, as checked before the route ran ({} when none was posted)."""
    return g.get("formflow_posted") or {}


def init_app(app):
    """Before any route is registered: the bounded id converter, the NUL check, and JSON
    bodies of pages that must be objects."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(_refuse_nul)
    app.before_request(_refuse_json_that_is_not_an_object)
