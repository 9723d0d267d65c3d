"""A person's own work: tasks (overdue, today, later) and the in-app inbox."""
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from .. import clock
from ..extensions import db
from ..people.models import User
from ..workflow.models import Notification, Task
from . import bp


def _task_scope(stmt):
    scope = request.args.get("scope", "mine")
    if scope == "team" and current_user.role == "manager" and current_user.team_id:
        return stmt.where(Task.assignee_id.in_(select(User.id).where(User.team_id == current_user.team_id)))
    if scope == "all" and current_user.role == "admin":
        return stmt
    return stmt.where(Task.assignee_id == current_user.id)


@bp.get("/tasks")
@login_required
def tasks():
    now = clock.now()
    base = _task_scope(select(Task).where(Task.status == "open"))
    lists = {when: open_tasks(base, when, now, limit=None if when != "later" else 100)
             for when in ("overdue", "today", "later")}
    done = db.session.scalars(_task_scope(select(Task).where(Task.status == "done"))
                              .where(Task.done_at >= now - timedelta(days=7)).order_by(Task.done_at.desc())).all()
    return render_template("work/tasks.html", **lists, done=done, now=now)


def _bucket(base, when, now):
    """base narrowed to overdue, today, later, or "due" (overdue or today) open tasks."""
    end_of_day = datetime.combine(now.astimezone(clock.zone()).date(), time.max, tzinfo=clock.zone())
    if when == "due":
        return base.where(Task.due_at <= end_of_day)
    if when == "overdue":
        return base.where(Task.due_at < now)
    if when == "today":
        return base.where(Task.due_at >= now, Task.due_at <= end_of_day)
    return base.where(or_(Task.due_at > end_of_day, Task.due_at.is_(None)))


def open_tasks(base, when, now, limit=100):
    """Open tasks of ``base`` that are overdue, due by the end of today (Asia/Shanghai) or later,
    soonest first (ties in the order they were made); at most ``limit`` (None: all)."""
    stmt = _bucket(base, when, now).order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    return db.session.scalars(stmt.limit(limit) if limit else stmt).all()


def count_tasks(base, when, now):
    return db.session.scalar(select(func.count()).select_from(_bucket(base, when, now).subquery()))


@bp.post("/tasks/<int:task_id>/done")
@login_required
def task_done(task_id):
    task = db.session.get(Task, task_id)
    if task is None or (task.assignee_id != current_user.id and current_user.role != "admin"):
        abort(404)
    task.status, task.done_at = "done", clock.now()
    db.session.commit()
    return redirect(_local(request.form.get("next", "")) or url_for("web.tasks"))


def _local(target):
    """target if it is a path on this site, else None: never a redirect to another site."""
    if not target or any(ord(c) < 32 or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target


@bp.get("/inbox")
@login_required
def inbox():
    rows = db.session.scalars(select(Notification).where(Notification.user_id == current_user.id)
                              .order_by(Notification.id.desc()).limit(200)).all()
    return render_template("work/inbox.html", notes=rows)


@bp.post("/inbox/read")
@login_required
def inbox_read():
    for note in db.session.scalars(select(Notification).where(Notification.user_id == current_user.id,
                                                              Notification.read_at.is_(None))):
        note.read_at = clock.now()
    db.session.commit()
    return redirect(url_for("web.inbox"))


def counts():
    """(open tasks due by the end of today, unread notifications) for the navigation bar."""
    if not getattr(current_user, "is_authenticated", False):
        return 0, 0
    due = count_tasks(select(Task).where(Task.assignee_id == current_user.id, Task.status == "open"), "due",
                      clock.now())
    unread = db.session.scalar(select(func.count(Notification.id)).where(Notification.user_id == current_user.id,
                                                                         Notification.read_at.is_(None)))
    return due, unread
