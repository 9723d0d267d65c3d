"""Signing in and out, and the user's language."""
from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired
from urllib.parse import urlparse

from ..extensions import db
from ..i18n import LOCALES
from ..people import auth
from . import bp


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired()], render_kw={"autocomplete": "username",
                                                                  "autocapitalize": "none"})
    password = PasswordField(validators=[DataRequired()], render_kw={"autocomplete": "current-password"})


def _safe_next(target):
    parsed = urlparse(target or "")
    return target if target and not parsed.netloc and not parsed.scheme and target.startswith("/") else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    form.username.label.text = _("Username")
    form.password.label.text = _("Password")
    if form.validate_on_submit():
        address = request.remote_addr or ""
        if auth.throttled(form.username.data.strip(), address):
            flash(_("Too many failed attempts. Wait 15 minutes and try again."), "danger")
            return render_template("login.html", form=form), 429
        user = auth.authenticate(form.username.data, form.password.data, address)
        if user is None:
            flash(_("Wrong username or password."), "danger")
            return render_template("login.html", form=form), 401
        login_user(user)
        return redirect(_safe_next(request.args.get("next")) or url_for("web.home"))
    return render_template("login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("web.login"))


@bp.post("/language/<code>")
def language(code):
    if code in LOCALES:
        session["locale"] = code
        if current_user.is_authenticated:
            current_user.locale = LOCALES[code]
            db.session.commit()
    return redirect(_safe_next(request.form.get("next")) or url_for("web.home"))
