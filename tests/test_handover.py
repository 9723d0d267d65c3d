"""Issue 9.4: when a record changes hands its open work goes with it, both people are told, and
the new owner gets a response window of their own (the cardealer's first-contact SLA)."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from formflow import clock
from formflow.extensions import db
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.workflow import timers
from formflow.workflow.models import Notification, RuleRun, Task

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai
PLAN = "为 {} 制定跟进计划"  # followup_plan_24h: every new lead's owner gets this task


@pytest.fixture
def dealer(app, cardealer_full, api):
    clock.freeze(T0)
    yield api
    clock.reset()


def new_lead(client, name, phone, **data):
    body = {"customer_name": name, "phone": phone, "source_channel": "website", "status": "new", **data}
    r = client.post("/api/v1/forms/lead/records", json={"data": body})
    assert r.status_code == 201, r.json
    return r.json


def open_tasks(app, rid):
    with app.app_context():
        return [(t.assignee.username, t.title) for t in db.session.scalars(
            select(Task).where(Task.record_id == rid, Task.status == "open").order_by(Task.id))]


def notices(app, username):
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == username))
        return [n.title for n in db.session.scalars(select(Notification).where(Notification.user_id == uid)
                                                    .order_by(Notification.id))]


def display(app, username):
    with app.app_context():
        return db.session.scalar(select(User.display_name).where(User.username == username))


def owner_of(app, rid):
    with app.app_context():
        record = db.session.get(Record, rid)
        return record.owner.username if record.owner else None


def sla_runs(app, rid):
    with app.app_context():
        return db.session.scalar(select(func.count(RuleRun.id)).where(RuleRun.record_id == rid,
                                                                      RuleRun.rule_key == "first_contact_sla",
                                                                      RuleRun.matched.is_(True)))


def sweep(app):
    with app.app_context():
        return timers.sweep()


def test_the_sla_hands_the_lead_its_tasks_and_a_fresh_window_to_the_new_owner(app, dealer):
    rec = new_lead(dealer("admin"), "周先生", "13912341001", body_type="mpv")  # MPV: sales3's skill
    rid, a = rec["id"], rec["owner"]["username"]
    assert open_tasks(app, rid) == [(a, PLAN.format("周先生"))]

    clock.advance(timedelta(hours=2, minutes=1))  # nobody called: the SLA reassigns
    sweep(app)
    b = owner_of(app, rid)
    assert b not in (None, a) and sla_runs(app, rid) == 1
    assert open_tasks(app, rid) == [(b, PLAN.format("周先生"))]  # the task followed the lead
    assert f"线索登记“周先生”已转交给{display(app, b)}" in notices(app, a)
    assert any(t.startswith("您收到了转交的线索登记“周先生”") for t in notices(app, b))
    assert dealer(a).get(f"/api/v1/records/{rid}").status_code == 404
    assert dealer(b).get(f"/api/v1/records/{rid}").status_code == 200
    with app.app_context():
        assert db.session.get(Record, rid).assigned_at == clock.now()

    clock.advance(timedelta(hours=1))  # an hour into b's own two hours: nothing happens
    sweep(app)
    assert owner_of(app, rid) == b and sla_runs(app, rid) == 1

    clock.advance(timedelta(hours=1, minutes=1))  # b's two hours passed and it is still new
    sweep(app)
    c = owner_of(app, rid)
    assert c not in (None, b) and sla_runs(app, rid) == 2
    assert open_tasks(app, rid) == [(c, PLAN.format("周先生"))]
    assert f"线索登记“周先生”已转交给{display(app, c)}" in notices(app, b)


def test_a_contacted_lead_is_not_reassigned_in_its_new_window(app, dealer):
    rec = new_lead(dealer("admin"), "吴女士", "13912341002", body_type="mpv")
    rid = rec["id"]
    clock.advance(timedelta(hours=2, minutes=1))
    sweep(app)
    b = owner_of(app, rid)
    version = dealer(b).get(f"/api/v1/records/{rid}").json["version"]
    r = dealer(b).patch(f"/api/v1/records/{rid}", json={"data": {"status": "contacted"}},
                        headers={"If-Match": str(version)})
    assert r.status_code == 200, r.json
    clock.advance(timedelta(hours=2, minutes=1))
    sweep(app)
    assert owner_of(app, rid) == b and sla_runs(app, rid) == 1


def test_a_manager_reassigning_over_the_api_moves_open_tasks_only(app, dealer):
    s1, manager = dealer("sales1"), dealer("manager")
    rec = new_lead(s1, "郑先生", "13912341003", status="contacted")
    rid = rec["id"]
    with app.app_context():
        uid = db.session.scalar(select(User.id).where(User.username == "sales1"))
        db.session.add(Task(record_id=rid, assignee_id=uid, title="已完成的回访", status="done", done_at=clock.now()))
        db.session.add(Task(record_id=rid, assignee_id=uid, title="本周试驾邀约"))
        db.session.commit()
    r = manager.patch(f"/api/v1/records/{rid}", json={"owner": "sales2"}, headers={"If-Match": str(rec["version"])})
    assert r.status_code == 200 and r.json["owner"]["username"] == "sales2"
    assert open_tasks(app, rid) == [("sales2", PLAN.format("郑先生")), ("sales2", "本周试驾邀约")]
    with app.app_context():
        done = db.session.scalars(select(Task).where(Task.record_id == rid, Task.status == "done")).one()
        assert done.assignee.username == "sales1"  # finished work stays with who did it
    assert f"线索登记“郑先生”已转交给{display(app, 'sales2')}" in notices(app, "sales1")
    assert any(t.startswith("您收到了转交的线索登记“郑先生”") for t in notices(app, "sales2"))
    assert not any("转交" in t for t in notices(app, "manager"))  # who made the change needs no notice
    assert s1.get(f"/api/v1/records/{rid}").status_code == 404


def test_returning_a_lead_to_the_pool_closes_its_tasks_with_a_reason(app, dealer, client, auth):
    s1 = dealer("sales1")
    rec = new_lead(s1, "冯女士", "13912341004", status="contacted")
    rid = rec["id"]
    r = dealer("manager").patch(f"/api/v1/records/{rid}", json={"owner": None},
                                headers={"If-Match": str(rec["version"])})
    assert r.status_code == 200 and r.json["owner"] is None
    assert open_tasks(app, rid) == []
    with app.app_context():
        task = db.session.scalars(select(Task).where(Task.record_id == rid)).one()
        assert task.status == "closed" and task.assignee.username == "sales1"
        assert "未分配" in task.closed_reason
    assert any("冯女士" in t and "未分配" in t for t in notices(app, "sales1"))
    auth.login("manager")  # the record page lists the closed task with its reason
    assert "已关闭：记录已退回未分配池" in client.get(f"/r/{rid}").get_data(as_text=True)


def test_an_unchanged_owner_moves_nothing(app, dealer):
    s1 = dealer("sales1")
    rec = new_lead(s1, "陈先生", "13912341005", status="contacted")
    r = s1.patch(f"/api/v1/records/{rec['id']}", json={"owner": "sales1", "data": {"notes": "改个备注"}},
                 headers={"If-Match": str(rec["version"])})
    assert r.status_code == 200
    assert open_tasks(app, rec["id"]) == [("sales1", PLAN.format("陈先生"))]
    assert not any("转交" in t for t in notices(app, "sales1"))
    with app.app_context():
        assert db.session.get(Record, rec["id"]).assigned_at is None  # still with the owner it was created with
