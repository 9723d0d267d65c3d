"""One error handler: roll back, then answer JSON for the API and HTML for pages."""
import logging

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .inputs import BadParameter

log = logging.getLogger(__name__)


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
    if not isinstance(err, HTTPException):
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = InternalServerError()
    db.session.rollback()
    code = err.code or 500
    text = err.description if isinstance(err, BadParameter) else messages().get(code, err.name)
    if wants_json():
        body = {"error": {"code": code, "message": text}}
        if isinstance(err, BadParameter):
            body["errors"] = {err.where: [text]}
        headers = {"Allow": ", ".join(err.valid_methods)} if getattr(err, "valid_methods", None) else {}
        return jsonify(body), code, headers
    return render_template("error.html", code=code, message=text), code


def init_app(app):
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)
