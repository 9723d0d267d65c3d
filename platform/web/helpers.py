"""Template helpers shared by every page."""
from flask_login import current_user

from ..forms import catalog, definitions
from ..i18n import NAMES, current_code, doc_locale, pick


def init_app(app):
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
