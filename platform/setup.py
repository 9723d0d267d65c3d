"""First start: bring the database up to date and load the default blueprint with demo data."""
import json
import logging
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import select

from .blueprints import loader
from .blueprints.models import Blueprint
from .extensions import db

log = logging.getLogger(__name__)


def prepare(app, blueprint_path=None, demo=True):
    """Apply migrations; on an empty database load blueprint_path (with demo data).

    Returns the demo logins [(username, password, display name, role)] when any exist.
    """
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        if blueprint_path and db.session.scalar(select(Blueprint.id).limit(1)) is None:
            summary = loader.load(blueprint_path, with_demo=demo)
            log.info("loaded blueprint %s %s with %s demo records", summary["key"], summary["version"],
                     summary["demo_records"])
        return demo_logins(blueprint_path) if blueprint_path else []


def demo_logins(blueprint_path):
    people = Path(blueprint_path) / "people.json"
    if not people.is_file():
        return []
    users = json.loads(people.read_text("utf-8")).get("users", [])
    return [(u["username"], u["demo_password"], u["display_name"], u["role"]) for u in users if u.get("demo_password")]
