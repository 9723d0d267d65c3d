"""Many leads at once, over real HTTP: the assignment cap holds and nothing is lost."""
import json
import threading
import urllib.error
import urllib.request

from sqlalchemy import func, select

from formflow.extensions import db
from formflow.forms.models import Record
from formflow.people.models import Team, User
from formflow.workflow import rules
from formflow.workflow.models import AssignmentLock, Notification, RuleRun, Task
from conftest import token_for

CAP = 3


def post(url, token, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status


def test_the_cap_holds_under_concurrent_creation(app, cardealer, live):
    with app.app_context():
        rules.save({"key": "round_robin", "form": "lead", "trigger": {"type": "created"}, "actions": [
            {"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
             "strategies": [{"strategy": "least_loaded", "team": "store1_sales", "cap": CAP}]}]})
        db.session.commit()
    token = token_for(app, "admin")
    n, statuses, errors = 40, [], []

    def worker(i):
        try:
            statuses.append(post(f"{live.url}/api/v1/forms/lead/records", token, {"data": {
                "customer_name": f"客户{i}", "phone": f"1371234{i:04d}", "source_channel": "douyin_dm",
                "status": "new"}}))
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and statuses == [201] * n
    with app.app_context():
        per_owner = dict(db.session.execute(select(Record.owner_id, func.count()).where(Record.owner_id.is_not(None))
                                            .group_by(Record.owner_id)).all())
        total = db.session.scalar(select(func.count(Record.id)))
        from formflow.people.models import Team, User
        sales = db.session.scalar(select(func.count(User.id)).join(Team).where(Team.key == "store1_sales",
                                                                               User.role == "sales"))
    assert total == n
    assert max(per_owner.values()) <= CAP
    assert sum(per_owner.values()) == min(n, CAP * sales)  # everyone filled up to the cap, no more


def test_the_same_lead_updated_by_many_at_once_has_one_winner(app, cardealer, live):
    token = token_for(app, "admin")
    created = post(f"{live.url}/api/v1/forms/lead/records", token, {"data": {
        "customer_name": "抢改", "phone": "13712345678", "source_channel": "showroom", "status": "new"}})
    assert created == 201
    with app.app_context():
        rid = db.session.scalar(select(Record.id))
    codes = []

    def patch(i):
        req = urllib.request.Request(f"{live.url}/api/v1/records/{rid}", method="PATCH",
                                     data=json.dumps({"data": {"notes": f"writer {i}"}}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                              "If-Match": "1"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                codes.append(resp.status)
        except urllib.error.HTTPError as err:
            codes.append(err.code)

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [412] * 9
    with app.app_context():
        rec = db.session.get(Record, rid)
        assert rec.version == 2 and rec.data["notes"].startswith("writer ")
        assert len(rec.history) == 2


def _burst(live, token, n):
    """n lead creations released at the same instant from n threads; their status codes."""
    statuses, errors, gate = [], [], threading.Barrier(n)

    def worker(i):
        try:
            gate.wait(timeout=30)
            statuses.append(post(f"{live.url}/api/v1/forms/lead/records", token, {"data": {
                "customer_name": f"客户{i}", "phone": f"1381234{i:04d}", "source_channel": "douyin_dm",
                "status": "new"}}))
        except Exception as exc:  # collected and asserted by the caller
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, errors


def test_a_burst_on_a_fresh_database_leaves_no_lead_unowned(app, cardealer, live):
    """Issue 9.3: the first leads a new database sees all race to create the form's lock row;
    none of them may lose its assignment to that race."""
    with app.app_context():
        rules.save({"key": "round_robin", "form": "lead", "trigger": {"type": "created"}, "actions": [
            {"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
             "strategies": [{"strategy": "least_loaded", "team": "store1_sales", "cap": CAP},
                            {"strategy": "manager"}]}]})
        db.session.commit()
        assert db.session.scalar(select(func.count(AssignmentLock.id))) == 0  # fresh: no lead assigned yet
        sales = db.session.scalars(select(User.id).join(Team).where(Team.key == "store1_sales",
                                                                    User.role == "sales")).all()
        admin = db.session.scalar(select(User.id).where(User.username == "admin"))
    n = 40
    statuses, errors = _burst(live, token_for(app, "admin"), n)
    assert errors == [] and statuses == [201] * n
    with app.app_context():
        owners = dict(db.session.execute(select(Record.owner_id, func.count()).group_by(Record.owner_id)).all())
        runs = db.session.scalars(select(RuleRun)).all()
    assert [r.error for r in runs if r.error] == []
    # the lock row is created race-free: no assignment needed its second try
    assert [a["retried_after"] for r in runs for a in r.actions if "retried_after" in a] == []
    assert None not in owners, f"{owners.get(None)} of {n} leads were left without an owner"
    assert {uid: owners.get(uid) for uid in sales} == {uid: CAP for uid in sales}  # round robin up to the cap
    # the rest fell back to the manager strategy: for an integrator's lead (admin, no team), the admin
    assert {uid: c for uid, c in owners.items() if uid not in sales} == {admin: n - CAP * len(sales)}


def _round_robin_rule(strategies):
    return {"key": "assign_leads", "form": "lead", "trigger": {"type": "created"},
            "actions": [{"type": "assign", "strategies": strategies},
                        {"type": "notify", "to": ["owner"], "title": "新线索 {customer_name}"}]}


def _escalations(app, rid):
    with app.app_context():
        notes = [(db.session.get(User, n.user_id).username, n.title)
                 for n in db.session.scalars(select(Notification).where(Notification.record_id == rid))]
        tasks = [(t.assignee.username, t.title, t.status)
                 for t in db.session.scalars(select(Task).where(Task.record_id == rid))]
        run = db.session.scalars(select(RuleRun).where(RuleRun.record_id == rid,
                                                       RuleRun.rule_key == "assign_leads")).one()
        return notes, tasks, run.error, run.actions


def test_a_lead_nobody_can_take_is_escalated_to_the_managers(app, cardealer, api):
    with app.app_context():
        rules.save(_round_robin_rule([{"strategy": "skill", "skills": ["直升机"], "team": "store1_sales"}]))
        db.session.commit()
    r = api("admin").post("/api/v1/forms/lead/records", json={"data": {
        "customer_name": "没人接", "phone": "13812340001", "source_channel": "showroom", "status": "new"}})
    assert r.status_code == 201 and r.json["owner"] is None
    notes, tasks, error, actions = _escalations(app, r.json["id"])
    # an integrator's lead (admin, no team) that nobody may take: the admins are told and get a task
    assert [u for u, _t in notes] == ["admin"] and "没人接" in notes[0][1]
    assert [(u, s) for u, _t, s in tasks] == [("admin", "open")] and "没人接" in tasks[0][1]
    assert error is None
    assign = next(a for a in actions if a["type"] == "assign")
    assert assign["owner"] is None and assign["escalated_to"] == ["admin"] and "nobody matches" in assign["why"]
    assert any(a["type"] == "notify" for a in actions)  # the rest of the rule still ran


def test_an_assignment_that_fails_is_escalated_not_lost(app, cardealer, api):
    with app.app_context():
        rules.save(_round_robin_rule([{"strategy": "least_loaded", "team": "store1_sales",
                                       "when": "int(notes) > 0"}]))
        db.session.commit()
    r = api("sales1").post("/api/v1/forms/lead/records", json={"data": {
        "customer_name": "出错了", "phone": "13812340002", "source_channel": "showroom", "status": "new",
        "notes": "不是数字"}})
    assert r.status_code == 201 and r.json["owner"]["username"] == "sales1"
    notes, tasks, error, actions = _escalations(app, r.json["id"])
    # the owner's team manager hears of it (besides the owner's own notice from the rule's next action)
    assert sorted(u for u, _t in notes) == ["manager", "sales1"]
    assert [(u, s) for u, _t, s in tasks] == [("manager", "open")] and "出错了" in tasks[0][1]
    assign = next(a for a in actions if a["type"] == "assign")
    assert assign["owner"] is None and assign["escalated_to"] == ["manager"] and "int" in assign["error"]
