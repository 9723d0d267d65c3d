"""Languages: zh-CN by default, English second; a per-user choice."""
from flask import current_app, g, has_request_context, request, session
from flask_babel import get_locale
from flask_login import current_user

# Babel spells locales with "_", documents (BCP 47) with "-".
LOCALES = {"zh_CN": "zh-CN", "en": "en"}
NAMES = {"zh_CN": "简体中文", "en": "English"}


def select_locale():
    """The user's saved choice, then the session's, then zh-CN (the product's default).

    API clients may also ask with Accept-Language; without it their user's choice holds.
    """
    if not has_request_context():
        return current_app.config["DEFAULT_LOCALE"]
    if request.path.startswith("/api/"):
        if "Accept-Language" in request.headers:
            best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
            if best:
                return "en" if best == "en" else "zh_CN"
        api_user = g.get("user")
        if api_user is not None and api_user.locale in LOCALES.values():
            return api_user.locale.replace("-", "_")
        return current_app.config["DEFAULT_LOCALE"]
    if getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES.values():
        return current_user.locale.replace("-", "_")
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    return current_app.config["DEFAULT_LOCALE"]


def current_code():
    """The current locale as one of LOCALES' keys (Babel itself says zh_Hans_CN)."""
    return "en" if get_locale() is not None and get_locale().language == "en" else "zh_CN"


def doc_locale():
    """The current locale as a document key ("zh-CN", "en")."""
    return LOCALES[current_code()]


def pick(text, locale=None):
    """The best translation from a {locale: text} map."""
    if not text:
        return ""
    if isinstance(text, str):
        return text
    locale = locale or doc_locale()
    for key in (locale, "zh-CN", "en"):
        if text.get(key):
            return text[key]
    return next(iter(text.values()), "")
