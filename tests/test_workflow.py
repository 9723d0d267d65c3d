"""Workflow rules end to end through the real engine: triggers, actions, strategies, timers."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.workflow import engine, jobs, rules, timers
from formflow.workflow.models import DueEntry, Notification, RuleRun, StatusChange, Task

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)  # a Monday, 09:00 in Shanghai
LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


@pytest.fixture
def wf(app, cardealer):
    clock.freeze(T0)
    with app.test_request_context():
        yield app
    clock.reset()


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


def lead(by="sales1", owner=..., **data):
    """A lead entered by `by`, owned by them unless owner is given (None: unassigned)."""
    if owner is ...:
        owner = user(by) if by != "admin" else None
    rec = records.create(catalog.get_form("lead"), {**LEAD, **data}, user(by), owner=owner)
    db.session.commit()
    return rec


def rule(key, trigger, actions, condition="", form="lead", priority=100):
    body = {"key": key, "form": form, "trigger": trigger, "actions": actions, "priority": priority}
    if condition:
        body["condition"] = condition
    r, _changed = rules.save(body)
    db.session.commit()
    return r


def runs(rule_key):
    return db.session.scalars(select(RuleRun).where(RuleRun.rule_key == rule_key).order_by(RuleRun.id)).all()


def phone(i):
    return f"1391234{i:04d}"


# --- triggers ------------------------------------------------------------------------------

def test_created_rule_assigns_by_field_map_and_logs_why(wf):
    rule("live_to_host", {"type": "created"}, [{"type": "assign", "strategies": [
        {"strategy": "field_map", "field": "source_channel", "map": {"dongchedi": "sales3"}},
        {"strategy": "user", "user": "manager"}]}])
    a = lead(by="admin", source_channel="dongchedi")
    b = lead(by="admin", source_channel="autohome", phone=phone(1))
    assert a.owner.username == "sales3" and b.owner.username == "manager"
    [run_a, run_b] = runs("live_to_host")
    assert run_a.matched and run_a.actions[0]["owner"] == "sales3" and "field_map" in run_a.actions[0]["why"]
    assert "nobody matches" in run_b.actions[0]["why"]


def test_updated_rule_fires_only_for_listed_fields_and_sees_old_values(wf):
    rule("quality_up", {"type": "updated", "fields": ["quality"]},
         [{"type": "notify", "to": ["manager"], "title": "{customer_name} 升级为 {quality}"}],
         condition='old.quality == "b" and quality == "a"')
    rec = lead(quality="b")
    records.update(rec, {"notes": "x"}, rec.version, user("sales1"))
    records.update(rec, {"quality": "a"}, rec.version, user("sales1"))
    db.session.commit()
    assert [r.matched for r in runs("quality_up")] == [True]
    note = db.session.scalars(select(Notification)).one()
    assert note.title == "王小明 升级为 A类（高价值线索）" and note.user_id == user("manager").id


def test_status_transition_trigger(wf):
    rule("won_task", {"type": "status", "field": "status", "to": ["won"]},
         [{"type": "task", "to": ["owner"], "title": "交车后 1 个工作日内转交售后", "due": {"days": 1},
           "priority": "high"}])
    rec = lead(owner=None)
    records.update(rec, {"status": "contacted"}, rec.version, user("admin"), owner=user("sales2"))
    records.update(rec, {"status": "won", "deal_date": "2026-11-02"}, rec.version, user("sales2"))
    db.session.commit()
    task = db.session.scalars(select(Task)).one()
    assert task.assignee.username == "sales2" and task.priority == "high"
    assert task.due_at == T0 + timedelta(days=1)
    assert [r.trigger for r in runs("won_task")] == ["status contacted → won"]


def test_time_rule_escalates_and_reassigns_when_nobody_called(wf):
    rule("sla_2h", {"type": "time", "from": "created_at", "offset": {"hours": 2}}, [
        {"type": "notify", "to": ["manager"], "title": "线索 {customer_name} 超过 2 小时未联系"},
        {"type": "assign", "exclude_current": True,
         "strategies": [{"strategy": "least_loaded", "team": "store1_sales", "cap": 15}]},
    ], condition='status == "new"')
    slow = lead(owner=None, phone=phone(1))
    records.update(slow, {}, slow.version, user("admin"), owner=user("sales1"))
    called = lead(owner=user("sales2"), phone=phone(2))
    records.update(called, {"status": "contacted"}, called.version, user("sales2"))
    db.session.commit()
    assert db.session.scalar(select(func.count(DueEntry.id))) == 2
    clock.advance(timedelta(hours=1, minutes=59))
    assert timers.sweep() == 0
    clock.advance(timedelta(minutes=2))
    assert timers.sweep() == 2
    db.session.expire_all()
    assert db.session.get(Record, slow.id).owner.username != "sales1"
    assert db.session.get(Record, called.id).owner.username == "sales2"
    notes = db.session.scalars(select(Notification).where(Notification.rule_key == "sla_2h")).all()
    assert [n.title for n in notes] == ["线索 王小明 超过 2 小时未联系"]  # besides the handover notices
    assert [r.matched for r in runs("sla_2h")] == [True, False]
    # fired once: saving the record again does not re-arm it
    rec = db.session.get(Record, slow.id)
    records.update(rec, {"notes": "稍后再打"}, rec.version, user("admin"))
    db.session.commit()
    clock.advance(timedelta(hours=5))
    assert timers.sweep() == 0


def test_repeating_time_rule(wf):
    rule("weekly_potential", {"type": "time", "from": "created_at", "offset": {"days": 7}, "repeat": {"days": 7}},
         [{"type": "task", "to": ["owner"], "title": "潜在客户每周跟进", "due": {"days": 1}}],
         condition='customer_class == "potential"')
    lead(customer_class="potential")
    for week in range(3):
        clock.advance(timedelta(days=7))
        assert timers.sweep() == 1
    assert db.session.scalar(select(func.count(Task.id))) == 3


def test_days_after_entering_a_state(wf, app):
    flowed(app)
    rule("defeat_30d", {"type": "time", "from": {"status_entered": "defeated"}, "offset": {"days": 30}},
         [{"type": "task", "to": ["owner"], "title": "战败 30 天回访"}], condition='status == "defeated"')
    rec = lead()
    defeat_for(rec)
    records.update(rec, {"status": "defeated"}, rec.version, user("sales1"))
    db.session.commit()
    entry = db.session.scalars(select(DueEntry)).one()
    assert entry.due_at == T0 + timedelta(days=30)
    clock.advance(timedelta(days=30))
    assert timers.sweep() == 1
    assert db.session.scalars(select(Task)).one().title == "战败 30 天回访"


def test_days_before_a_date_field(wf):
    rule("care_90d", {"type": "time", "from": "expected_purchase_date", "offset": {"days": -90}},
         [{"type": "task", "to": ["owner"], "title": "购车前 3 个月关怀"}])
    lead(expected_purchase_date="2027-03-01")
    entry = db.session.scalars(select(DueEntry)).one()
    assert entry.due_at.astimezone(timezone(timedelta(hours=8))).date().isoformat() == "2026-12-01"


def test_cron_rule_fires_once_per_minute_across_sweeps(wf):
    rule("daily_digest", {"type": "cron", "schedule": "0 9 * * *"},
         [{"type": "notify", "to": ["role:manager"], "title": "每日线索简报"}])
    assert timers.run_cron() == 1  # T0 is 09:00 in Shanghai
    assert timers.run_cron() == 0
    clock.advance(timedelta(minutes=1))
    assert timers.run_cron() == 0
    assert db.session.scalar(select(func.count(Notification.id))) == 1


def test_market_event_creates_tasks_for_matching_defeated_customers(wf, app):
    flowed(app)
    lost = []
    for i, model in enumerate(["2022款 哈弗H6 1.5T", "哈弗H6 国潮版", "长安CS75"]):
        rec = lead(phone=phone(i), by=f"sales{i + 1}")
        defeat_for(rec, competitor_model=model)
        lost.append(rec)
    rule("competitor_complaint", {"type": "created"}, [{
        "type": "for_each", "form": "defeat",
        "where": 'contains(reasons, "competitor") and event.model in lower(competitor_model)',
        "actions": [{"type": "task", "to": ["owner"], "priority": "high",
                     "title": "机会！{customer_name} 购买的车型出现大量投诉，请立即关怀"}]}],
        form="market_event", condition='event_type == "competitor_complaint"')
    records.create(catalog.get_form("market_event"), {"title": "哈弗H6 投诉", "event_type": "competitor_complaint",
                                                      "model": "h6", "event_date": "2026-11-02"}, user("admin"))
    db.session.commit()
    assert db.session.scalar(select(func.count(Task.id))) == 0  # the walk is the queue's work
    assert jobs.run_pending() == 1
    tasks = db.session.scalars(select(Task).order_by(Task.id)).all()
    assert sorted(t.assignee.username for t in tasks) == ["sales1", "sales2"]
    assert all(t.priority == "high" for t in tasks)
    [summary] = [r for r in runs("competitor_complaint") if r.trigger.startswith("for_each")]
    assert summary.actions[0]["matched"] == 2 and summary.actions[0]["errors"] == 0


# --- actions ---------------------------------------------------------------------------------

def test_set_create_update_schedule_and_stop(wf, app):
    flowed(app)
    rule("later", {"type": "scheduled"}, [{"type": "set", "values": {"notes": '"scheduled ran"'}}])
    rule("on_create", {"type": "created"}, [
        {"type": "set", "values": {"customer_class": '"intent" if quality == "a" else "potential"'}},
        {"type": "create_record", "form": "followup",
         "values": {"lead": "record.id", "method": '"phone"', "content": '"首次联系计划"',
                    "followup_at": '"2026-11-03T10:00:00+08:00"'}},
        {"type": "schedule", "rule": "later", "after": {"days": 3}},
        {"type": "stop"},
        {"type": "set", "values": {"notes": '"never"'}},
    ])
    rec = lead(quality="a")
    assert rec.data["customer_class"] == "intent" and "notes" not in rec.data
    follow = db.session.scalars(select(Record).join(Record.form).where(catalog.Form.key == "followup")).one()
    assert follow.data["lead"] == rec.id and follow.owner_id == rec.owner_id
    clock.advance(timedelta(days=3))
    assert timers.sweep() == 1
    assert db.session.get(Record, rec.id).data["notes"] == "scheduled ran"


def test_records_created_by_rules_fire_their_own_rules_and_obey_flows(wf, app):
    """issue 9.6: a rule-created record is a real record, not imported history."""
    flowed(app)
    rule("plan_first_call", {"type": "created"}, [
        {"type": "create_record", "form": "followup",
         "values": {"lead": "record.id", "method": '"phone"', "content": '"首次联系计划"',
                    "followup_at": '"2026-11-02T10:00:00+08:00"'}}])
    rule("followup_writes_back", {"type": "created"}, [
        {"type": "update_record", "ref": "lead", "values": {"last_followup_at": "followup_at"}}], form="followup")
    rule("bad_start", {"type": "created"}, [
        {"type": "create_record", "form": "lead", "owner": "owner",
         "values": {"customer_name": '"转介绍"', "phone": '"13900001111"', "source_channel": '"referral"',
                    "status": '"contacted"'}}], condition='source_channel == "autohome"')
    rec = lead()
    assert db.session.get(Record, rec.id).data["last_followup_at"] == "2026-11-02T10:00:00+08:00"
    [run] = runs("followup_writes_back")
    assert run.depth == 1 and run.matched
    other = lead(source_channel="autohome", phone=phone(7))
    [refused] = [r for r in runs("bad_start") if r.record_id == other.id]
    assert refused.error and "/status" in refused.error  # the flow's initial states apply to rules too
    assert db.session.scalar(select(func.count(Record.id)).where(Record.data["phone"].as_string() == "13900001111")) == 0
    assert db.session.get(Record, other.id) is not None  # the user's lead is kept


def test_update_record_through_a_reference(wf, app):
    flowed(app)
    rule("defeat_marks_lead", {"type": "created"}, [
        {"type": "update_record", "ref": "lead", "values": {"customer_class": '"dormant"'}}], form="defeat")
    rec = lead()
    defeat_for(rec)
    assert db.session.get(Record, rec.id).data["customer_class"] == "dormant"


def test_a_broken_rule_is_logged_and_the_users_change_is_kept(wf):
    rule("broken", {"type": "created"}, [{"type": "set", "values": {"visits_typo": "1"}}]) if False else None
    rule("bad_value", {"type": "created"}, [{"type": "set", "values": {"quality": '"z"'}}])
    rec = lead()
    assert db.session.get(Record, rec.id) is not None and "quality" not in rec.data
    [run] = runs("bad_value")
    assert run.matched and run.error and "/quality" in run.error


def test_rules_that_trigger_themselves_stop_at_a_cycle(wf):
    rule("ping", {"type": "updated"}, [{"type": "set", "values": {"notes": 'coalesce(notes, "") + "+"'}}])
    rec = lead()
    records.update(rec, {"notes": "a"}, rec.version, user("sales1"))
    db.session.commit()
    log = runs("ping")
    assert [bool(r.error and "循环" in r.error) for r in log] == [True, False]  # the inner firing stopped
    assert log[0].depth == 1 and log[1].depth == 0
    assert db.session.get(Record, rec.id).data["notes"] == "a+"


def test_dry_run_changes_nothing(wf):
    r = rule("assign_all", {"type": "created"}, [
        {"type": "assign", "strategies": [{"strategy": "user", "user": "sales4"}]},
        {"type": "notify", "to": ["owner"], "title": "新线索", "channels": ["inbox", "webhook"],
         "webhook": {"url": "http://127.0.0.1:9/hook"}}])
    r.enabled = False
    rec = lead()
    result = engine.dry_run(r, rec)
    assert result["matched"] and result["actions"][0]["owner"] == "sales4"
    db.session.commit()
    assert db.session.get(Record, rec.id).owner.username == "sales1"
    assert db.session.scalar(select(func.count(Notification.id))) == 0
    from formflow.workflow.models import OutboxEntry
    assert db.session.scalar(select(func.count(OutboxEntry.id))) == 0


# --- assignment -------------------------------------------------------------------------------

def test_skill_match_then_least_loaded_with_a_cap(wf):
    rule("assign", {"type": "created"}, [{"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
                                          "strategies": [
        {"strategy": "skill", "field": "body_type", "skills_map": {"suv": "SUV"}, "team": "store1_sales", "cap": 2},
        {"strategy": "least_loaded", "team": "store1_sales", "cap": 2}]}])
    suv_people = {u.username for u in db.session.scalars(select(User)) if "SUV" in (u.skills or [])}
    owners = [lead(by="admin", phone=phone(i), body_type="suv").owner.username for i in range(6)]
    assert len(suv_people) == 2  # the shipped people: two salespeople know SUVs
    assert set(owners[:4]) == suv_people  # skill first, up to the cap of 2 each
    assert not set(owners[4:]) & suv_people  # then the least loaded of the others: SUV people are at the cap
    counts = {}
    for o in owners:
        counts[o] = counts.get(o, 0) + 1
    assert max(counts.values()) <= 2
    sales = db.session.scalars(select(User).where(User.role == "sales")).all()
    for i in range(6, 6 + 2 * len(sales)):
        lead(by="admin", phone=phone(i))
    per_owner = dict(db.session.execute(select(Record.owner_id, func.count()).where(Record.owner_id.is_not(None))
                                        .group_by(Record.owner_id)).all())
    assert max(per_owner.values()) <= 2
    assert any(r.actions and r.actions[0]["owner"] is None and "cap" in r.actions[0]["why"] for r in runs("assign"))


# --- status flows -----------------------------------------------------------------------------

FLOW = {"field": "status", "initial": ["new"], "transitions": [
    {"from": ["new"], "to": "no_answer"},
    {"from": ["new", "no_answer"], "to": "contacted"},
    {"from": ["contacted"], "to": "invited", "guard": "appointment_at != None"},
    {"from": ["invited"], "to": "visited"},
    {"from": ["visited", "invited", "contacted"], "to": "won", "roles": ["manager", "admin", "sales"]},
    {"to": "defeated", "requires_form": "defeat"},
    {"from": ["defeated"], "to": "contacted", "roles": ["manager", "admin"]},
]}


def flowed(app):
    import json
    from conftest import CARDEALER
    definition = json.loads((CARDEALER / "forms" / "lead.json").read_text("utf-8"))
    definition["settings"]["status_flow"] = FLOW
    catalog.define(definition, known_forms={"lead", "defeat", "followup", "market_event"})
    db.session.commit()


def defeat_for(rec, **extra):
    data = {"lead": rec.id, "customer_name": rec.data["customer_name"], "phone": rec.data["phone"],
            "intended_model": "途观L", "first_visit_date": "2026-10-01", "followup_count": 2,
            "reasons": ["competitor"], "reason_notes": "买了别家", "intent_strength": "low",
            "expected_next_purchase_date": "2029-01-01", "winback_angle": "关注竞品口碑",
            "bought_other_car": True, "competitor_model": "哈弗H6", **extra}
    d = records.create(catalog.get_form("defeat"), data, rec.owner or user("admin"), owner=rec.owner)
    db.session.commit()
    return d


def test_status_flow_refuses_illegal_and_unguarded_transitions(wf, app):
    flowed(app)
    rec = lead()
    with pytest.raises(records.RecordInvalid) as info:
        records.update(rec, {"status": "won", "deal_date": "2026-11-02"}, rec.version, user("sales1"))
    assert "不能" in info.value.errors["/status"][0] or "cannot" in info.value.errors["/status"][0]
    db.session.rollback()
    records.update(rec, {"status": "contacted"}, rec.version, user("sales1"))
    db.session.commit()
    with pytest.raises(records.RecordInvalid):
        records.update(rec, {"status": "invited", "appointment_at": None}, rec.version, user("sales1"))
    db.session.rollback()
    with pytest.raises(records.RecordInvalid):
        lead(status="won", phone=phone(9), deal_date="2026-11-01")
    db.session.rollback()
    history = db.session.scalars(select(StatusChange).where(StatusChange.record_id == rec.id)
                                 .order_by(StatusChange.id)).all()
    assert [(h.from_value, h.to_value) for h in history] == [(None, "new"), ("new", "contacted")]


def test_entering_defeated_requires_the_capture_form(wf, app):
    flowed(app)
    rec = lead()
    with pytest.raises(records.RecordInvalid) as info:
        records.update(rec, {"status": "defeated"}, rec.version, user("sales1"))
    assert info.value.hint == {"requires_form": "defeat", "record": rec.id}
    db.session.rollback()
    defeat_for(rec)
    rec = db.session.get(Record, rec.id)
    records.update(rec, {"status": "defeated"}, rec.version, user("sales1"))
    db.session.commit()
    with pytest.raises(records.RecordInvalid) as info:
        records.update(rec, {"status": "contacted"}, rec.version, user("sales1"))
    assert "/status" in info.value.errors  # only managers reopen a defeat
    db.session.rollback()
    records.update(rec, {"status": "contacted"}, rec.version, user("manager"))
    db.session.commit()


def test_illegal_transition_is_a_422_in_the_api(api, app, cardealer):
    with app.app_context():
        flowed(app)
    a = api("sales1")
    rid = a.post("/api/v1/forms/lead/records", json={"data": LEAD}).json["id"]
    r = a.patch(f"/api/v1/records/{rid}", json={"data": {"status": "defeated"}}, headers={"If-Match": "1"})
    assert r.status_code == 422
    assert "战败客户信息采集表" in r.json["errors"]["/data/status"][0]
    assert a.get(f"/api/v1/records/{rid}").json["data"]["status"] == "new"


# --- rules as data -------------------------------------------------------------------------------

def test_rule_definitions_are_checked_with_positions(wf):
    with pytest.raises(rules.RuleInvalid) as info:
        rules.save({"key": "bad", "form": "lead", "trigger": {"type": "created"},
                    "condition": 'source_chanel == "douyin_dm"',
                    "actions": [{"type": "set", "values": {"nope": '"x"'}},
                                {"type": "schedule", "rule": "ghost", "after": {"days": 1}}]})
    errors = info.value.errors
    assert "source_chanel" in errors["/condition"][0] and "1" in errors["/condition"][0]
    assert "/actions/0/values/nope" in errors and "/actions/1/rule" in errors
    with pytest.raises(rules.RuleInvalid) as info:
        rules.save({"key": "bad2", "form": "lead", "trigger": {"type": "cron", "schedule": "61 * * * *"},
                    "actions": []})
    assert "/trigger/schedule" in info.value.errors
    with pytest.raises(rules.RuleInvalid) as info:  # a misspelt key names itself, not "none of the shapes"
        rules.save({"key": "bad3", "form": "lead", "trigger": {"type": "created"},
                    "actions": [{"type": "task", "to": ["owner"], "title": "x", "due": {"working_dayz": 1}}]})
    [(where, [message])] = info.value.errors.items()
    assert where == "/actions/0/due" and "working_dayz" in message, info.value.errors
    with pytest.raises(rules.RuleInvalid) as info:  # a misspelt type lists the types there are
        rules.save({"key": "bad4", "form": "lead", "trigger": {"type": "created"}, "actions": [{"type": "taks"}]})
    assert "'taks' is not one of" in info.value.errors["/actions/0/type"][0] and "'task'" in \
        info.value.errors["/actions/0/type"][0]
    assert rules.count() == 0


def test_revisions_and_rollback(wf):
    r = rule("r1", {"type": "created"}, [{"type": "set", "values": {"notes": '"v1"'}}])
    rules.save({**r.body, "actions": [{"type": "set", "values": {"notes": '"v2"'}}]})
    db.session.commit()
    assert lead().data["notes"] == "v2"
    rules.rollback(r, 1)
    db.session.commit()
    assert lead(phone=phone(3)).data["notes"] == "v1"
    assert [v.number for v in rules.revisions(r)] == [3, 2, 1]



@pytest.mark.parametrize("batch", [200, 5])
def test_simulating_an_assignment_rule_over_last_month(wf, monkeypatch, batch):
    """The replay runs in the queue; in batches of 5 it decides exactly what it decides in one go."""
    from formflow.workflow import simulation
    from formflow.workflow.models import Job
    monkeypatch.setattr(simulation, "BATCH", batch)
    for i in range(12):
        clock.freeze(T0 - timedelta(days=30 - i))
        lead(by="admin", phone=phone(i), owner=None)
    clock.freeze(T0)
    r = rule("rr", {"type": "created"}, [{"type": "assign", "strategies": [
        {"strategy": "least_loaded", "team": "store1_sales", "cap": 2}]}])
    since, until = T0 - timedelta(days=31), T0
    job = simulation.start(r, since, until)
    db.session.commit()
    jobs.run_pending()
    job = db.session.get(Job, job.id)
    outcome = job.result
    assert job.status == "done" and job.done == job.total == 12
    assert outcome["records"] == 12 and outcome["matched"] == 12
    sales = db.session.scalar(select(func.count(User.id)).where(User.role == "sales", User.team_id.is_not(None)))
    assert sales == 6 and outcome["owners"] == {f"sales{i}": 2 for i in range(1, 7)}  # the cap of 2 held across batches
    assert db.session.scalar(select(func.count(Record.id)).where(Record.owner_id.is_not(None))) == 0  # nothing kept
    assert db.session.scalar(select(func.count(RuleRun.id))) == 0


def test_status_action_and_manager_strategy(wf, app):
    flowed(app)
    rule("no_answer_to_manager", {"type": "updated", "fields": ["notes"]}, [
        {"type": "status", "to": "no_answer"},
        {"type": "assign", "strategies": [{"strategy": "manager"}]}], condition='notes == "无人接听"')
    rec = lead()
    records.update(rec, {"notes": "无人接听"}, rec.version, user("sales1"))
    db.session.commit()
    rec = db.session.get(Record, rec.id)
    assert rec.data["status"] == "no_answer" and rec.owner.username == "manager"
    [run] = runs("no_answer_to_manager")
    assert [a["type"] for a in run.actions] == ["status", "assign"] and run.actions[0]["from"] == "new"


def test_status_action_still_obeys_the_flow(wf, app):
    flowed(app)
    rule("jump", {"type": "created"}, [{"type": "status", "to": "visited"}])
    rec = lead()
    assert rec.data["status"] == "new"
    [run] = runs("jump")
    assert run.error and "/status" in run.error


def test_chains_of_rules_stop_at_the_depth_limit(wf):
    fields = ["wechat_id", "intended_model", "referrer", "notes", "customer_name", "budget", "quality"]
    special = {"budget": '"budget_5_8"', "quality": '"a"'}
    for i in range(len(fields) - 1):
        nxt = fields[i + 1]
        value = special.get(nxt, f'"{nxt}-{i}"')
        rule(f"chain{i}", {"type": "updated", "fields": [fields[i]]}, [{"type": "set", "values": {nxt: value}}])
    rec = lead(source_channel="referral")
    records.update(rec, {"wechat_id": "start"}, rec.version, user("sales1"))
    db.session.commit()
    stopped = [r for r in db.session.scalars(select(RuleRun)).all() if r.error]
    assert len(stopped) == 1 and str(engine.MAX_DEPTH) in stopped[0].error and stopped[0].depth == engine.MAX_DEPTH


def test_demo_history_is_imported_as_it_was(app):
    """Demo leads arrive already won or defeated; a status flow does not refuse history."""
    import json
    import shutil
    from conftest import CARDEALER, load
    folder = Path(app.instance_path) / "bp"
    shutil.copytree(CARDEALER, folder)
    lead_file = folder / "forms" / "lead.json"
    definition = json.loads(lead_file.read_text("utf-8"))
    definition["settings"]["status_flow"] = FLOW
    lead_file.write_text(json.dumps(definition, ensure_ascii=False), encoding="utf-8")
    summary = load(app, folder, demo=True)
    assert summary["demo_records"] > 100


def test_created_at_is_a_moment_in_expressions(wf):
    """created_at reaches expressions as an instant, like date-time fields (issue 9.5)."""
    rule("visit_after_entry", {"type": "created"}, [{"type": "set", "values": {"notes": '"预约在登记之后"'}}],
         condition="next_followup_at != None and next_followup_at > created_at")
    later_visit = lead(next_followup_at="2026-11-02T02:00:00+00:00")      # 10:00 in Shanghai, after 09:00
    earlier_visit = lead(next_followup_at="2026-11-02T08:30:00+08:00", phone=phone(5))  # 00:30 UTC: before
    assert db.session.get(Record, later_visit.id).data.get("notes") == "预约在登记之后"
    assert "notes" not in db.session.get(Record, earlier_visit.id).data
