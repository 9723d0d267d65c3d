"""The send_report action's delivery, in the queue: each recipient gets their own view.

Compiling a report once per recipient grows with the audience, so the action only names the
recipients and queues a job; the job compiles and delivers for a batch of recipients per
transaction (inbox, email through the outbox), then the webhook's one view, with progress.
"""
from sqlalchemy import select

from ..extensions import db
from ..people.models import User
from . import jobs, outbox
from .models import Notification, Rule, RuleRun

BATCH = 20  # recipients per transaction


def text_for(report, user):
    from ..reports import compiler, export
    rows = export.table(compiler.run(report.body, user))
    return "\n".join(" | ".join(row) for row in rows)


@jobs.kind("send_report")
def _deliver(job):
    from ..i18n import pick
    from ..reports import store
    p = job.params
    report = store.get(p["report"])
    if report is None:
        raise LookupError(f"no report {p['report']!r}")
    title = pick(report.body.get("title")) or report.key
    names = p["to"]
    if job.total is None:
        job.total = len(names)
    start = job.state.get("next", 0)
    users = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(names[start:start + BATCH]),
                                                                          User.active.is_(True)))}
    for name in names[start:start + BATCH]:
        user = users.get(name)
        if user is None:
            continue
        body = text_for(report, user)
        if "inbox" in p["channels"]:
            db.session.add(Notification(user_id=user.id, title=title[:200], body=body[:2000], rule_key=p["rule"]))
        if "email" in p["channels"] and (user.email or "").strip():
            outbox.add("email", f"{p['base']}:{user.username}", {"to": user.email.strip(), "subject": title,
                                                                 "body": body})
    nxt = min(start + BATCH, len(names))
    job.state, job.done = {"next": nxt}, nxt
    if nxt < len(names):
        return False
    if p.get("webhook"):
        viewer = db.session.scalars(select(User).where(User.username == p.get("as", ""))).first()
        if viewer is None:
            raise LookupError("a report sent to a webhook needs \"as\": the user whose view it carries")
        hook = p["webhook"]
        outbox.add("webhook", f"{p['base']}:webhook", {"url": hook["url"], "format": hook.get("format", "json"),
                                                       "secret": hook.get("secret"), "title": title,
                                                       "body": text_for(report, viewer), "rule": p["rule"]})
    rule = db.session.get(Rule, job.rule_id) if job.rule_id else None
    if rule is not None:
        db.session.add(RuleRun(rule_id=rule.id, rule_key=rule.key, rule_revision=rule.revision, trigger=f"send_report (job {job.id})",
                               matched=None, actions=[{"type": "send_report", "report": report.key, "to": names,
                                                       "channels": p["channels"], "job": job.id}]))
    return True
