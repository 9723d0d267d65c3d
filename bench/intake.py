"""Benchmark: leads created through the REST API (validation, assignment, the cardealer rules),
against a bare SQLAlchemy insert of the same rows, one transaction per row, in the same run.

    python bench/intake.py --rows 100000                # SQLite, 100,000 existing leads
    python bench/intake.py --rows 100000 --database-url postgresql://127.0.0.1:5432/formflow_bench

The existing leads come from the cardealer demo generator (bench/reports.py loads them); the new
leads go through Flask's test client into the app, so the figure is the application's cost
without a network in between. Printed: `figure: value baseline ratio`.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports import prepare  # noqa: E402  (the same loader as the report benchmark)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="existing leads")
    parser.add_argument("--leads", type=int, default=200, help="leads to create, each side")
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file in a temporary folder")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ff-bench-db-')}/bench.db"
    app = prepare(url, args.rows)

    from sqlalchemy import event, insert, select

    from formflow.extensions import db
    from formflow.forms import catalog
    from formflow.forms.models import Record
    from formflow.people.models import ApiToken, User
    from formflow.workflow import jobs

    with app.app_context():
        jobs.run_pending()  # the blueprint's re-arming, before anything is timed
        admin = db.session.scalars(select(User).where(User.username == "admin")).one()
        _row, token = ApiToken.issue(admin, "bench")
        form = catalog.get_form("lead")
        form_id, version_id = form.id, catalog.current_version(form).id
        db.session.commit()
        engine = db.engine
    statements = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args):
        statements.append(1)

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def body(i):
        return {"customer_name": f"压测客户{i}", "phone": f"136{i:08d}", "source_channel": "autohome",
                "status": "new", "body_type": "suv"}

    api_times, bare_times, per_lead = [], [], []
    for i in range(args.leads):
        # interleaved: the two sides see the same database size and the same machine load
        before = len(statements)
        t0 = time.perf_counter()
        r = client.post("/api/v1/forms/lead/records", json={"data": body(i)}, headers=headers)
        api_times.append(time.perf_counter() - t0)
        per_lead.append(len(statements) - before)
        assert r.status_code == 201, r.get_json()
        with app.app_context():
            t0 = time.perf_counter()
            db.session.execute(insert(Record).values(form_id=form_id, form_version_id=version_id, version=1,
                                                     data=body(args.leads + i), search_text=""))
            db.session.commit()
            bare_times.append(time.perf_counter() - t0)
    api, bare = statistics.median(api_times), statistics.median(bare_times)
    with app.app_context():
        unowned = db.session.scalar(select(db.func.count(Record.id)).where(
            Record.form_id == form_id, Record.owner_id.is_(None), Record.data["customer_name"].as_string()
            .like("压测客户%")))
    print(f"existing leads: {args.rows:,} ({engine.dialect.name}); created {args.leads} each side")
    print(f"leads per second (API vs bare insert): {1 / api:.1f} {1 / bare:.1f} {bare / api:.3f}")
    print(f"median ms per lead: {api * 1000:.1f} {bare * 1000:.1f} {api / bare:.1f}")
    print(f"SQL statements per lead (median): {statistics.median(per_lead):.0f}")
    print(f"API leads left without an owner: {unowned - args.leads if unowned > args.leads else 0}")
    print(json.dumps({"rows": args.rows, "api_ms": round(api * 1000, 2), "bare_ms": round(bare * 1000, 2)}))


if __name__ == "__main__":
    main()
