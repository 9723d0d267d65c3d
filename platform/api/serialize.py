"""JSON shapes of the API's resources."""
from ..forms import catalog
from ..forms.records import title_of


def iso(dt):
    return dt.isoformat() if dt else None


def user_ref(user):
    return {"username": user.username, "display_name": user.display_name} if user else None


def record(r):
    return {
        "id": r.id,
        "form": r.form.key,
        "form_version": r.form_version.number,
        "version": r.version,
        "title": title_of(r),
        "data": r.data,
        "owner": user_ref(r.owner),
        "created_by": user_ref(r.created_by),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
        "deleted": r.deleted_at is not None,
        "deleted_at": iso(r.deleted_at),
        "duplicate_of": r.duplicate_of_id,
    }


def form_summary(form):
    v = catalog.current_version(form)
    return {"key": form.key, "title": form.title, "version": v.number if v else None}


def form_detail(form, version):
    return {**form_summary(form), "version": version.number, "schema": version.schema,
            "ui": version.ui, "settings": version.settings, "published_at": iso(version.published_at)}


def change(c):
    return {"version": c.version, "action": c.action, "user": user_ref(c.user), "at": iso(c.at),
            "changes": c.changes}
