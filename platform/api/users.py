"""Users over the API (admins only)."""
from flask import jsonify
from sqlalchemy import select

from ..extensions import db
from ..people.models import User
from . import bp
from .auth import require_admin


@bp.get("/users")
def list_users():
    require_admin()
    users = db.session.scalars(select(User).order_by(User.id)).all()
    return jsonify({"users": [u.to_json() for u in users]})
