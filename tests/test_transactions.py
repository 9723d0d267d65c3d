"""Transactions (issue 9.2): a failing rule never costs the user their change, and the engine never
commits or rolls back the caller's transaction, on SQLite (pysqlite) and PostgreSQL alike."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, select, text

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.workflow import engine, rules
from formflow.workflow.models import RuleRun

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


@pytest.fixture
def ctx(app, cardealer):
    clock.freeze(T0)
    with app.app_context():
        yield app
    clock.reset()


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


def other_connection(app):
    """A second, independent connection: what another request or process would use."""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    return create_engine(url, connect_args={"timeout": 5} if url.startswith("sqlite") else {})


def writeback_rule():
    rules.save({"key": "writeback", "form": "followup", "trigger": {"type": "created"},
                "actions": [{"type": "update_record", "ref": "lead",
                             "values": {"last_followup_at": "followup_at"}}]})
    db.session.commit()


def test_a_concurrent_edit_inside_a_rule_costs_only_the_rule(ctx):
    """The write-back rule finds the lead changed by someone else since this request read it: the
    rule is rolled back alone and logged; the user's follow-up is kept and the transaction usable."""
    writeback_rule()
    lead = records.create(catalog.get_form("lead"), LEAD, user("sales1"), owner=user("sales1"))
    db.session.commit()
    lead_id = lead.id
    db.session().expire_on_commit = False  # this request keeps what it read
    lead = db.session.get(Record, lead_id)
    assert lead.version == 1
    db.session.commit()  # this request holds the lead at version 1 ...
    other = other_connection(ctx)
    with other.begin() as conn:  # ... while another request saves it
        conn.execute(text("UPDATE records SET version = version + 1 WHERE id = :id"), {"id": lead_id})
    other.dispose()

    follow = records.create(catalog.get_form("followup"), {"lead": lead_id, "followup_at": "2026-11-02T09:30:00+08:00",
                                                           "method": "phone", "content": "约了周六到店"},
                            user("sales1"), owner=user("sales1"))
    db.session.commit()  # no ResourceClosedError: the caller's transaction survived
    follow_id = follow.id
    db.session.expire_all()
    assert db.session.get(Record, follow_id).data["content"] == "约了周六到店"
    run = db.session.scalars(select(RuleRun).where(RuleRun.rule_key == "writeback")).one()
    assert run.error and run.record_id == follow_id
    assert "last_followup_at" not in db.session.get(Record, lead_id).data


def test_a_stale_save_through_the_api_is_a_412_and_keeps_nothing(ctx, api):
    """Outside rules a stale version still refuses the whole change, answered by the route."""
    lead = records.create(catalog.get_form("lead"), LEAD, user("sales1"), owner=user("sales1"))
    db.session.commit()
    sales1 = api("sales1")
    r = sales1.patch(f"/api/v1/records/{lead.id}", json={"data": {"notes": "第一次"}}, headers={"If-Match": "1"})
    assert r.status_code == 200
    r = sales1.patch(f"/api/v1/records/{lead.id}", json={"data": {"notes": "第二次"}}, headers={"If-Match": "1"})
    assert r.status_code == 412 and r.get_json()["record"]["data"]["notes"] == "第一次"


def test_a_rule_before_any_write_does_not_commit_on_its_own(ctx):
    """pysqlite used to start no transaction before a SAVEPOINT, so the rule's savepoint was the
    outermost one and its RELEASE committed at once; the caller's rollback then undid nothing."""
    lead = records.create(catalog.get_form("lead"), LEAD, user("sales1"), owner=user("sales1"))
    rule, _changed = rules.save({"key": "note_it", "form": "lead", "trigger": {"type": "manual"},
                                 "actions": [{"type": "set", "values": {"notes": "'规则写的'"}}]})
    db.session.commit()
    lead_id, rule_id = lead.id, rule.id
    db.session.close()  # a fresh transaction: the rule's savepoint is its first write

    record = db.session.get(Record, lead_id)
    engine.run(db.session.get(type(rule), rule_id), record, "manual")
    assert record.data["notes"] == "规则写的"
    db.session.rollback()  # the caller changes its mind: everything goes

    other = other_connection(ctx)
    with other.connect() as conn:
        stored = conn.execute(text("SELECT version FROM records WHERE id = :id"), {"id": lead_id}).scalar()
        runs = conn.execute(text("SELECT count(*) FROM rule_runs WHERE rule_key = 'note_it'")).scalar()
    other.dispose()
    assert stored == 1 and runs == 0


def test_engine_services_leave_the_callers_transaction_open(ctx):
    """records.update refuses a stale version without rolling back what the caller did before."""
    a = records.create(catalog.get_form("lead"), LEAD, user("sales1"), owner=user("sales1"))
    b = records.create(catalog.get_form("lead"), {**LEAD, "phone": "13812345679"}, user("sales1"), owner=user("sales1"))
    db.session.commit()
    records.update(a, {"notes": "先改的"}, a.version, user("sales1"))
    with pytest.raises(records.StaleRecord):
        records.update(b, {"notes": "旧版本"}, b.version - 1, user("sales1"))
    assert db.session().in_transaction()
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Record, a.id).data["notes"] == "先改的"
    assert "notes" not in db.session.get(Record, b.id).data
