"""The records engine: versions, history, optimistic locking, soft delete, duplicates."""
import json

import pytest
from sqlalchemy import select

from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record, RecordChange
from formflow.people.models import User
from conftest import CARDEALER

LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


@pytest.fixture
def ctx(app, cardealer):
    with app.test_request_context():
        yield


def test_published_versions_are_immutable(ctx):
    v = catalog.current_version(catalog.get_form("lead"))
    v.schema = {**v.schema, "title": "changed"}
    with pytest.raises(RuntimeError, match="immutable"):
        db.session.flush()
    db.session.rollback()


def test_records_keep_the_version_they_were_captured_with(ctx):
    form = catalog.get_form("lead")
    old = records.create(form, LEAD, user("sales1"), owner=user("sales1"))
    db.session.commit()
    definition = json.loads((CARDEALER / "forms" / "lead.json").read_text("utf-8"))
    definition["schema"]["properties"]["wechat_id"]["maxLength"] = 5  # stricter in v2
    definition["schema"]["required"].append("quality")
    v2, created = catalog.define(definition, known_forms={"lead", "defeat", "followup", "market_event"})
    db.session.commit()
    assert created and v2.number == 2
    new = records.create(form, {**LEAD, "phone": "13912345678", "quality": "a"}, user("sales1"))
    assert new.form_version.number == 2 and old.form_version.number == 1
    # the old record is still validated against v1: quality stays optional for it
    records.update(old, {"notes": "ok"}, old.version, user("sales1"))
    with pytest.raises(records.RecordInvalid) as info:
        records.update(new, {"quality": None}, new.version, user("sales1"))
    assert "/quality" in info.value.errors


def test_history_is_append_only_and_complete(ctx):
    form = catalog.get_form("lead")
    s1 = user("sales1")
    r = records.create(form, LEAD, s1, owner=s1)
    records.update(r, {"quality": "a", "customer_name": "王大明"}, 1, s1)
    records.delete(r, s1)
    records.restore(r, s1)
    db.session.commit()
    changes = db.session.scalars(select(RecordChange).where(RecordChange.record_id == r.id).order_by(RecordChange.id)).all()
    assert [c.action for c in changes] == ["create", "update", "delete", "restore"]
    assert changes[1].changes == {"customer_name": ["王小明", "王大明"], "quality": [None, "a"]}
    assert [c.version for c in changes] == [1, 2, 3, 4]
    assert all(c.user_id == s1.id for c in changes)
    changes[0].changes = {}
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(RecordChange, changes[0].id))
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_stale_update_is_refused_and_changes_nothing(ctx):
    form = catalog.get_form("lead")
    s1 = user("sales1")
    r = records.create(form, LEAD, s1, owner=s1)
    records.update(r, {"quality": "a"}, 1, s1)
    db.session.commit()
    with pytest.raises(records.StaleRecord) as info:
        records.update(r, {"quality": "c"}, 1, s1)
    assert info.value.record.data["quality"] == "a"
    db.session.rollback()
    assert db.session.get(Record, r.id).data["quality"] == "a"


def test_concurrent_writer_is_caught_by_the_version_column(app, cardealer):
    """Two sessions read version 1; the second write must fail, not overwrite."""
    with app.test_request_context():
        s1 = user("sales1")
        r = records.create(catalog.get_form("lead"), LEAD, s1, owner=s1)
        db.session.commit()
        rid = r.id
    with app.test_request_context():
        mine = db.session.get(Record, rid)
        # this request is done reading (on SQLite a writer holds the database until it ends) ...
        db.session().expire_on_commit = False
        db.session.commit()
        # ... and someone else commits in between through a separate connection
        with db.engine.begin() as conn:
            conn.execute(Record.__table__.update().where(Record.__table__.c.id == rid).values(version=2))
        with pytest.raises(records.StaleRecord):
            records.update(mine, {"quality": "b"}, 1, user("sales1"))


def test_clean_normalises_and_drops_hidden_values(ctx):
    form = catalog.get_form("lead")
    r = records.create(form, {**LEAD, "phone": "+86 138-1234-5678", "live_session": "不该保存",
                              "customer_name": "  王小明 "}, user("sales1"))
    assert r.data["phone"] == "13812345678"
    assert r.data["customer_name"] == "王小明"
    assert "live_session" not in r.data  # only visible for live-stream leads


def test_duplicates_link_to_the_first_record(ctx):
    form = catalog.get_form("lead")
    a = records.create(form, LEAD, user("sales1"), owner=user("sales1"))
    b = records.create(form, {**LEAD, "phone": "+8613812345678"}, user("sales2"), owner=user("sales2"))
    c = records.create(form, {**LEAD, "phone": "13812345678"}, user("sales3"), owner=user("sales3"))
    assert b.duplicate_of_id == a.id and c.duplicate_of_id == a.id
    other = records.create(form, {**LEAD, "phone": "13900000000"}, user("sales1"))
    assert other.duplicate_of_id is None

