"""Forms and their versions: define, draft, publish, look up."""
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..types import utcnow
from . import definitions
from .models import Form, FormVersion


class FormNotFound(LookupError):
    pass


class VersionLocked(Exception):
    """A published version was asked to change."""


def get_form(key):
    form = db.session.scalars(select(Form).where(Form.key == key)).first()
    if form is None:
        raise FormNotFound(key)
    return form


def all_forms():
    return db.session.scalars(select(Form).order_by(Form.id)).all()


def current_version(form):
    """The newest published version, or None while a form has only drafts."""
    return db.session.scalars(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.status == "published")
        .order_by(FormVersion.number.desc())).first()


def draft_version(form):
    return db.session.scalars(
        select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.status == "draft")
        .order_by(FormVersion.number.desc())).first()


def as_definition(form, version):
    """The definition document of one version (the blueprint file format)."""
    return {"key": form.key, "title": form.title, "settings": version.settings,
            "schema": version.schema, "ui": version.ui}


def known_form_keys(extra=()):
    return {k for k in db.session.scalars(select(Form.key))} | set(extra)


def save_draft(definition, blueprint_key=None, known_forms=None):
    """Create the form if new and store the definition as its draft; return the draft.

    The definition is checked first; nothing is written when it is refused.
    """
    definitions.check(definition, known_forms if known_forms is not None else known_form_keys())
    form = db.session.scalars(select(Form).where(Form.key == definition["key"])).first()
    if form is None:
        form = Form(key=definition["key"], title=definition["title"], blueprint_key=blueprint_key)
        db.session.add(form)
        db.session.flush()
    else:
        form.title = definition["title"]
    draft = draft_version(form)
    fields = {"schema": definition["schema"], "ui": definition["ui"],
              "settings": definition.get("settings", {}), "checksum": definitions.checksum(definition)}
    if draft is None:
        number = (db.session.scalar(select(func.max(FormVersion.number)).where(FormVersion.form_id == form.id)) or 0) + 1
        draft = FormVersion(form=form, number=number, status="draft", **fields)
        db.session.add(draft)
    else:
        for k, v in fields.items():
            setattr(draft, k, v)
    db.session.flush()
    return draft


def publish(version):
    """Make a draft the form's current version; from now on it never changes."""
    if version.status != "draft":
        raise VersionLocked(_("Version %(n)s is already published", n=version.number))
    version.status = "published"
    version.published_at = utcnow()
    db.session.flush()
    return version


def define(definition, blueprint_key=None, known_forms=None):
    """Ensure a form's current published version holds this definition.

    Idempotent: an unchanged definition adds nothing; a changed one adds a new version.
    Returns (version, created: bool).
    """
    definitions.check(definition, known_forms if known_forms is not None else known_form_keys())
    form = db.session.scalars(select(Form).where(Form.key == definition["key"])).first()
    if form is not None:
        current = current_version(form)
        if current is not None and current.checksum == definitions.checksum(definition):
            if form.title != definition["title"]:
                form.title = definition["title"]
            return current, False
    draft = save_draft(definition, blueprint_key, known_forms)
    return publish(draft), True
