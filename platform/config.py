"""Configuration defaults; FORMFLOW_* environment variables override them."""
import os
import secrets
from pathlib import Path


def defaults(instance_path):
    """Embedded single-machine defaults: SQLite files under the instance folder."""
    instance = Path(instance_path)
    return {
        "SECRET_KEY": None,
        "DATABASE_URL": f"sqlite:///{instance / 'formflow.db'}",
        "QUEUE_URL": f"sqlite:///{instance / 'queue.db'}",
        "QUEUE_NAME": "formflow",
        "QUEUE_IMMEDIATE": False,
        "QUEUE_WORKERS": 2,
        "RUN_CONSUMER": False,
        "DEFAULT_LOCALE": "zh_CN",
        "LOCALES": ["zh_CN", "en"],
        "TIMEZONE": "Asia/Shanghai",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "PASSWORD_HASH_METHOD": "scrypt",
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_WINDOW_SECONDS": 15 * 60,
        "PAGE_SIZE": 20,
        "RULE_RUN_RETENTION_DAYS": 180,   # the run log behind "why did this happen?"
        "CRON_MARK_RETENTION_DAYS": 30,   # must exceed the cron catch-up look-back (a day)
        "JOB_RETENTION_DAYS": 30,
        "BOOTSTRAP_SERVE_LOCAL": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }


def finish(app):
    """Derive settings that depend on others; fail early with a fix when one is unusable."""
    url = app.config["DATABASE_URL"]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(Path(app.instance_path))


def _instance_secret(instance):
    """A random key kept in the instance folder, so sessions survive restarts."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key
