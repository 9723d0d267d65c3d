"""Row-level access: who may see and change which records. The one place it is decided.

Pages, the API, search and (later) reports and exports all take their records from
``visible_records``; a record outside it does not exist for that user (404, never data).

- admin: every record;
- manager: records owned by members of their team, their own, and unowned records
  (the pool that still waits for assignment);
- sales: records they own.
"""
from flask import abort
from sqlalchemy import false, or_, select, true

from .extensions import db
from .forms.models import Record
from .people.models import User


def visible_records(user, stmt=None, include_deleted=False):
    """Restrict a SELECT over records to those the user may see."""
    stmt = select(Record) if stmt is None else stmt
    if not include_deleted:
        stmt = stmt.where(Record.deleted_at.is_(None))
    return stmt.where(may_see(user))


def may_see(user, table=Record):
    """The condition under which the user sees a row of ``table`` (records, or an alias of them
    such as the record a report joins through a reference)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.active:
        return false()
    if user.role == "admin":
        return true()
    if user.role == "manager":
        cond = [table.owner_id == user.id, table.owner_id.is_(None)]
        if user.team_id:
            cond.append(table.owner_id.in_(select(User.id).where(User.team_id == user.team_id)))
        return or_(*cond)
    return table.owner_id == user.id


def get_record(user, record_id, include_deleted=False):
    """The record if the user may see it, else None."""
    if not isinstance(record_id, int) or not 0 < record_id < 2**31:
        return None
    stmt = visible_records(user, select(Record).where(Record.id == record_id), include_deleted)
    return db.session.scalars(stmt).first()


def get_record_or_404(user, record_id, include_deleted=False):
    record = get_record(user, record_id, include_deleted)
    if record is None:
        abort(404)
    return record


def assignable_owners(user):
    """Users this user may make the owner of a record."""
    stmt = select(User).where(User.active.is_(True)).order_by(User.display_name)
    if user.role == "admin":
        return db.session.scalars(stmt).all()
    if user.role == "manager" and user.team_id:
        return db.session.scalars(stmt.where(or_(User.team_id == user.team_id, User.id == user.id))).all()
    return [user]


def may_assign(user, owner):
    """May this user give a record to owner (None: leave it in the unowned pool)?"""
    if owner is None:
        return user.role in ("admin", "manager")
    return any(o.id == owner.id for o in assignable_owners(user))
