"""Records: create, update, soft delete and restore, with history and duplicate links.

Every function validates before it writes and leaves the session untouched when it
refuses; the caller commits.
"""
import hashlib
import json

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from ..types import utcnow
from . import catalog, definitions, validation
from .models import Record, RecordChange
from .pointers import pointer


# Other parts of the engine subscribe to record changes here; forms itself knows none of them.
# before_save(record, old_data, new_data, user, form=, prefix=, system=) may raise RecordInvalid
# to refuse a change (system: the engine importing history, e.g. a blueprint's demo data);
# after_save(record, action, old_data, user, system=) runs in the same transaction, after the write;
# action is "create", "update", "delete" or "restore".
before_save = []
after_save = []


class RecordInvalid(Exception):
    """Data failed validation; ``errors`` maps JSON pointers to messages."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__(json.dumps(errors, ensure_ascii=False))


class StaleRecord(Exception):
    """An update named a version that is no longer current; ``record`` is the current one."""

    def __init__(self, record):
        self.record = record  # after a failed write, read it only once the caller has rolled back
        super().__init__("the record was saved by someone else meanwhile")


class NotPublished(Exception):
    """The form has no published version to capture records with."""


def clean(version, data):
    """Normalise submitted data: drop empty values and hidden fields, tidy phone numbers."""
    from .conditions import holds

    props = version.schema.get("properties", {})
    ui_fields = version.ui.get("fields", {})
    out = {}
    for name, value in data.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, str) and props.get(name, {}).get("type") == "string":
            value = value.strip()
            if props[name].get("format") == "cn-mobile":
                value = validation.normalize_phone(value)
            if value == "":
                continue
        out[name] = value
    for name, field in ui_fields.items():
        if "visible_when" in field and name in out and not holds(field["visible_when"], out):
            del out[name]
    return out


def lookups_for(user, system=False):
    """Existence checks for user and reference fields, seen through the user's access.

    ``system`` is the engine acting for itself (blueprint loading): it sees every record.
    """
    from .. import access
    from ..people.models import User

    def user_exists(username):
        return db.session.scalar(select(User.id).where(User.username == username, User.active.is_(True))) is not None

    def reference_exists(form_key, record_id):
        stmt = select(Record.id).join(Record.form).where(Record.id == record_id, catalog.Form.key == form_key,
                                                         Record.deleted_at.is_(None))
        if not system and user is not None:  # no user: the engine itself (rules, imports)
            stmt = access.visible_records(user, stmt)
        return db.session.scalar(stmt) is not None

    return {"user": user_exists, "reference": reference_exists}


def problems(version, data, user):
    """Validation errors for data as it would be stored, without writing anything."""
    return validation.errors_of(version, clean(version, data), lookups_for(user))


def validate(version, data, user, prefix=(), system=False, kept=()):
    """Raise RecordInvalid unless data is valid; references in ``kept`` were accepted before
    (a record stays editable when what it points at has since been deleted)."""
    lookups = lookups_for(user, system)
    if kept:
        check = lookups["reference"]
        lookups["reference"] = lambda form_key, rid: rid in kept or check(form_key, rid)
    errors = validation.errors_of(version, data, lookups, prefix)
    if errors:
        raise RecordInvalid(errors)


def _untouched(version, old, new, prefix):
    """People may not change readonly fields (rules and imports fill them in): RecordInvalid."""
    errors = {pointer([*prefix, name]): [_("This field is filled in by the system")]
              for name in sorted(definitions.readonly_fields(version.ui)) if old.get(name) != new.get(name)}
    if errors:
        raise RecordInvalid(errors)


def _derived(record, version):
    settings = version.settings or {}
    record.search_text = " ".join(
        str(record.data[name]).lower() for name in settings.get("search_fields", []) if record.data.get(name) not in (None, ""))[:1000]
    keys = settings.get("duplicate_keys", [])
    values = [record.data.get(k) for k in keys]
    if keys and all(v not in (None, "", []) for v in values):
        body = json.dumps([str(v).strip().lower() for v in values], ensure_ascii=False)
        record.dedupe_key = hashlib.sha256(body.encode()).hexdigest()
    else:
        record.dedupe_key = None


def find_duplicate(record):
    """The earliest live record of the same form with the same duplicate key, if any."""
    if not record.dedupe_key:
        return None
    stmt = (select(Record).where(Record.form_id == record.form_id, Record.dedupe_key == record.dedupe_key,
                                 Record.deleted_at.is_(None), Record.duplicate_of_id.is_(None))
            .order_by(Record.id))
    if record.id is not None:
        stmt = stmt.where(Record.id != record.id)
    return db.session.scalars(stmt).first()


def _log(record, action, user, changes, at=None):
    db.session.add(RecordChange(record=record, version=record.version, action=action,
                                user_id=user.id if user else None, changes=changes, at=at or utcnow()))


def _diff(before, after):
    return {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
            if before.get(k) != after.get(k)}


def create(form, data, user, owner=None, import_key=None, created_at=None, prefix=(), system=False):
    """Validate and store a new record against the form's current published version.

    :returns: the record; ``record.duplicate_of`` is set when its key fields match an earlier one
    :raises RecordInvalid: with field-level messages; nothing is written
    """
    version = catalog.current_version(form)
    if version is None:
        raise NotPublished(form.key)
    data = clean(version, data)
    if user is not None and not system:
        _untouched(version, {}, data, prefix)
    validate(version, data, user, prefix, system)
    for hook in before_save:
        hook(None, {}, data, user, form=form, prefix=prefix, system=system)
    record = Record(form=form, form_id=form.id, form_version=version, data=data, owner=owner,
                    created_by_id=user.id if user else None, import_key=import_key)
    if created_at is not None:
        record.created_at = record.updated_at = created_at
    _derived(record, version)
    record.duplicate_of = find_duplicate(record)
    db.session.add(record)
    db.session.flush()
    _log(record, "create", user, _diff({}, data), at=created_at)
    for hook in after_save:
        hook(record, "create", {}, user, system=system)
    return record


def update(record, changes, expected_version, user, owner=..., prefix=()):
    """Apply changed field values (None removes a value) if expected_version is current.

    :raises StaleRecord: the record moved on; nothing is written
    :raises RecordInvalid: with field-level messages; nothing is written
    """
    if int(expected_version) != record.version:
        raise StaleRecord(record)
    version = record.form_version
    merged = dict(record.data)
    for k, v in changes.items():
        merged[k] = v
    merged = clean(version, merged)
    kept = {v for k, v in record.data.items() if isinstance(v, int) and merged.get(k) == v
            and "x-reference" in version.schema["properties"].get(k, {})}
    if user is not None:
        _untouched(version, record.data, merged, prefix)
    validate(version, merged, user, prefix, kept=kept)
    for hook in before_save:
        hook(record, record.data, merged, user, form=record.form, prefix=prefix, system=False)
    diff = _diff(record.data, merged)
    if owner is not ... and owner != record.owner:
        diff["_owner"] = [record.owner.username if record.owner else None, owner.username if owner else None]
        record.owner = owner
    if not diff:
        return record
    old = dict(record.data)
    record.data = merged
    record.updated_at = utcnow()
    _derived(record, version)
    try:
        db.session.flush()
    except StaleDataError:
        # Someone saved the record since it was read. The caller's transaction is the caller's:
        # a rule's savepoint rolls back alone, a request rolls back and answers "stale".
        raise StaleRecord(record) from None
    _log(record, "update", user, diff)
    for hook in after_save:
        hook(record, "update", old, user, system=False)
    return record


def delete(record, user):
    """Soft delete: the record leaves lists and searches but keeps its data and history."""
    if record.deleted_at is None:
        record.deleted_at = utcnow()
        db.session.flush()
        _log(record, "delete", user, {})
        for hook in after_save:
            hook(record, "delete", dict(record.data), user, system=False)
    return record


def restore(record, user):
    if record.deleted_at is not None:
        record.deleted_at = None
        db.session.flush()
        _log(record, "restore", user, {})
        for hook in after_save:
            hook(record, "restore", dict(record.data), user, system=False)
    return record


def title_of(record, locale=None):
    """A short human title for a record: its title field, else form and number."""
    field = (record.form_version.settings or {}).get("title_field")
    if field and record.data.get(field) not in (None, ""):
        return str(record.data[field])
    return f"#{record.id}"
