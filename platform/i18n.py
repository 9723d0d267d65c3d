"""Languages: zh-CN by default, English second; a per-user choice."""
from flask import current_app, session
from flask_babel import get_locale
from flask_login import current_user

# Babel spells locales with "_", documents (BCP 47) with "-".
LOCALES = {"zh_CN": "zh-CN", "en": "en"}
NAMES = {"zh_CN": "简体中文", "en": "English"}


def select_locale():
    """The user's saved choice, then the session's, then zh-CN (the product's default)."""
    if getattr(current_user, "is_authenticated", False) and current_user.locale in LOCALES.values():
        return current_user.locale.replace("-", "_")
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    return current_app.config["DEFAULT_LOCALE"]


def doc_locale():
    """The current locale as a document key ("zh-CN", "en")."""
    return LOCALES.get(str(get_locale()), "zh-CN")


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
