"""Side effects that leave the system (email, webhooks) go through the outbox.

A row is written in the same transaction as the change that caused it and delivered only
after that transaction commits (a huey task right after commit, and a periodic sweep that
catches anything a crash left behind). Failed deliveries are retried with exponential
backoff; every delivery carries the row's idempotency key (the webhook header
``X-Formflow-Idempotency-Key``, the email's Message-ID) so a receiver can drop a repeat.
"""
import hashlib
import hmac
import json
import logging
import smtplib
import urllib.error
import urllib.request
from datetime import timedelta
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select, update

from .. import clock
from ..extensions import db
from . import queue, runstate
from .models import OutboxEntry

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
STALE_SENDING = timedelta(minutes=10)  # FORMFLOW_OUTBOX_STALE_SECONDS overrides
WEBHOOK_TIMEOUT = 10


def add(channel, key, payload):
    """Queue a side effect; delivered after the surrounding transaction commits."""
    if runstate.is_dry():
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    entry = OutboxEntry(key=f"{channel}:{digest}", channel=channel, payload=payload, next_attempt_at=clock.now())
    db.session.add(entry)
    queue.after_commit(entry, deliver_later)
    return entry


def backoff(attempts):
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 6 * 3600))


@queue.task()
def deliver_later(entry_id):
    """The queue's delivery right after the change commits."""
    return deliver(entry_id)


def deliver(entry_id):
    """Deliver one entry if it is due and nobody else is delivering it. Returns its status."""
    now = clock.now()
    claimed = db.session.execute(update(OutboxEntry).where(
        OutboxEntry.id == entry_id, OutboxEntry.status == "pending", OutboxEntry.next_attempt_at <= now)
        .values(status="sending", attempts=OutboxEntry.attempts + 1, next_attempt_at=now)).rowcount
    db.session.commit()
    if not claimed:
        return None
    entry = db.session.get(OutboxEntry, entry_id)
    try:
        SENDERS[entry.channel](entry)
    except Exception as err:  # any failure is retried later; the error is kept for admins
        entry.last_error = f"{type(err).__name__}: {err}"[:2000]
        if entry.attempts >= MAX_ATTEMPTS:
            entry.status = "dead"
        else:
            entry.status = "pending"
            entry.next_attempt_at = clock.now() + backoff(entry.attempts)
        log.warning("outbox %s attempt %s failed: %s", entry.key, entry.attempts, entry.last_error)
    else:
        entry.status, entry.sent_at, entry.last_error = "sent", clock.now(), None
    db.session.commit()
    return entry.status


def sweep():
    """Deliver what is due, and release deliveries a crashed worker left half-done."""
    now = clock.now()
    stale = timedelta(seconds=current_app.config.get("OUTBOX_STALE_SECONDS") or STALE_SENDING.total_seconds())
    db.session.execute(update(OutboxEntry).where(OutboxEntry.status == "sending",
                                                 OutboxEntry.next_attempt_at <= now - stale)
                       .values(status="pending"))
    db.session.commit()
    ids = db.session.scalars(select(OutboxEntry.id).where(OutboxEntry.status == "pending",
                                                          OutboxEntry.next_attempt_at <= now)
                             .order_by(OutboxEntry.id).limit(200)).all()
    return [deliver(i) for i in ids]


def _send_email(entry):
    cfg = current_app.config
    host = cfg.get("MAIL_HOST")
    if not host:
        raise RuntimeError("no SMTP server configured (FORMFLOW_MAIL_HOST)")
    p = entry.payload
    msg = EmailMessage()
    msg["From"] = cfg.get("MAIL_FROM", "formflow@localhost")
    msg["To"] = p["to"]
    msg["Subject"] = p["subject"]
    msg["Message-ID"] = f"<{entry.key.replace(':', '.')}@formflow>"
    msg.set_content(p.get("body") or p["subject"])
    with smtplib.SMTP(host, int(cfg.get("MAIL_PORT", 25)), timeout=WEBHOOK_TIMEOUT) as smtp:
        if cfg.get("MAIL_USERNAME"):
            smtp.starttls()
            smtp.login(cfg["MAIL_USERNAME"], cfg.get("MAIL_PASSWORD", ""))
        smtp.send_message(msg)


def webhook_body(payload):
    """The JSON a webhook receives; ``wecom`` is the WeCom group-robot markdown message."""
    if payload.get("format") == "wecom":
        text = f"**{payload['title']}**"
        if payload.get("body"):
            text += f"\n{payload['body']}"
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"title": payload["title"], "body": payload.get("body", ""), "record": payload.get("record"),
            "rule": payload.get("rule")}


def signature(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(entry):
    p = entry.payload
    body = json.dumps(webhook_body(p), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Formflow-Idempotency-Key": entry.key,
               "User-Agent": "Formflow"}
    secret = p.get("secret") or current_app.config.get("WEBHOOK_SECRET")
    if secret:
        headers["X-Formflow-Signature"] = signature(secret, body)
    req = urllib.request.Request(p["url"], data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:  # noqa: S310 (http/https only, checked by the rule schema)
        if resp.status >= 300:
            raise RuntimeError(f"HTTP {resp.status}")


SENDERS = {"email": _send_email, "webhook": _send_webhook}
