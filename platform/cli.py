"""Command-line tools: flask --app app token|blueprint|user|queue ..."""
import json

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .blueprints import exporter, loader
from .blueprints.models import Blueprint
from .extensions import db
from .people.models import ROLES, ApiToken, User

token_cli = AppGroup("token", help="API bearer tokens.")
blueprint_cli = AppGroup("blueprint", help="Load, export and list blueprints.")
user_cli = AppGroup("user", help="Users.")
queue_cli = AppGroup("queue", help="The background queue.")


def _user(username):
    user = db.session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    return user


@token_cli.command("create")
@click.argument("username")
@click.option("--name", default="", help="What the token is for.")
@click.option("--default", "defaults", multiple=True, metavar="FORM.FIELD=VALUE",
              help="A value records created with this token get when they do not send it, "
                   "e.g. ticket.channel=email for a mailbox feed. Repeatable.")
def token_create(username, name, defaults):
    """Print a new API token for USERNAME (stored hashed; shown only now)."""
    _row, token = ApiToken.issue(_user(username), name, _token_defaults(defaults))
    db.session.commit()
    click.echo(token)


def _token_defaults(pairs):
    """{form: {field: value}} from FORM.FIELD=VALUE pairs, checked against the forms' current versions."""
    from jsonschema import Draft202012Validator

    from .forms import catalog
    from .forms.validation import FORMATS
    out = {}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        form_key, dot, field = target.partition(".")
        if not sep or not dot:
            raise click.BadParameter(f"{pair!r}: write FORM.FIELD=VALUE", param_hint="--default")
        try:
            version = catalog.current_version(catalog.get_form(form_key))
        except catalog.FormNotFound:
            version = None
        if version is None:
            raise click.BadParameter(f"{pair!r}: there is no form {form_key!r}", param_hint="--default")
        prop = version.schema["properties"].get(field)
        if prop is None:
            raise click.BadParameter(f"{pair!r}: form {form_key!r} has no field {field!r}", param_hint="--default")
        typed = value
        if prop.get("type") in ("integer", "number", "boolean", "array"):
            try:
                typed = json.loads(value)
            except ValueError:
                raise click.BadParameter(f"{pair!r}: {field} takes a {prop['type']}", param_hint="--default") from None
        wrong = next(Draft202012Validator(prop, format_checker=FORMATS).iter_errors(typed), None)
        if wrong is not None:  # refused now, not on every call the feed makes later
            raise click.BadParameter(f"{pair!r}: {wrong.message}", param_hint="--default")
        out.setdefault(form_key, {})[field] = typed
    return out


@token_cli.command("revoke")
@click.argument("prefix")
def token_revoke(prefix):
    """Revoke every token starting with PREFIX (the first 10 characters)."""
    rows = db.session.scalars(select(ApiToken).where(ApiToken.prefix == prefix[:10])).all()
    for row in rows:
        row.revoked = True
    db.session.commit()
    click.echo(f"revoked {len(rows)}")


@blueprint_cli.command("load")
@click.argument("path", type=click.Path(exists=True))
@click.option("--demo/--no-demo", default=False, help="Also load demo users' passwords and demo records.")
def blueprint_load(path, demo):
    """Load a blueprint folder or .zip (idempotent)."""
    try:
        summary = loader.load(path, with_demo=demo)
    except loader.BlueprintError as err:
        raise click.ClickException("blueprint refused, nothing changed:\n" + str(err))
    click.echo(f"loaded {summary['key']} {summary['version']}: "
               f"forms added {summary['forms_added'] or '-'}, unchanged {summary['forms_unchanged'] or '-'}, "
               f"users added {len(summary['users_added'])}, documents {summary['documents']}, "
               f"demo records {summary['demo_records']}")


@blueprint_cli.command("export")
@click.argument("key")
@click.argument("directory", type=click.Path(file_okay=False))
def blueprint_export(key, directory):
    """Write blueprint KEY's current definitions to DIRECTORY."""
    try:
        written = exporter.export(key, directory)
    except exporter.ExportError as err:
        raise click.ClickException(str(err))
    click.echo(f"wrote {len(written)} files to {directory}")


@blueprint_cli.command("list")
def blueprint_list():
    """List loaded blueprints."""
    for bp in db.session.scalars(select(Blueprint).order_by(Blueprint.key)):
        name = bp.manifest.get("name", {})
        click.echo(f"{bp.key}\t{bp.version}\t{name.get('zh-CN') or name.get('en', '')}")


@user_cli.command("create")
@click.argument("username")
@click.option("--name", "display_name", default=None)
@click.option("--role", type=click.Choice(ROLES), default="sales")
@click.password_option()
def user_create(username, display_name, role, password):
    """Create a user."""
    if db.session.scalars(select(User).where(User.username == username)).first():
        raise click.ClickException(f"user {username!r} exists")
    user = User(username=username, display_name=display_name or username, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"created {username}")


@queue_cli.command("run")
@click.option("--workers", default=2, show_default=True)
def queue_run(workers):
    """Run a queue consumer in the foreground (for installs beyond one process)."""
    from huey.consumer import Consumer
    huey = current_app.extensions["formflow.queue"].huey
    Consumer(huey, workers=workers, worker_type="thread", periodic=True).run()


def init_app(app):
    for group in (token_cli, blueprint_cli, user_cli, queue_cli):
        app.cli.add_command(group)
