"""Benchmark: the compiled channel report and funnel against hand-written SQL over a flat table.

    python bench/reports.py                       # SQLite, 1,000,000 leads
    python bench/reports.py --rows 100000 --database-url postgresql://127.0.0.1:5432/formflow_bench

Both sides count the same leads, made by the cardealer blueprint's demo generator at the
requested size (scripts/gen_cardealer_demo.py): Formflow's records (JSON data, status history)
queried by the report compiler, and a flat table with typed, indexed columns queried by SQL
written by hand. Printed: median seconds of each and their ratio (compiled / hand-written),
measured in the same run because these machines are noisy. The figures are ratios, not
targets to assert.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))
STAGES = ["new", "contacted", "invited", "visited", "won"]
# The states a lead passed through to reach its final one, as the status history records them.
PATHS = {"new": ["new"], "no_answer": ["new", "no_answer"], "contacted": ["new", "contacted"],
         "invited": ["new", "contacted", "invited"], "visited": ["new", "contacted", "invited", "visited"],
         "won": ["new", "contacted", "invited", "visited", "won"], "defeated": ["new", "contacted", "defeated"]}

CHANNEL_REPORT = {"key": "bench_channels", "source": "lead", "dimensions": [{"field": "source_channel"}],
                  "measures": [{"key": "leads", "type": "count"},
                               {"key": "a", "type": "count", "where": [{"field": "quality", "op": "eq", "value": "a"}]},
                               {"key": "a_share", "type": "ratio", "numerator": "a", "denominator": "leads"},
                               {"key": "won", "type": "count", "where": [{"field": "status", "op": "eq", "value": "won"}]},
                               {"key": "conv", "type": "ratio", "numerator": "won", "denominator": "leads"}]}
FUNNEL_REPORT = {"key": "bench_funnel", "source": "lead", "measures": [
    {"key": s, "type": "reached", "states": [s]} for s in STAGES]}

HAND_CHANNELS = """
SELECT channel, count(*), sum(CASE WHEN quality = 'a' THEN 1 ELSE 0 END),
       sum(CASE WHEN status = 'won' THEN 1 ELSE 0 END)
FROM leads_flat GROUP BY channel
"""
HAND_FUNNEL = """
SELECT h.to_value, count(DISTINCT h.lead_id) FROM history_flat h
WHERE h.to_value IN ('new', 'contacted', 'invited', 'visited', 'won') GROUP BY h.to_value
"""


def generate(n, seed=2022):
    """The cardealer demo generator's leads (scripts/gen_cardealer_demo.py, size n):
    (id, data, owner username, created_at, states passed through)."""
    from gen_cardealer_demo import Generator
    t0 = time.perf_counter()
    leads = Generator(n, seed).build_leads()
    print(f"generated {n:,} demo leads in {time.perf_counter() - t0:.1f}s")
    for i, lead in enumerate(leads, 1):
        yield i, lead["data"], lead["owner"], lead["created_at"], PATHS[lead["data"]["status"]]


def prepare(url, rows):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from formflow.blueprints import loader
    from formflow.extensions import db
    from formflow.factory import create_app
    from formflow.forms import catalog

    instance = tempfile.mkdtemp(prefix="ff-bench-")
    if url.startswith("postgres"):
        _fresh_pg(url)
    app = create_app({"DATABASE_URL": url, "QUEUE_URL": f"sqlite:///{instance}/q.db", "SECRET_KEY": "bench"},
                     instance_path=instance)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        loader.load(ROOT / "blueprints" / "cardealer")
        form = catalog.get_form("lead")
        version = catalog.current_version(form)
        dialect = db.engine.dialect.name
        db.session.execute(text("CREATE TABLE leads_flat (id integer PRIMARY KEY, channel varchar(32), "
                                "quality varchar(4), status varchar(16), created_at timestamp, owner_id integer)"))
        db.session.execute(text("CREATE TABLE history_flat (lead_id integer, to_value varchar(16), at timestamp)"))
        db.session.commit()
        t0 = time.perf_counter()
        _load(db, dialect, form.id, version.id, rows)
        for stmt in ("CREATE INDEX ix_flat_channel ON leads_flat (channel)",
                     "CREATE INDEX ix_flat_quality ON leads_flat (quality)",
                     "CREATE INDEX ix_flat_status ON leads_flat (status)",
                     "CREATE INDEX ix_hist_to ON history_flat (to_value, lead_id)"):
            db.session.execute(text(stmt))
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        print(f"loaded {rows:,} leads in {time.perf_counter() - t0:.1f}s ({dialect})")
    return app


def _fresh_pg(url):
    import psycopg
    base, name = url.rsplit("/", 1)
    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _load(db, dialect, form_id, version_id, n):
    from sqlalchemy import text
    batch, hist, flat, flat_hist = [], [], [], []

    def flush():
        if not batch:
            return
        if dialect == "postgresql":
            raw = db.session.connection().connection.driver_connection
            with raw.cursor() as cur:
                with cur.copy("COPY records (id, form_id, form_version_id, data, version, owner_id, created_at, "
                              "updated_at, search_text) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                with cur.copy("COPY status_changes (record_id, form_id, field, to_value, at) FROM STDIN") as copy:
                    for row in hist:
                        copy.write_row(row)
                with cur.copy("COPY leads_flat FROM STDIN") as copy:
                    for row in flat:
                        copy.write_row(row)
                with cur.copy("COPY history_flat FROM STDIN") as copy:
                    for row in flat_hist:
                        copy.write_row(row)
        else:
            conn = db.session.connection()
            conn.exec_driver_sql("INSERT INTO records (id, form_id, form_version_id, data, version, owner_id, "
                                 "created_at, updated_at, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [(r[0], r[1], r[2], r[3], r[4], r[5], r[6].replace(tzinfo=None), r[7].replace(tzinfo=None),
                                   r[8]) for r in batch])
            conn.exec_driver_sql("INSERT INTO status_changes (record_id, form_id, field, to_value, at) "
                                 "VALUES (?, ?, ?, ?, ?)", [(*h[:4], h[4].replace(tzinfo=None)) for h in hist])
            conn.exec_driver_sql("INSERT INTO leads_flat VALUES (?, ?, ?, ?, ?, ?)",
                                 [(*f[:4], f[4].replace(tzinfo=None), f[5]) for f in flat])
            conn.exec_driver_sql("INSERT INTO history_flat VALUES (?, ?, ?)",
                                 [(h[0], h[1], h[2].replace(tzinfo=None)) for h in flat_hist])
        db.session.commit()
        batch.clear(), hist.clear(), flat.clear(), flat_hist.clear()

    users = dict(db.session.execute(text("SELECT username, id FROM users")).all())
    for i, data, username, at, states in generate(n):
        owner = users[username]
        at = at.astimezone(timezone.utc)
        batch.append((i, form_id, version_id, json.dumps(data, ensure_ascii=False), 1, owner, at, at,
                      f"{data['customer_name']} {data['phone']}"[:60]))
        flat.append((i, data["source_channel"], data.get("quality"), data["status"], at, owner))
        for step, state in enumerate(states):
            hist.append((i, form_id, "status", state, at + timedelta(days=step)))
            flat_hist.append((i, state, at + timedelta(days=step)))
        if len(batch) >= 20000:
            flush()
    flush()
    if dialect == "postgresql":
        db.session.execute(text("SELECT setval('records_id_seq', (SELECT max(id) FROM records))"))
        db.session.commit()


def timed(fn, repeat):
    fn()  # warm caches on both sides alike
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ff-bench-db-')}/bench.db"
    app = prepare(url, args.rows)

    from sqlalchemy import select, text

    from formflow.extensions import db
    from formflow.people.models import User
    from formflow.reports import compiler

    with app.test_request_context():
        admin = db.session.scalars(select(User).where(User.role == "admin")).first()
        compiled = compiler.run(CHANNEL_REPORT, admin)
        hand = db.session.execute(text(HAND_CHANNELS)).all()
        assert sorted((r[0], r[1], r[2]) for r in compiled.rows) == sorted((r[0], r[1], r[2]) for r in hand), \
            "the compiled report and the hand-written SQL disagree"
        funnel = dict(zip([m["key"] for m in FUNNEL_REPORT["measures"]], compiler.run(FUNNEL_REPORT, admin).rows[0]))
        assert funnel == dict(db.session.execute(text(HAND_FUNNEL)).all()), "funnels disagree"
        print(f"{'':18}{'compiled':>10}{'hand SQL':>10}{'ratio':>8}")
        for name, report, sql in (("channel report", CHANNEL_REPORT, HAND_CHANNELS), ("funnel", FUNNEL_REPORT, HAND_FUNNEL)):
            a = timed(lambda: compiler.run(report, admin), args.repeat)
            b = timed(lambda: db.session.execute(text(sql)).all(), args.repeat)
            print(f"{name:18}{a:>9.3f}s{b:>9.3f}s{a / b:>8.2f}")
    os.environ.pop("FORMFLOW_BENCH", None)


if __name__ == "__main__":
    main()
