"""Side effects leave through the outbox: after commit, retried with backoff, never lost."""
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.people.models import User
from formflow.workflow import outbox, rules
from formflow.workflow.models import OutboxEntry

LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


class Hook:
    """A real HTTP endpoint that records requests and answers as told."""

    def __init__(self):
        self.requests, self.status, self.delay, self.requests_started = [], 200, 0, 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests_started += 1
                if hook.delay:
                    end = time.monotonic() + hook.delay
                    while time.monotonic() < end and hook.delay:
                        time.sleep(0.05)
                hook.requests.append((dict(self.headers), body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture
def ctx(app, cardealer):
    clock.freeze(datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    with app.test_request_context():
        yield
    clock.reset()


def notify_rule(url, fmt="json", secret="s3cret"):
    rules.save({"key": "hook", "form": "lead", "trigger": {"type": "created"}, "actions": [
        {"type": "notify", "title": "新线索 {customer_name}", "body": "手机 {phone}", "channels": ["webhook"],
         "webhook": {"url": url, "format": fmt, "secret": secret}}]})
    db.session.commit()


def create_lead():
    sales1 = db.session.scalars(select(User).where(User.username == "sales1")).one()
    records.create(catalog.get_form("lead"), LEAD, sales1, owner=sales1)


def test_webhook_is_written_with_the_change_and_sent_signed_after_commit(ctx, hook):
    notify_rule(hook.url)
    create_lead()
    entry = db.session.scalars(select(OutboxEntry)).one()
    assert entry.status == "pending" and hook.requests == []  # nothing leaves before commit
    db.session.commit()
    assert outbox.deliver(entry.id) == "sent"
    [(headers, body)] = hook.requests
    assert json.loads(body)["title"] == "新线索 王小明"
    assert headers["X-Formflow-Signature"] == outbox.signature("s3cret", body)
    assert headers["X-Formflow-Idempotency-Key"] == entry.key
    assert outbox.deliver(entry.id) is None and len(hook.requests) == 1  # never twice


def test_rolled_back_change_sends_nothing(ctx, hook):
    notify_rule(hook.url)
    create_lead()
    db.session.rollback()
    assert db.session.scalars(select(OutboxEntry)).first() is None
    assert outbox.sweep() == [] and hook.requests == []


def test_wecom_robot_format(ctx, hook):
    notify_rule(hook.url, fmt="wecom")
    create_lead()
    db.session.commit()
    outbox.sweep()
    body = json.loads(hook.requests[0][1])
    assert body == {"msgtype": "markdown", "markdown": {"content": "**新线索 王小明**\n手机 13812345678"}}


def test_a_500_is_retried_with_backoff_until_it_works(ctx, hook):
    notify_rule(hook.url)
    create_lead()
    db.session.commit()
    hook.status = 500
    assert outbox.sweep() == ["pending"]
    entry = db.session.scalars(select(OutboxEntry)).one()
    assert entry.attempts == 1 and "500" in entry.last_error
    assert entry.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert outbox.sweep() == []  # not due yet
    clock.advance(timedelta(seconds=31))
    assert outbox.sweep() == ["pending"]
    db.session.refresh(entry)
    assert entry.next_attempt_at == clock.now() + timedelta(seconds=60)
    hook.status = 200
    clock.advance(timedelta(seconds=61))
    assert outbox.sweep() == ["sent"]
    assert len(hook.requests) == 3


def test_a_target_that_times_out_is_retried_and_finally_given_up(ctx, hook, monkeypatch):
    monkeypatch.setattr(outbox, "WEBHOOK_TIMEOUT", 0.3)
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)
    hook.delay = 1
    notify_rule(hook.url)
    create_lead()
    db.session.commit()
    assert outbox.sweep() == ["pending"]
    clock.advance(timedelta(minutes=5))
    assert outbox.sweep() == ["dead"]
    entry = db.session.scalars(select(OutboxEntry)).one()
    assert "timed out" in entry.last_error.lower() or "timeout" in entry.last_error.lower()


def test_a_delivery_left_half_done_by_a_crash_is_picked_up_again(ctx, hook):
    notify_rule(hook.url)
    create_lead()
    db.session.commit()
    entry = db.session.scalars(select(OutboxEntry)).one()
    # a worker claimed it and died before sending
    entry.status, entry.attempts = "sending", 1
    db.session.commit()
    assert outbox.sweep() == []
    clock.advance(outbox.STALE_SENDING + timedelta(seconds=1))
    assert outbox.sweep() == ["sent"]
    assert len(hook.requests) == 1


def test_email_goes_to_a_real_smtp_server(app, ctx):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app.config.update(MAIL_HOST="127.0.0.1", MAIL_PORT=port)
        manager = db.session.scalars(select(User).where(User.username == "manager")).one()
        manager.email = "manager@example.com"
        rules.save({"key": "mail", "form": "lead", "trigger": {"type": "created"}, "actions": [
            {"type": "notify", "to": ["manager"], "title": "新线索 {customer_name}", "channels": ["inbox", "email"]}]})
        db.session.commit()
        create_lead()
        db.session.commit()
        assert outbox.sweep() == ["sent"]
    finally:
        controller.stop()
    [msg] = received
    from email.header import decode_header, make_header
    assert msg["To"] == "manager@example.com" and "王小明" in str(make_header(decode_header(msg["Subject"])))
    assert msg["Message-ID"].endswith("@formflow>")


def test_the_queue_delivers_right_after_commit(app, cardealer, hook):
    app.extensions["formflow.queue"].start_consumer(workers=1)
    with app.test_request_context():
        notify_rule(hook.url)
        create_lead()
        db.session.commit()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not hook.requests:
        time.sleep(0.1)
    with app.app_context():
        entry = db.session.scalars(select(OutboxEntry)).first()
        state = (entry.status, entry.attempts, entry.last_error, entry.next_attempt_at, clock.now()) if entry else None
    assert len(hook.requests) == 1, (state, app.extensions["formflow.queue"].huey.pending_count())


def test_a_consumer_killed_mid_delivery_loses_nothing(app, cardealer, hook, tmp_path):
    """A real consumer process is killed -9 while a webhook is in flight; the next sweep
    delivers again with the same idempotency key, so the receiver can drop the repeat."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    hook.delay = 30  # the receiver hangs: the consumer is stuck mid-send when we kill it
    with app.test_request_context():
        notify_rule(hook.url)
        db.session.commit()
    env = {**os.environ, "FORMFLOW_DATABASE_URL": app.config["DATABASE_URL"],
           "FORMFLOW_QUEUE_URL": app.config["QUEUE_URL"], "FORMFLOW_QUEUE_NAME": app.config["QUEUE_NAME"],
           "FORMFLOW_INSTANCE_PATH": str(tmp_path / "worker"), "FORMFLOW_SECRET_KEY": "x"}
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "queue", "run", "--workers", "1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with app.test_request_context():
            create_lead()
            db.session.commit()  # after commit: the delivery task goes onto the queue
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hook.requests_started:
            time.sleep(0.05)
        assert hook.requests_started, "the consumer never started the delivery"
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    with app.test_request_context():
        entry = db.session.scalars(select(OutboxEntry)).one()
        assert entry.status == "sending"  # claimed by the dead worker, not sent
        hook.delay = 0
        app.config["OUTBOX_STALE_SECONDS"] = 1
        time.sleep(1.1)
        assert outbox.sweep() == ["sent"]
    keys = {h["X-Formflow-Idempotency-Key"] for h, _b in hook.requests}
    assert len(keys) == 1 and entry.key in keys
