"""Server-rendered pages."""
from flask import Blueprint

bp = Blueprint("web", __name__)

from . import account, admin, pages, reports, rules, work  # noqa: E402,F401


def init_app(app):
    from . import helpers
    helpers.init_app(app)
    app.register_blueprint(bp)
