"""Errors are logged (issue 9.13). Migrations run at start (python app.py) in the same process
as the app; Alembic's logging setup used to disable every logger that existed then, so no 5xx
traceback, rule failure or outbox failure was ever logged afterwards."""
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from flask_migrate import upgrade

from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.people.models import User
from formflow.workflow import actions, rules

ROOT = Path(__file__).resolve().parent.parent


def migrate(app):
    """What python app.py does at start: Alembic's env.py runs even when nothing is to apply."""
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)


def boom_route(app):
    @app.get("/test-only/boom")
    def boom():
        raise RuntimeError("boom for the log")


def test_an_unhandled_error_is_logged_with_its_request_id_after_migrations(app, caplog):
    boom_route(app)
    migrate(app)
    caplog.set_level(logging.INFO)
    client = app.test_client()
    r = client.get("/test-only/boom")
    assert r.status_code == 500
    rid = r.headers["X-Request-Id"]
    assert len(rid) >= 16 and rid in r.get_data(as_text=True)  # the 500 page shows it to quote
    [entry] = [e for e in caplog.records if e.name == "formflow.errors"]
    assert entry.levelno == logging.ERROR and rid in entry.getMessage() and "/test-only/boom" in entry.getMessage()
    assert entry.exc_info and entry.exc_info[0] is RuntimeError  # the traceback goes with it
    assert "boom for the log" in caplog.text and "Traceback" in caplog.text


def test_a_sane_request_id_from_the_caller_is_kept(app, caplog):
    boom_route(app)
    client = app.test_client()
    r = client.get("/test-only/boom", headers={"X-Request-Id": "lb-7f3a.42"})
    assert r.headers["X-Request-Id"] == "lb-7f3a.42" and "lb-7f3a.42" in caplog.text
    for odd in ("has spaces", "x" * 500, "<script>", "a\x01b"):
        rid = client.get("/test-only/boom", headers={"X-Request-Id": odd}).headers["X-Request-Id"]
        assert rid != odd and len(rid) == 32
    r = client.get("/api/v1/forms")  # every response carries one, 401 included
    assert r.status_code == 401 and r.headers["X-Request-Id"]
    r = client.get("/test-only/boom", headers={"Accept": "application/json"})
    assert r.json["error"]["request_id"] == r.headers["X-Request-Id"]


def test_a_rule_failure_is_still_logged_after_migrations(app, cardealer, caplog, monkeypatch):
    def broken(action, ctx, record):
        raise RuntimeError("the rule's action broke")
    monkeypatch.setitem(actions.HANDLERS, "stop", broken)  # a failure no rule check foresees
    migrate(app)
    caplog.set_level(logging.INFO)
    with app.test_request_context():
        rules.save({"key": "breaks", "form": "lead", "trigger": {"type": "created"}, "actions": [{"type": "stop"}]})
        db.session.commit()
        sales1 = db.session.scalars(db.select(User).where(User.username == "sales1")).one()
        records.create(catalog.get_form("lead"), {"customer_name": "王", "phone": "13812345678",
                                                  "source_channel": "showroom", "status": "new"}, sales1, owner=sales1)
        db.session.commit()
    [entry] = [e for e in caplog.records if e.name == "formflow.workflow.engine"]
    assert "breaks" in entry.getMessage() and entry.exc_info[0] is RuntimeError


def test_python_app_py_logs_errors_after_its_start_migrations(tmp_path):
    """The real start: a fresh process whose logging the app configures, migrations at start,
    then a 500; the traceback and the request id reach stderr."""
    script = textwrap.dedent(f"""
        from formflow.factory import create_app
        from formflow.setup import prepare
        app = create_app({{"DATABASE_URL": "sqlite:///{tmp_path}/f.db", "QUEUE_URL": "sqlite:///{tmp_path}/q.db",
                          "SECRET_KEY": "x"}}, instance_path="{tmp_path}")
        prepare(app)  # python app.py: migrations, then serve

        @app.get("/test-only/boom")
        def boom():
            raise RuntimeError("boom after start")

        print("REQUEST", app.test_client().get("/test-only/boom").headers["X-Request-Id"], flush=True)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMFLOW_")}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    rid = done.stdout.split("REQUEST ")[1].split()[0]
    assert "Running upgrade" in done.stderr  # the migrations ran in this process
    assert "Traceback" in done.stderr and "RuntimeError: boom after start" in done.stderr, done.stderr
    assert f"(request {rid})" in done.stderr
