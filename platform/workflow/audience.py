"""Who a rule's task, notice or report goes to: ``owner``, ``manager``, ``creator``, ``user:NAME``,
``role:ROLE``, ``field:FIELD``; and who stands behind a person (their team's managers)."""
from sqlalchemy import select

from ..extensions import db
from ..people.models import User


def recipients(specs, ctx, record):
    """Users named by owner / manager / creator / user:NAME / role:ROLE / field:FIELD."""
    out = []
    owner = record.owner if record is not None else None
    for spec in specs:
        kind, _sep, arg = spec.partition(":")
        found = []
        if kind == "owner" and owner is not None:
            found = [owner]
        elif kind == "creator" and record is not None and record.created_by is not None:
            found = [record.created_by]
        elif kind == "manager":
            found = managers_of(owner)
        elif kind == "user":
            found = db.session.scalars(select(User).where(User.username == arg, User.active.is_(True))).all()
        elif kind == "role":
            stmt = select(User).where(User.role == arg, User.active.is_(True))
            if owner is not None and owner.team_id and arg != "admin":
                stmt = stmt.where(User.team_id == owner.team_id)
            found = db.session.scalars(stmt.order_by(User.id)).all()
        elif kind == "field" and record is not None:
            name = record.data.get(arg)
            found = db.session.scalars(select(User).where(User.username == name, User.active.is_(True))).all()
        for u in found:
            if u not in out:
                out.append(u)
    return out


def managers_of(user):
    """The managers of a user's team; admins when the user has no team or the team no manager."""
    found = []
    if user is not None and user.team_id:
        found = db.session.scalars(select(User).where(User.team_id == user.team_id, User.role == "manager",
                                                      User.active.is_(True)).order_by(User.id)).all()
    if not found:
        found = db.session.scalars(select(User).where(User.role == "admin", User.active.is_(True))
                                   .order_by(User.id)).all()
    return found
