"""Background jobs over the API: how far a queued simulation, re-arming or fan-out has got."""
from flask import abort, jsonify

from ..extensions import db
from ..workflow.jobs import as_json
from ..workflow.models import Job
from . import bp
from .auth import require_admin


@bp.get("/jobs/<int:job_id>")
def get_job(job_id):
    require_admin()
    job = db.session.get(Job, job_id) or abort(404)
    return jsonify(as_json(job))
