"""Users, teams and API tokens."""
import hashlib
import secrets

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..types import JSONType, UTCDateTime, utcnow

ROLES = ("admin", "manager", "sales")


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[dict] = mapped_column(JSONType, default=dict)
    members = relationship("User", back_populates="team")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="sales")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    skills: Mapped[list] = mapped_column(JSONType, default=list)
    locale: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)

    team = relationship(Team, back_populates="members")

    def set_password(self, password):
        # PASSWORD_HASH_METHOD is werkzeug's method string (default scrypt); only the test suite
        # lowers it, so that its hundreds of demo logins do not spend minutes hashing.
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if has_app_context() else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password):
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_active(self):
        return self.active

    @property
    def is_admin(self):
        return self.role == "admin"

    def to_json(self):
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "email": self.email,
            "role": self.role,
            "team": self.team.key if self.team else None,
            "skills": list(self.skills or []),
            "locale": self.locale,
            "active": self.active,
        }


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at = mapped_column(UTCDateTime, default=utcnow)
    last_used_at = mapped_column(UTCDateTime, nullable=True)
    revoked: Mapped[bool] = mapped_column(default=False)
    # Values this integration's records get when it does not send them: {form key: {field: value}},
    # e.g. a mailbox feed's token stamps {"ticket": {"channel": "email"}}.
    defaults: Mapped[dict | None] = mapped_column(JSONType, nullable=True)

    user = relationship(User)

    @staticmethod
    def digest(token):
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name="", defaults=None):
        """Create a token for user; return (row, plaintext token)."""
        token = "ff_" + secrets.token_urlsafe(32)
        row = cls(user=user, token_hash=cls.digest(token), prefix=token[:10], name=name, defaults=defaults or None)
        db.session.add(row)
        return row, token


class LoginAttempt(db.Model):
    """Failed logins, counted per username and per address for throttling."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),
                      Index("ix_login_attempts_address_at", "address", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    at = mapped_column(UTCDateTime, default=utcnow)
