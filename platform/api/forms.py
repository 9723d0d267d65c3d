"""Forms over the API."""
from flask import abort, jsonify

from ..forms import catalog
from . import bp, serialize


def _form(key):
    try:
        return catalog.get_form(key)
    except catalog.FormNotFound:
        abort(404)


@bp.get("/forms")
def list_forms():
    return jsonify({"forms": [serialize.form_summary(f) for f in catalog.all_forms()
                              if catalog.current_version(f) is not None]})


@bp.get("/forms/<key>")
def get_form(key):
    form = _form(key)
    version = catalog.current_version(form)
    if version is None:
        abort(404)
    return jsonify(serialize.form_detail(form, version))
