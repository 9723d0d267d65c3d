"""Signing in: password checks with throttling, sessions, and bearer tokens for the API."""
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db, login_manager
from ..types import utcnow
from .models import ApiToken, LoginAttempt, User

LAST_USED_RESOLUTION = 60  # seconds: last_used_at says "in use lately", not every request


@login_manager.user_loader
def _load_user(user_id):
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


def throttled(username, address):
    """Too many recent failures for this username or from this address?"""
    cfg = current_app.config
    since = utcnow() - timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
    recent = select(func.count(LoginAttempt.id)).where(LoginAttempt.at >= since)
    by_name = db.session.scalar(recent.where(LoginAttempt.username == username))
    # An office behind one address gets more room than a single account.
    by_address = db.session.scalar(recent.where(LoginAttempt.address == address))
    return by_name >= cfg["LOGIN_MAX_FAILURES"] or by_address >= 4 * cfg["LOGIN_MAX_FAILURES"]


def authenticate(username, password, address):
    """The user when the password is right and the login not throttled, else None.

    Failures are recorded and committed at once, so they count across processes.
    """
    username = (username or "").strip()
    if throttled(username, address):
        return None
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is not None and user.active and user.check_password(password or ""):
        db.session.execute(delete(LoginAttempt).where(LoginAttempt.username == username))
        db.session.commit()
        return user
    db.session.add(LoginAttempt(username=username[:64], address=(address or "")[:64]))
    db.session.commit()
    return None


def token_row(token):
    """The live ApiToken row of an active user for a bearer token, or None."""
    if not token:
        return None
    row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == ApiToken.digest(token),
                                                    ApiToken.revoked.is_(False))).first()
    if row is None or not row.user.active:
        return None
    return row


def use_due(row):
    """Is the token's stored last use a minute old or more (so note_use would write)?"""
    return row.last_used_at is None or row.last_used_at <= utcnow() - timedelta(seconds=LAST_USED_RESOLUTION)


def note_use(row):
    """Set the token's last_used_at to now when the stored one is a minute old or more (one
    small UPDATE, not one per request); True when it wrote. The caller commits."""
    now = utcnow()
    cutoff = now - timedelta(seconds=LAST_USED_RESOLUTION)
    if not use_due(row):
        return False
    # the condition again in SQL: of two requests racing here, one writes
    result = db.session.execute(update(ApiToken).where(
        ApiToken.id == row.id, or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= cutoff))
        .values(last_used_at=now).execution_options(synchronize_session=False))
    if result.rowcount:
        set_committed_value(row, "last_used_at", now)  # as stored; nothing more to flush
    return result.rowcount > 0


def user_for_token(token):
    """The active user a bearer token belongs to, or None."""
    row = token_row(token)
    return row.user if row is not None else None
