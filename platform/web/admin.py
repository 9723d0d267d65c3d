"""Admin pages: people, form definitions (draft, check, publish) and the queue's health."""
import json
from functools import wraps

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import TextAreaField

from ..extensions import db
from ..forms import catalog, definitions
from ..people.models import Team, User
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
                definition[part] = json.loads(getattr(wtf, part).data or "{}")
            except json.JSONDecodeError as err:
                errors[f"/{part}"] = [_("Not valid JSON: line %(line)s, column %(col)s: %(msg)s",
                                        line=err.lineno, col=err.colno, msg=err.msg)]
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
                           versions=form.versions)


@bp.get("/admin/status")
@admin_required
def admin_status():
    beats = db.session.scalars(select(Heartbeat).order_by(Heartbeat.at.desc())).all()
    return render_template("admin/status.html", beats=beats)
