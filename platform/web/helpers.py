"""Template helpers shared by every page."""
from flask_login import current_user

from ..forms import catalog, definitions
from ..i18n import NAMES, current_code, doc_locale, pick


def when(value, pattern="yyyy-MM-dd HH:mm"):
    """An ISO moment (as jobs and the run log keep them) in the business time zone, for people."""
    from datetime import datetime

    from flask_babel import format_datetime
    if not value:
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, pattern)


def init_app(app):
    app.add_template_filter(when)

    @app.context_processor
    def _globals():
        forms = []
        if getattr(current_user, "is_authenticated", False):
            forms = [f for f in catalog.all_forms() if catalog.current_version(f) is not None]
        from .work import counts
        due, unread = counts()
        return {"pick": pick, "due_count": due, "unread_count": unread, "zip": zip, "doc_locale": doc_locale(), "locale_names": NAMES,
                "current_locale": current_code(), "nav_forms": forms,
                "sections": lambda v: definitions.field_order(v.schema, v.ui)}
