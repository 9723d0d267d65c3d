"""Writing a loaded blueprint's current definitions back out as a blueprint folder."""
import json
from pathlib import Path

from sqlalchemy import select

from ..extensions import db
from ..forms import catalog
from ..forms.models import Form
from ..people.models import Team, User
from .models import Blueprint


class ExportError(Exception):
    pass


def _dump(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def export(key, directory):
    """Write blueprint `key` (manifest, forms' current versions, documents, people) to directory.

    Loading the result into an empty database gives the same definitions. Passwords and
    demo records are not exported.
    """
    bp = db.session.scalars(select(Blueprint).where(Blueprint.key == key)).first()
    if bp is None:
        raise ExportError(f"no blueprint {key!r} is loaded")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _dump(out / "blueprint.json", bp.manifest)
    written = ["blueprint.json"]
    for form in db.session.scalars(select(Form).where(Form.blueprint_key == key).order_by(Form.key)):
        version = catalog.current_version(form)
        if version is not None:
            _dump(out / "forms" / f"{form.key}.json", catalog.as_definition(form, version))
            written.append(f"forms/{form.key}.json")
    from ..workflow.models import Rule
    for rule in db.session.scalars(select(Rule).where(Rule.blueprint_key == key).order_by(Rule.key)):
        _dump(out / "rules" / f"{rule.key}.json", rule.body)
        written.append(f"rules/{rule.key}.json")
    from ..reports.models import Report
    for report in db.session.scalars(select(Report).where(Report.blueprint_key == key).order_by(Report.kind, Report.key)):
        folder = "reports" if report.kind == "report" else "dashboards"
        _dump(out / folder / f"{report.key}.json", report.body)
        written.append(f"{folder}/{report.key}.json")
    teams = db.session.scalars(select(Team).order_by(Team.key)).all()
    users = db.session.scalars(select(User).order_by(User.id)).all()
    people = {
        "teams": [{"key": t.key, "name": t.name} for t in teams],
        "users": [{k: v for k, v in {
            "username": u.username, "display_name": u.display_name, "role": u.role,
            "team": u.team.key if u.team else None, "skills": list(u.skills or []),
            "locale": u.locale}.items() if v is not None} for u in users],
    }
    _dump(out / "people.json", people)
    written.append("people.json")
    return written
