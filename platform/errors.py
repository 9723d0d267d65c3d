"""One error handler: roll back, then answer JSON for the API and HTML for pages.

Every response carries a request id (``X-Request-Id``: the caller's own when it sends a sane
one); an unhandled error is logged with its traceback under that id, and the 500 page shows it,
so a user can quote it and the log line can be found.
"""
import logging
import re
import uuid

from flask import g, has_request_context, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .inputs import BadParameter

log = logging.getLogger(__name__)
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id():
    """This request's id: a sane X-Request-Id from the caller (a proxy's), else a new one."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


def wants_json():
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json")


def messages():
    return {
        400: _("The request could not be understood."),
        401: _("Please sign in."),
        403: _("You are not allowed to do this."),
        404: _("Not found."),
        405: _("This method is not allowed here."),
        409: _("This conflicts with the current state."),
        412: _("The record was changed by someone else."),
        413: _("The request body is larger than 1 MiB."),
        415: _("Send JSON with Content-Type: application/json."),
        422: _("Some values are not valid."),
        428: _("Send If-Match with the record's version."),
        429: _("Too many attempts; try again later."),
        500: _("Something went wrong on our side; nothing was saved."),
    }


def handle(err):
    rid = request_id()
    if not isinstance(err, HTTPException):
        log.exception("unhandled error on %s %s (request %s)", request.method, request.path, rid,
                      extra={"request_id": rid})
        err = InternalServerError()
    db.session.rollback()
    code = err.code or 500
    text = err.description if isinstance(err, BadParameter) else messages().get(code, err.name)
    if wants_json():
        body = {"error": {"code": code, "message": text}}
        if isinstance(err, BadParameter):
            body["errors"] = {err.where: [text]}
        if code >= 500:
            body["error"]["request_id"] = rid
        headers = {"Allow": ", ".join(err.valid_methods)} if getattr(err, "valid_methods", None) else {}
        return jsonify(body), code, headers
    return render_template("error.html", code=code, message=text, request_id=rid if code >= 500 else None), code


def _tag(response):
    response.headers["X-Request-Id"] = request_id()
    return response


def init_app(app):
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)
    app.after_request(_tag)
