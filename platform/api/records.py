"""Records over the API: create (idempotent), list, read, patch with If-Match, delete, restore."""
import hashlib
import json

from flask import abort, g, jsonify, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import access, browse, inputs
from ..extensions import db
from ..forms import records
from ..forms.models import IdempotencyKey, Record
from ..people.models import User
from . import bp, serialize
from .auth import invalid, json_body, problem
from .forms import _form


def _record_response(record, status=200, **extra):
    response = jsonify({**serialize.record(record), **extra})
    response.status_code = status
    response.headers["ETag"] = f'"{record.version}"'
    response.headers["Location"] = url_for("api.get_record", record_id=record.id)
    return response


def _owner(body, default):
    """The owner named in the body (a username or null), checked against what g.user may assign."""
    if "owner" not in body:
        return default
    name = body["owner"]
    owner = None
    if name is not None:
        if not isinstance(name, str):
            abort(invalid({"/owner": [_("Give a username or null")]}))
        owner = db.session.scalars(select(User).where(User.username == name, User.active.is_(True))).first()
        if owner is None:
            abort(invalid({"/owner": [_("No such user")]}))
    if not access.may_assign(g.user, owner):
        abort(invalid({"/owner": [_("You may not assign records to this user")]}))
    return owner


def _data(body):
    data = body.get("data")
    if not isinstance(data, dict):
        abort(invalid({"/data": [_("Give the field values as a JSON object")]}))
    return data


def _warnings(record):
    if record.duplicate_of is None:
        return []
    first = record.duplicate_of
    owner = first.owner
    return [{"code": "duplicate", "record": first.id, "owner": serialize.user_ref(owner),
             "message": _("A record with the same key fields already exists (#%(id)s), owned by %(owner)s",
                          id=first.id, owner=owner.display_name if owner else _("nobody"))}]


@bp.post("/forms/<key>/records")
def create_record(key):
    form = _form(key)
    key_header = request.headers.get("Idempotency-Key", "").strip()
    body = json_body(("data", "owner"))
    if len(key_header) > 200:
        abort(problem(400, _("Idempotency-Key is longer than 200 characters.")))
    digest = hashlib.sha256(json.dumps([key, body], sort_keys=True).encode()).hexdigest()
    if key_header:  # a key is the calling token's own: two feeds of one user never share one
        key_header = hashlib.sha256(f"{g.token_id}\0{key_header}".encode()).hexdigest()
        replay = _replay(key_header, digest)
        if replay is not None:
            return replay
    default_owner = None if g.user.role == "admin" else g.user
    owner = _owner(body, default_owner)
    try:
        data = {**g.token_defaults.get(form.key, {}), **_data(body)}  # what the caller sends wins
        record = records.create(form, data, g.user, owner=owner, prefix=("data",))
    except records.RecordInvalid as err:
        db.session.rollback()
        return invalid(err.errors)
    except records.NotPublished:
        db.session.rollback()
        abort(404)
    if key_header:
        db.session.add(IdempotencyKey(user_id=g.user.id, key=key_header, request_hash=digest, record_id=record.id))
    try:
        db.session.commit()
    except IntegrityError:
        # A concurrent retry with the same key won the race: answer with its record.
        db.session.rollback()
        replay = _replay(key_header, digest) if key_header else None
        if replay is None:
            raise
        return replay
    return _record_response(record, 201, warnings=_warnings(record))


def _replay(key_header, digest):
    row = db.session.scalars(select(IdempotencyKey).where(
        IdempotencyKey.user_id == g.user.id, IdempotencyKey.key == key_header)).first()
    if row is None:
        return None
    if row.request_hash != digest:
        abort(problem(409, _("This Idempotency-Key was already used with a different request.")))
    record = db.session.get(Record, row.record_id)
    response = _record_response(record, 201, warnings=_warnings(record))
    response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/forms/<key>/records")
def list_records(key):
    form = _form(key)
    args = request.args
    filters = {k[len("filter["):-1]: v for k, v in args.items() if k.startswith("filter[") and k.endswith("]")}
    try:
        page = browse.list_records(g.user, form, q=args.get("q", ""), filters=filters,
                                   sort=args.get("sort", "-created_at"), page=args.get("page", 1),
                                   per_page=args.get("per_page", 20), owner=args.get("owner"),
                                   deleted=args.get("deleted") == "true")
    except browse.BadQuery as err:
        return problem(400, str(err), errors={err.where: [str(err)]})
    return jsonify({"records": [serialize.record(r) for r in page.items], "total": page.total,
                    "page": page.page, "per_page": page.per_page, "pages": page.pages})


@bp.get("/records/<int:record_id>")
def get_record(record_id):
    return _record_response(access.get_record_or_404(g.user, record_id, include_deleted=True))


@bp.get("/records/<int:record_id>/history")
def record_history(record_id):
    record = access.get_record_or_404(g.user, record_id, include_deleted=True)
    return jsonify({"history": [serialize.change(c) for c in record.history]})


def _if_match(required):
    raw = request.headers.get("If-Match")
    if raw is None:
        if required:
            abort(problem(428, _("Send If-Match with the record's version.")))
        return None
    version = inputs.whole_number(raw.strip().removeprefix("W/").strip('"'), 1, inputs.MAX_INT)
    if version is None:
        abort(problem(400, _("If-Match must be the record's version number.")))
    return version


def _stale(record):
    db.session.rollback()
    record = db.session.get(Record, record.id)
    response = problem(412, _("The record was changed by someone else; here is the current version."),
                       record=serialize.record(record))
    response.headers["ETag"] = f'"{record.version}"'
    return response


@bp.patch("/records/<int:record_id>")
def patch_record(record_id):
    record = access.get_record_or_404(g.user, record_id)
    expected = _if_match(required=True)
    body = json_body(("data", "owner"))
    if expected != record.version:
        return _stale(record)
    owner = _owner(body, ...) if "owner" in body else ...
    try:
        records.update(record, _data(body) if "data" in body else {}, expected, g.user,
                       owner=owner, prefix=("data",))
    except records.StaleRecord:
        return _stale(record)
    except records.RecordInvalid as err:
        db.session.rollback()
        return invalid(err.errors)
    db.session.commit()
    return _record_response(record)


@bp.delete("/records/<int:record_id>")
def delete_record(record_id):
    record = access.get_record_or_404(g.user, record_id)
    expected = _if_match(required=False)
    if expected is not None and expected != record.version:
        return _stale(record)
    records.delete(record, g.user)
    db.session.commit()
    return _record_response(record)


@bp.post("/records/<int:record_id>/restore")
def restore_record(record_id):
    record = access.get_record_or_404(g.user, record_id, include_deleted=True)
    records.restore(record, g.user)
    db.session.commit()
    return _record_response(record)


