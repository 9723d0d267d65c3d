"""Record pages: list, capture, read with its timeline, edit, delete and restore."""
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import access, browse, inputs
from ..extensions import db
from ..forms import catalog, definitions, records, rendering
from ..forms.models import Record
from ..i18n import doc_locale, pick
from ..people.models import User
from ..reports import store
from . import bp


def _form_or_404(key):
    try:
        form = catalog.get_form(key)
    except catalog.FormNotFound:
        abort(404)
    return form


def _users():
    return [(u.username, u.display_name) for u in
            db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.display_name))]


def _references(version, keep=()):
    """Choices for reference fields: recent records of the target form the user may see."""
    out = {}
    for prop in version.schema["properties"].values():
        target = prop.get("x-reference") if isinstance(prop, dict) else None
        if not target or target in out:
            continue
        try:
            form = catalog.get_form(target)
        except catalog.FormNotFound:
            continue
        stmt = access.visible_records(current_user, select(Record).where(Record.form_id == form.id))
        rows = db.session.scalars(stmt.order_by(Record.id.desc()).limit(200)).all()
        extra = [r for r in (access.get_record(current_user, k) for k in keep) if r and r not in rows]
        out[target] = [(r.id, f"#{r.id} {records.title_of(r)}") for r in rows + extra]
    return out


def _form_class(version, keep=()):
    return rendering.build_form_class(version, doc_locale(), users=_users(), references=_references(version, keep))


@bp.get("/")
@login_required
def home():
    forms = [f for f in catalog.all_forms() if catalog.current_version(f) is not None]
    counts = {}
    for f in forms:
        counts[f.key] = browse.list_records(current_user, f, per_page=1).total
    return render_template("home.html", forms=forms, counts=counts, dashboards=store.visible_dashboards(current_user))


@bp.get("/f/<key>")
@login_required
def record_list(key):
    form = _form_or_404(key)
    version = catalog.current_version(form) or abort(404)
    props = version.schema["properties"]
    settings = version.settings or {}
    columns = settings.get("list_fields") or list(props)[:5]
    filterable = [n for n in columns if definitions.widget_for(n, props[n], version.ui) in
                  ("select", "radio", "multiselect", "boolean")]
    filters = {n: request.args[n] for n in filterable if request.args.get(n)}
    try:
        page = browse.list_records(current_user, form, q=request.args.get("q", ""), filters=filters,
                                   sort=request.args.get("sort", "-created_at"), page=request.args.get("page", 1),
                                   per_page=request.args.get("per_page", 20), deleted=request.args.get("deleted") == "1")
    except browse.BadQuery as err:
        raise inputs.BadParameter(err.where, str(err)) from None
    locale = doc_locale()
    options = {n: rendering.options_for(n, props[n], version.ui, locale) if
               definitions.widget_for(n, props[n], version.ui) != "boolean" else [("true", _("Yes")), ("false", _("No"))]
               for n in filterable}
    labels = {n: pick(version.ui.get("fields", {}).get(n, {}).get("label"), locale) or props[n].get("title", n)
              for n in props}
    users = dict(_users())
    rows = [(r, {n: rendering.display_value(r.data.get(n), n, r.form_version, locale, users) for n in columns})
            for r in page.items]
    sortable = [("-created_at", _("Newest first")), ("created_at", _("Oldest first")), ("-updated_at", _("Recently changed"))]
    sortable += [(n, labels[n]) for n in columns if props[n].get("type") in ("string", "integer", "number")]
    return render_template("records/list.html", form=form, version=version, page=page, rows=rows,
                           columns=columns, labels=labels, filterable=filterable, options=options,
                           filters=filters, sortable=sortable)


def _owner_choices():
    return [("", _("(unassigned)"))] + [(str(u.id), u.display_name) for u in access.assignable_owners(current_user)]


def _chosen_owner(default):
    if current_user.role not in ("admin", "manager") or "_owner" not in request.form:
        return default
    raw = request.form.get("_owner", "")
    owner = None
    if raw:  # "" is "unassigned"; anything else must be someone
        uid = inputs.whole_number(raw, 1, inputs.MAX_ID)
        owner = db.session.get(User, uid) if uid is not None else None
        if owner is None:
            raise inputs.BadParameter("_owner", _("No such user"))
    if not access.may_assign(current_user, owner):
        abort(403)
    return owner


@bp.route("/f/<key>/new", methods=["GET", "POST"])
@login_required
def record_new(key):
    form_def = _form_or_404(key)
    version = catalog.current_version(form_def) or abort(404)
    prefill = {k: v for k, v in request.args.items() if k.startswith(rendering.PREFIX)}
    refs = {rendering.PREFIX + n for n, p in version.schema["properties"].items()
            if isinstance(p, dict) and "x-reference" in p}
    keep = [int(v) for k, v in prefill.items() if k in refs and str(v).isdigit() and len(str(v)) < 10]
    wtf = _form_class(version, keep)(data=prefill if request.method == "GET" else None)
    default_owner = None if current_user.role == "admin" else current_user
    if wtf.validate_on_submit():
        data = rendering.to_data(wtf)
        try:
            record = records.create(form_def, data, current_user, owner=_chosen_owner(default_owner))
        except records.RecordInvalid as err:
            _refused(wtf, err)
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            if record.duplicate_of is not None:
                owner = record.duplicate_of.owner
                flash(_("The same %(what)s was entered before (#%(id)s), owned by %(owner)s. This entry is linked to it.",
                        what=_key_labels(version), id=record.duplicate_of_id,
                        owner=owner.display_name if owner else _("nobody")), "warning")
            return redirect(url_for("web.record_view", record_id=record.id))
    elif request.method == "POST":
        _show_all_problems(wtf, version)
    return render_template("records/edit.html", form=form_def, version=version, wtf=wtf, record=None,
                           owner_choices=_owner_choices(), owner_value=str(default_owner.id) if default_owner else "")


def _show_all_problems(wtf, version):
    """When some inputs could not even be read, still report every other problem at once."""
    if "csrf_token" in wtf.errors:
        flash(_("The page expired. Your entries are kept; please save again."), "danger")
    rendering.put_errors(wtf, records.problems(version, rendering.to_data(wtf), current_user))
    flash(_("Please correct the marked fields."), "danger")


def _key_labels(version):
    keys = (version.settings or {}).get("duplicate_keys", [])
    return "、".join(pick(version.ui.get("fields", {}).get(k, {}).get("label")) or k for k in keys)


def _refused(wtf, err):
    """The engine refused the values: nothing written, messages back on their fields.

    Returns a link to the form that must be filled first, when that is what is missing.
    """
    db.session.rollback()
    _flash_rest(rendering.put_errors(wtf, err.errors))
    flash(_("Please correct the marked fields."), "danger")
    return _required_form_link(getattr(err, "hint", None))


def _required_form_link(hint):
    if not hint:
        return None
    try:
        target = catalog.get_form(hint["requires_form"])
    except catalog.FormNotFound:
        return None
    version = catalog.current_version(target)
    record = db.session.get(Record, hint["record"])
    ref = next((n for n, p in version.schema["properties"].items()
                if isinstance(p, dict) and p.get("x-reference") == record.form.key), None)
    args = {rendering.PREFIX + ref: record.id} if ref else {}
    # carry over values both forms share, so nobody types them twice
    for name, value in record.data.items():
        if name in version.schema["properties"] and name != ref and isinstance(value, (str, int, float)):
            args.setdefault(rendering.PREFIX + name, value)
    return {"title": pick(target.title), "url": url_for("web.record_new", key=target.key, **args)}


def _flash_rest(rest):
    for ptr, messages in rest.items():
        flash(f"{ptr or '/'}: {'; '.join(map(str, messages))}", "danger")


@bp.get("/r/<int:record_id>")
@login_required
def record_view(record_id):
    record = access.get_record_or_404(current_user, record_id, include_deleted=True)
    version = record.form_version
    locale = doc_locale()
    users = dict(_users())
    titles = {}
    for name, prop in version.schema["properties"].items():
        if isinstance(prop, dict) and prop.get("x-reference") and isinstance(record.data.get(name), int):
            ref = access.get_record(current_user, record.data[name], include_deleted=True)
            titles[record.data[name]] = f"#{ref.id} {records.title_of(ref)}" if ref else f"#{record.data[name]}"
    sections = []
    for section, names in definitions.field_order(version.schema, version.ui):
        items = []
        for n in names:
            if n in record.data:
                label = pick(version.ui.get("fields", {}).get(n, {}).get("label"), locale) or \
                    version.schema["properties"][n].get("title", n)
                items.append((n, label, rendering.display_value(record.data[n], n, version, locale, users, titles)))
        if items:
            sections.append((pick(section.get("title"), locale), items))
    duplicates = db.session.scalars(access.visible_records(
        current_user, select(Record).where(Record.duplicate_of_id == record.id))).all()
    labels = {n: pick(version.ui.get("fields", {}).get(n, {}).get("label"), locale) or p.get("title", n)
              for n, p in version.schema["properties"].items()}
    history = [(c, {f: (rendering.display_value(b, f, version, locale, users), rendering.display_value(a, f, version, locale, users))
                    for f, (b, a) in (c.changes or {}).items()}) for c in reversed(record.history)]
    from ..workflow import manual
    from ..workflow.models import RuleRun, Task
    runs = db.session.scalars(select(RuleRun).where(RuleRun.record_id == record.id).order_by(RuleRun.id.desc())
                              .limit(50)).all() if current_user.role in ("admin", "manager") else []
    tasks = db.session.scalars(select(Task).where(Task.record_id == record.id).order_by(Task.status.desc(),
                                                                                        Task.due_at)).all()
    return render_template("records/view.html", record=record, version=version, sections=sections,
                           duplicates=duplicates, history=history, labels=labels, title=records.title_of(record),
                           manual_rules=manual.available(current_user, record) if not record.deleted_at else [],
                           runs=runs, tasks=tasks)


@bp.post("/r/<int:record_id>/rules/<key>")
@login_required
def record_press(record_id, key):
    from ..workflow import manual
    record = access.get_record_or_404(current_user, record_id)
    run = manual.press(current_user, record, key)
    if run is None:
        abort(404)
    db.session.commit()
    if run.error:
        flash(run.error, "danger")
    elif run.matched:
        flash(_("Done."), "success")
    else:
        flash(_("The rule's condition does not hold for this record; nothing was done."), "warning")
    return redirect(url_for("web.record_view", record_id=record.id))


@bp.route("/r/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def record_edit(record_id):
    record = access.get_record_or_404(current_user, record_id)
    version = record.form_version
    keep = [v for n, v in record.data.items()
            if isinstance(version.schema["properties"].get(n), dict) and "x-reference" in version.schema["properties"][n]]
    cls = _form_class(version, keep)
    conflict = required_link = None
    if request.method == "POST":
        wtf = cls()
        expected = request.form.get("_version", "")
        if wtf.validate_on_submit():
            data = rendering.to_data(wtf)
            fixed = definitions.readonly_fields(version.ui)
            changes = {n: data.get(n) for n in version.schema["properties"] if n not in fixed}
            try:
                records.update(record, changes, int(expected) if expected.isdigit() else -1, current_user,
                               owner=_chosen_owner(record.owner))
            except records.StaleRecord as err:
                db.session.rollback()
                current = db.session.get(Record, err.record.id)
                conflict = _conflict(current, data, version)
                flash(_("Someone else changed this record while you were editing. Nothing was saved; "
                        "compare below, then save again to keep your values."), "danger")
                record = current
            except records.RecordInvalid as err:
                required_link = _refused(wtf, err)
            else:
                db.session.commit()
                flash(_("Saved."), "success")
                return redirect(url_for("web.record_view", record_id=record.id))
        else:
            _show_all_problems(wtf, version)
    else:
        wtf = cls(data=rendering.from_data(record.data, version))
    return render_template("records/edit.html", form=record.form, version=version, wtf=wtf, record=record,
                           conflict=conflict, required_link=required_link, owner_choices=_owner_choices(),
                           owner_value=str(record.owner_id or ""))


def _conflict(current, mine, version):
    locale = doc_locale()
    users = dict(_users())
    rows = []
    for n in version.schema["properties"]:
        theirs, ours = current.data.get(n), mine.get(n)
        if theirs != ours:
            label = pick(version.ui.get("fields", {}).get(n, {}).get("label"), locale) or n
            rows.append((label, rendering.display_value(theirs, n, version, locale, users),
                         rendering.display_value(ours, n, version, locale, users)))
    return rows


@bp.post("/r/<int:record_id>/delete")
@login_required
def record_delete(record_id):
    record = access.get_record_or_404(current_user, record_id)
    records.delete(record, current_user)
    db.session.commit()
    flash(_("Deleted. You can restore it from the deleted list."), "success")
    return redirect(url_for("web.record_list", key=record.form.key))


@bp.post("/r/<int:record_id>/restore")
@login_required
def record_restore(record_id):
    record = access.get_record_or_404(current_user, record_id, include_deleted=True)
    records.restore(record, current_user)
    db.session.commit()
    flash(_("Restored."), "success")
    return redirect(url_for("web.record_view", record_id=record.id))
