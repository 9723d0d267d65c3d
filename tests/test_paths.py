"""Typed paths into the records' JSON that indexes can serve (a first step of issue 10): the
(form, owner, field) index assignment counts open records with, built in the queue, used by
the very query assignment sends, on both databases."""
from sqlalchemy import select, text

from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.people.models import User
from formflow.workflow import assignment, jobs, rules

OPEN = {"field": "status", "not_in": ["won", "defeated"]}


def _plan(sql, params, dialect):
    if dialect == "postgresql":
        db.session.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: ask whether it *can*
        rows = db.session.execute(text("EXPLAIN " + sql), params).scalars().all()
    else:
        rows = [r[-1] for r in db.session.execute(text("EXPLAIN QUERY PLAN " + sql), params).all()]
    return "\n".join(rows)


def test_an_assignment_rule_gets_its_index_and_the_open_count_uses_it(app, cardealer):
    with app.test_request_context():
        rules.save({"key": "assign", "form": "lead", "trigger": {"type": "created"},
                    "actions": [{"type": "assign", "open": OPEN,
                                 "strategies": [{"strategy": "least_loaded", "team": "store1_sales"}]}]})
        db.session.commit()
        assert jobs.run_pending() >= 1
        dialect = db.engine.dialect.name
        names = {r[0] for r in db.session.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'records'" if dialect == "postgresql" else
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"))}
        assert "ix_records_owner_status" in names
        admin = db.session.scalars(select(User).where(User.username == "admin")).one()
        s1, s2 = (db.session.scalars(select(User).where(User.username == n)).one() for n in ("sales1", "sales2"))
        for i, (status, owner) in enumerate([("new", s1), ("defeated", s1), ("contacted", s2)]):  # history
            lead = records.create(catalog.get_form("lead"), {"customer_name": "钱先生", "phone": f"1381234000{i}",
                                                             "source_channel": "showroom", "status": status}, admin,
                                  owner=owner, system=True)
        db.session.commit()
        sales = db.session.scalars(select(User.id).where(User.role == "sales")).all()
        statements = []
        from sqlalchemy import event

        def grab(conn, cursor, statement, parameters, context, executemany):
            if "GROUP BY records.owner_id" in statement:
                statements.append((statement, parameters))
        event.listen(db.engine, "before_cursor_execute", grab)
        try:
            counts = assignment.open_counts(lead, sales, OPEN)
        finally:
            event.remove(db.engine, "before_cursor_execute", grab)
        assert set(counts) == set(sales) and sum(counts.values()) == 1  # the "new" lead; not itself, not the defeated one
        [(sql, params)] = statements
        raw = db.session.connection().connection.dbapi_connection
        if dialect == "postgresql":
            with raw.cursor() as cur:
                cur.execute("SET enable_seqscan = off")
                cur.execute("EXPLAIN " + sql, params)
                plan = "\n".join(r[0] for r in cur.fetchall())
        else:
            plan = "\n".join(r[-1] for r in raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert "ix_records_owner_status" in plan, plan
