"""Bearer-token authentication and the request checks every API call shares."""
from flask import abort, g, jsonify, request
from flask_babel import gettext as _

from .. import inputs, sqlite
from ..extensions import db
from ..people.auth import note_use, token_row, use_due
from . import bp


@bp.before_request
def _authenticate():
    if request.endpoint == "api.openapi":
        return None  # the description is public; integrators read it before they hold a token
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    row = token_row(token.strip()) if scheme.lower() == "bearer" else None
    if row is None:
        response = jsonify({"error": {"code": 401, "message": _("A valid bearer token is required.")}})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="formflow"'
        return response
    g.user, g.token_id, g.token_defaults = row.user, row.id, dict(row.defaults or {})
    if use_due(row):
        # only last_used_at, before the route runs, in a transaction of its own: a GET's reading
        # transaction on SQLite cannot turn into a writing one once another connection has written
        db.session.commit()
        with sqlite.writing():
            note_use(row)
            db.session.commit()


def json_body(allowed):
    """The request's JSON object; 415/400/422 with a clear message when it is not usable."""
    if not request.is_json:
        abort(415)
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 from werkzeug
    try:
        body = inputs.parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        abort(problem(400, _("The body is not valid JSON: %(detail)s", detail=str(err))))
    except inputs.BadJSON as err:  # too deep, not JSON, or values no column can store
        abort(invalid(err.errors) if err.errors else problem(400, err.message))
    if not isinstance(body, dict):
        abort(problem(400, _("The body must be a JSON object.")))
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        abort(invalid({"/" + k: [_("Unknown field")] for k in unknown}))
    return body


def problem(code, message, **extra):
    response = jsonify({"error": {"code": code, "message": message}, **extra})
    response.status_code = code
    return response


def invalid(errors):
    """422 with field-level messages keyed by JSON pointer into the request body."""
    return problem(422, _("Some values are not valid."), errors=errors)


def require_admin():
    if g.user.role != "admin":
        abort(403)
