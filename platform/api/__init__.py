"""REST API v1: bearer-token JSON over the engine."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import auth, forms, jobs, records, reports, rules, users, openapi  # noqa: E402,F401


def init_app(app):
    from ..extensions import csrf
    csrf.exempt(bp)  # bearer tokens, never cookies: nothing for a forged request to ride on
    app.register_blueprint(bp)
