"""Shared fixtures: a real database per test (SQLite, or PostgreSQL when configured), a real
huey queue, the Flask test client, and small helpers to sign in and load blueprints.

FORMFLOW_TEST_DATABASE_URL=postgresql://127.0.0.1:5432/test and
FORMFLOW_TEST_QUEUE_URL=redis://127.0.0.1:6379/0 run the same suite on the servers.
With CI=true an unreachable server fails the run; nothing is skipped.
"""
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from formflow.extensions import db
from formflow.factory import create_app

ROOT = Path(__file__).resolve().parent.parent
CARDEALER = ROOT / "blueprints" / "cardealer"
HELPDESK = Path(__file__).resolve().parent / "blueprints" / "helpdesk"
PASSWORD = "correct-horse-9"

DB_URL = os.environ.get("FORMFLOW_TEST_DATABASE_URL", "")
QUEUE_URL = os.environ.get("FORMFLOW_TEST_QUEUE_URL", "")
# pytest-xdist runs the suite in several processes (-n auto in pyproject.toml): on PostgreSQL each
# gets a database of its own, named after the configured one (test → test_gw0, test_gw1, …).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _pg_url(url):
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def _worker_database(url):
    """The worker's own database beside the configured one, created when missing."""
    if not WORKER or not url.startswith("postgres"):
        return url
    base, _sep, name = url.rpartition("/")
    own = f"{name}_{WORKER}"
    engine = create_engine(_pg_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own}).scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{own}"'))
    engine.dispose()
    return f"{base}/{own}"


def _check_servers():
    problems = []
    if DB_URL.startswith("postgres"):
        try:
            with create_engine(_pg_url(DB_URL)).connect() as conn:
                conn.execute(text("select 1"))
        except Exception as exc:  # any failure to connect is reported the same way
            problems.append(f"PostgreSQL at {DB_URL} is not reachable: {exc}")
    if QUEUE_URL.startswith("redis"):
        import redis
        try:
            redis.Redis.from_url(QUEUE_URL).ping()
        except Exception as exc:
            problems.append(f"Redis at {QUEUE_URL} is not reachable: {exc}")
    if problems:
        pytest.exit("\n".join(problems), returncode=3)


def pytest_configure(config):
    global DB_URL
    _check_servers()
    DB_URL = _worker_database(DB_URL)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory):
    """Migrate once per session with Alembic (the real path), then copy or truncate per test."""
    base = tmp_path_factory.mktemp("template")
    if DB_URL.startswith("postgres"):
        engine = create_engine(_pg_url(DB_URL))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        app = create_app({"DATABASE_URL": DB_URL, "QUEUE_URL": f"sqlite:///{base}/q.db", "SECRET_KEY": "t"},
                         instance_path=str(base))
        url = DB_URL
    else:
        url = f"sqlite:///{base}/template.db"
        app = create_app({"DATABASE_URL": url, "QUEUE_URL": f"sqlite:///{base}/q.db", "SECRET_KEY": "t"},
                         instance_path=str(base))
    from flask_migrate import upgrade
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    return url


@pytest.fixture
def app(template_db, tmp_path):
    if template_db.startswith("postgres"):
        url = template_db
    else:
        shutil.copy(template_db[len("sqlite:///"):], tmp_path / "formflow.db")
        url = f"sqlite:///{tmp_path}/formflow.db"
    queue_name = f"test-{uuid.uuid4().hex[:8]}"
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": url,
        "QUEUE_URL": QUEUE_URL or f"sqlite:///{tmp_path}/queue.db",
        "QUEUE_NAME": queue_name,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # the real scrypt is tested once, in test_people.py
    }, instance_path=str(tmp_path / "instance"))
    with app.app_context():
        if url.startswith("postgres"):
            tables = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.session.commit()
    yield app
    queue = app.extensions["formflow.queue"]
    queue.stop_consumer()
    if QUEUE_URL:
        queue.huey.storage.flush_all()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_app(app):
    """The same app with CSRF protection on, as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app


def load(app, path, demo=False, passwords=True):
    from formflow.blueprints import loader
    from formflow.people.models import User
    with app.app_context():
        summary = loader.load(path, with_demo=demo)
        if passwords:
            for user in db.session.scalars(db.select(User)):
                user.set_password(PASSWORD)
            db.session.commit()
    return summary


@pytest.fixture
def cardealer(app, tmp_path):
    """The cardealer blueprint's forms and people only: engine tests write their own rules."""
    folder = tmp_path / "cardealer-forms"
    shutil.copytree(CARDEALER, folder, ignore=shutil.ignore_patterns("rules", "reports", "dashboards", "demo"))
    return load(app, folder)


@pytest.fixture
def cardealer_full(app):
    """The whole cardealer blueprint: forms, people, rules, reports and dashboards (no demo records)."""
    return load(app, CARDEALER)


@pytest.fixture
def helpdesk(app):
    return load(app, HELPDESK)


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, username, password=PASSWORD):
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client):
    return Auth(client)


def token_for(app, username):
    from formflow.people.models import ApiToken, User
    with app.app_context():
        user = db.session.scalars(db.select(User).where(User.username == username)).one()
        _row, token = ApiToken.issue(user, "test")
        db.session.commit()
    return token


@pytest.fixture
def api(app, client):
    """api(username) → a small client that sends that user's bearer token."""
    def make(username):
        token = token_for(app, username)

        class Api:
            headers = {"Authorization": f"Bearer {token}"}

            def __getattr__(self, method):
                def call(url, headers=None, **kw):
                    return getattr(client, method)(url, headers={**self.headers, **(headers or {})}, **kw)
                return call
        return Api()
    return make


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from browser import ARGS, CHROMIUM, ensure_chromium
    ensure_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live(csrf_app):
    """The app served over real HTTP on a free port, with CSRF on as in production."""
    from browser import LiveServer
    with LiveServer(csrf_app) as server:
        yield server


ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def desk(browser):
    """A fresh desktop-sized browser context (1280 px wide), for admins and managers."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1600}, locale="zh-CN")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context (375 px wide, touch)."""
    ctx = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True,
                              has_touch=True, locale="zh-CN")
    ctx.set_default_timeout(15000)
    yield ctx
    ctx.close()
