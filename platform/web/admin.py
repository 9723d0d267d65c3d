"""Admin pages: people, form definitions (draft, check, publish) and the queue's health."""
import json
import re
from functools import wraps

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, PasswordField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from .. import inputs
from ..extensions import db
from ..forms import catalog, definitions
from ..i18n import pick
from ..people.models import ROLES, Team, User
from ..workflow.models import Heartbeat
from . import bp


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if current_user.role != "admin":
            abort(403)
        return view(*args, **kwargs)
    return wrapped


@bp.get("/admin/users")
@admin_required
def admin_users():
    users = db.session.scalars(select(User).order_by(User.id)).all()
    teams = db.session.scalars(select(Team).order_by(Team.key)).all()
    return render_template("admin/users.html", users=users, teams=teams)


@bp.get("/admin/forms")
@admin_required
def admin_forms():
    return render_template("admin/forms.html", forms=catalog.all_forms(), current=catalog.current_version,
                           draft=catalog.draft_version)


class DefinitionForm(FlaskForm):
    title = TextAreaField()
    settings = TextAreaField()
    schema = TextAreaField()
    ui = TextAreaField()


def _dump(value):
    return json.dumps(value, ensure_ascii=False, indent=2)


@bp.route("/admin/forms/<key>/draft", methods=["GET", "POST"])
@admin_required
def admin_form_draft(key):
    try:
        form = catalog.get_form(key)
    except catalog.FormNotFound:
        abort(404)
    base = catalog.draft_version(form) or catalog.current_version(form)
    wtf = DefinitionForm()
    errors = {}
    if wtf.validate_on_submit():
        definition = {"key": form.key}
        for part in ("title", "settings", "schema", "ui"):
            try:
                definition[part] = inputs.parse_json(getattr(wtf, part).data or "{}")
            except inputs.BadJSON as err:
                errors.update({f"/{part}{p}": m for p, m in err.errors.items()} or {f"/{part}": [err.message]})
        if not errors:
            try:
                draft = catalog.save_draft(definition)
            except definitions.DefinitionError as err:
                db.session.rollback()
                errors = err.errors
            else:
                if request.form.get("action") == "publish":
                    catalog.publish(draft)
                    flash(_("Version %(n)s published. New records use it; existing records keep theirs.",
                            n=draft.number), "success")
                else:
                    flash(_("Draft saved."), "success")
                db.session.commit()
                return redirect(url_for("web.admin_form_draft", key=key))
        flash(_("The definition was not saved; see the problems below."), "danger")
    elif request.method == "GET":
        wtf.title.data = _dump(form.title)
        wtf.settings.data = _dump(base.settings if base else {})
        wtf.schema.data = _dump(base.schema if base else {})
        wtf.ui.data = _dump(base.ui if base else {})
    return render_template("admin/form_draft.html", form=form, wtf=wtf, errors=errors, base=base,
                           versions=form.versions), 422 if errors else 200


@bp.get("/admin/status")
@admin_required
def admin_status():
    beats = db.session.scalars(select(Heartbeat).order_by(Heartbeat.at.desc())).all()
    return render_template("admin/status.html", beats=beats)


class UserForm(FlaskForm):
    username = StringField(validators=[Optional(), Regexp(r"^[a-z][a-z0-9_.-]{1,63}$")])
    display_name = StringField(validators=[DataRequired(), Length(max=100)])
    role = SelectField(choices=[SelectChoice(r) for r in ROLES])
    team = SelectField(choices=[], validate_choice=False)
    skills = StringField(validators=[Length(max=500)])
    locale = SelectField(choices=[SelectChoice("zh-CN", "简体中文"), SelectChoice("en", "English")])
    active = BooleanField(default=True)
    password = PasswordField(validators=[Optional(), Length(min=8, max=200)])


@bp.route("/admin/users/new", methods=["GET", "POST"], defaults={"user_id": None})
@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def admin_user_edit(user_id):
    user = db.session.get(User, user_id) if user_id else None
    if user_id and user is None:
        abort(404)
    wtf = UserForm(obj=None if request.method == "POST" else user)
    teams = db.session.scalars(select(Team).order_by(Team.key)).all()
    wtf.team.choices = [SelectChoice("", "—")] + [SelectChoice(t.key, pick(t.name)) for t in teams]
    labels = {"username": _("Username"), "display_name": _("Name"), "role": _("Role"), "team": _("Team"),
              "skills": _("Skills (comma-separated)"), "locale": _("Language"), "active": _("Active"),
              "password": _("New password")}
    for name, text in labels.items():
        wtf[name].label.text = text
    wtf.role.choices = [SelectChoice("admin", _("Administrator")), SelectChoice("manager", _("Manager")),
                        SelectChoice("sales", _("Salesperson"))]
    if request.method == "GET" and user is not None:
        wtf.team.data = user.team.key if user.team else ""
        wtf.skills.data = ", ".join(user.skills or [])
    if wtf.validate_on_submit():
        if user is None:
            name = (wtf.username.data or "").strip()
            if not name:
                wtf.username.errors.append(_("This field is required"))
            elif db.session.scalar(select(User.id).where(User.username == name)):
                wtf.username.errors.append(_("This username is taken"))
            elif not wtf.password.data:
                wtf.password.errors.append(_("This field is required"))
            else:
                user = User(username=name)
                db.session.add(user)
        if user is not None:
            user.display_name = wtf.display_name.data.strip()
            user.role = wtf.role.data
            user.team = next((t for t in teams if t.key == wtf.team.data), None)
            user.skills = [s.strip() for s in re.split(r"[,，、]", wtf.skills.data or "") if s.strip()]
            user.locale = wtf.locale.data
            user.active = wtf.active.data
            if wtf.password.data:
                user.set_password(wtf.password.data)
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("web.admin_users"))
    elif request.method == "POST":
        flash(_("Please correct the marked fields."), "danger")
    return render_template("admin/user_edit.html", wtf=wtf, user=user)
