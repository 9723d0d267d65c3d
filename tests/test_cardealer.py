"""The cardealer blueprint's processes (seeds 000, 001, 003), driven through the API and the clock."""
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from formflow import clock
from formflow.extensions import db
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.workflow import timers
from formflow.workflow.models import Notification, Task

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 in Shanghai


@pytest.fixture
def dealer(app, cardealer_full, api):
    clock.freeze(T0)
    yield {"admin": api("admin"), "sales1": api("sales1"), "sales3": api("sales3"), "manager": api("manager")}
    clock.reset()


def lead(client, **data):
    body = {"customer_name": "客户", "phone": "13912340000", "source_channel": "showroom", "status": "new", **data}
    r = client.post("/api/v1/forms/lead/records", json={"data": body})
    assert r.status_code == 201, r.json
    return r.json


def tasks(app, username=None):
    with app.app_context():
        stmt = select(Task).order_by(Task.id)
        if username:
            stmt = stmt.where(Task.assignee_id == select(User.id).where(User.username == username).scalar_subquery())
        return [(t.title, t.priority, t.due_at) for t in db.session.scalars(stmt)]


def sweep(app):
    with app.app_context():
        return timers.sweep()


def test_assignment_follows_source_then_skills_then_load(app, dealer):
    a = dealer["admin"]  # an integrator pushing leads, unassigned
    live = lead(a, phone="13912340001", source_channel="live_stream", live_session="9.28 晚 8 点 SUV 专场直播",
                live_host="sales2")
    platform = lead(a, phone="13912340002", source_channel="dongchedi")
    suv = lead(a, phone="13912340003", source_channel="website", body_type="suv")
    loan = lead(a, phone="13912340004", source_channel="website", accepts_loan=True)
    other = lead(a, phone="13912340005", source_channel="website")
    assert live["owner"]["username"] == "sales2"
    assert platform["owner"]["username"] == "sales3"
    assert suv["owner"]["username"] in ("sales1", "sales6")
    assert loan["owner"]["username"] in ("sales3", "sales5")
    assert other["owner"]["username"] not in (None, "manager")
    luxury = lead(a, phone="13912340007", source_channel="website", budget="budget_over_12", body_type="suv")
    assert luxury["owner"]["username"] == "sales5"  # 豪华车 before body type
    mine = lead(dealer["sales1"], phone="13912340006")  # a salesperson's own lead stays theirs
    assert mine["owner"]["username"] == "sales1"


def test_the_cap_of_15_open_leads_then_least_pending_round_robin(app, dealer):
    a = dealer["admin"]
    owners = [lead(a, phone=f"1391235{i:04d}", source_channel="dongchedi")["owner"]["username"] for i in range(16)]
    assert owners[:15] == ["sales3"] * 15 and owners[15] != "sales3"  # the platform operator is full
    rest = [lead(a, phone=f"1391236{i:04d}", source_channel="showroom")["owner"]["username"] for i in range(10)]
    assert "sales3" not in rest
    counts = {u: rest.count(u) + owners.count(u) for u in ("sales1", "sales2", "sales4", "sales5", "sales6")}
    assert max(counts.values()) - min(counts.values()) <= 1  # round robin by open leads
    # a lead that is won or lost no longer counts: sales3 takes platform leads again
    with app.app_context():
        rec = db.session.scalars(select(Record).where(Record.owner_id == select(User.id).where(
            User.username == "sales3").scalar_subquery()).order_by(Record.id)).first()
        rid, version = rec.id, rec.version
    r = dealer["sales3"].patch(f"/api/v1/records/{rid}", json={"data": {"status": "won", "deal_date": "2026-11-02"}},
                               headers={"If-Match": str(version)})
    assert r.status_code == 422  # new → won is not a legal step; contact first
    r = dealer["sales3"].patch(f"/api/v1/records/{rid}", json={"data": {"status": "contacted"}},
                               headers={"If-Match": str(version)})
    r = dealer["sales3"].patch(f"/api/v1/records/{rid}", json={"data": {"status": "won", "deal_date": "2026-11-02"}},
                               headers={"If-Match": str(r.json["version"])})
    assert r.status_code == 200
    assert lead(a, phone="13912369999", source_channel="dongchedi")["owner"]["username"] == "sales3"


def test_uncontacted_lead_is_escalated_and_reassigned_after_two_hours(app, dealer):
    rec = lead(dealer["admin"], phone="13912340011", source_channel="website", body_type="mpv")
    first = rec["owner"]["username"]
    clock.advance(timedelta(hours=2, minutes=1))
    assert sweep(app) == 1
    after = dealer["admin"].get(f"/api/v1/records/{rec['id']}").json
    assert after["owner"]["username"] != first
    with app.app_context():
        note = db.session.scalars(select(Notification).where(Notification.rule_key == "first_contact_sla")).one()
        assert "超过 2 小时未联系" in note.title and note.user_id == db.session.scalar(
            select(User.id).where(User.username == "manager"))


def test_follow_up_plan_cadence_and_overdue_reminder(app, dealer):
    s1 = dealer["sales1"]
    rec = lead(s1, phone="13912340021", customer_class="intent", status="contacted")
    assert any("制定跟进计划" in t[0] and t[2] == T0 + timedelta(hours=24) for t in tasks(app, "sales1"))
    lead(s1, phone="13912340022", status="contacted")  # a second one, never followed up
    r = s1.post("/api/v1/forms/followup/records", json={"data": {
        "lead": rec["id"], "method": "phone", "content": "介绍车况", "followup_at": "2026-11-02T09:30:00+08:00",
        "next_followup_at": "2026-11-03T10:00:00+08:00"}})
    assert r.status_code == 201, r.json
    now = s1.get(f"/api/v1/records/{rec['id']}").json["data"]
    assert now["last_followup_at"] == "2026-11-02T09:30:00+08:00"
    assert now["next_followup_at"] == "2026-11-03T10:00:00+08:00"
    clock.advance(timedelta(days=1, hours=2, minutes=1))  # 11:01 next day: planned 10:00 + 1h passed
    sweep(app)
    assert any("补录跟进" in t[0] and t[1] == "high" for t in tasks(app, "sales1"))
    clock.advance(timedelta(days=3))  # intent customers: two touches a week
    sweep(app)
    assert sum("意向客户跟进" in t[0] for t in tasks(app, "sales1")) >= 1


def test_six_months_without_interaction_goes_dormant(app, dealer):
    rec = lead(dealer["sales1"], phone="13912340031", customer_class="potential", status="contacted")
    clock.advance(timedelta(days=181))
    sweep(app)
    assert dealer["sales1"].get(f"/api/v1/records/{rec['id']}").json["data"]["customer_class"] == "dormant"
    assert any("休眠池" in n for n in notes(app))


def notes(app):
    with app.app_context():
        return [n.title for n in db.session.scalars(select(Notification))]


@pytest.mark.parametrize("deal_at,due", [
    (T0, T0 + timedelta(days=1)),                                         # Monday → Tuesday
    (T0 + timedelta(days=4, hours=8), T0 + timedelta(days=7, hours=8)),   # Friday 17:00 → Monday 17:00
])
def test_deal_hands_over_to_after_sales_within_one_working_day(app, dealer, deal_at, due):
    s1 = dealer["sales1"]
    clock.freeze(deal_at)
    rec = lead(s1, phone="13912340041")
    for step in ({"status": "contacted"}, {"status": "won", "deal_date": "2026-11-02"}):
        v = s1.get(f"/api/v1/records/{rec['id']}").json["version"]
        assert s1.patch(f"/api/v1/records/{rec['id']}", json={"data": step}, headers={"If-Match": str(v)}).status_code == 200
    assert [(t[1], t[2]) for t in tasks(app, "sales1") if "转交售后" in t[0]] == [("high", due)]


def defeat(client, rec, **data):
    body = {"lead": rec["id"], "customer_name": rec["data"]["customer_name"], "phone": rec["data"]["phone"],
            "intended_model": "2021款 本田CR-V", "first_visit_date": "2026-10-20", "followup_count": 3,
            "reasons": ["price"], "reason_notes": "比别家贵", "intent_strength": "high",
            "expected_next_purchase_date": "2027-02-01", "winback_angle": "金融贴息", **data}
    r = client.post("/api/v1/forms/defeat/records", json={"data": body})
    assert r.status_code == 201, r.json
    return r.json


def test_marking_defeated_requires_the_capture_form(app, dealer):
    s1 = dealer["sales1"]
    rec = lead(s1, phone="13912340051")
    r = s1.patch(f"/api/v1/records/{rec['id']}", json={"data": {"status": "defeated"}}, headers={"If-Match": "1"})
    assert r.status_code == 422 and "战败客户信息采集表" in r.json["errors"]["/data/status"][0]
    defeat(s1, rec)
    v = s1.get(f"/api/v1/records/{rec['id']}").json["version"]
    assert s1.patch(f"/api/v1/records/{rec['id']}", json={"data": {"status": "defeated"}},
                    headers={"If-Match": str(v)}).status_code == 200


def test_grading_pools_and_strategies(app, dealer):
    s1 = dealer["sales1"]
    price = defeat(s1, lead(s1, phone="13912340061"))
    service = defeat(s1, lead(s1, phone="13912340062"), reasons=["sales_service"], intent_strength="low")
    rival = defeat(s1, lead(s1, phone="13912340063"), reasons=["competitor"], intent_strength="medium",
                   bought_other_car=True, competitor_model="2022款 哈弗H6 1.5T", expected_next_purchase_date="2029-01-01")
    later = defeat(s1, lead(s1, phone="13912340064"), reasons=["not_buying_now"], intent_strength="medium")
    get = lambda r: s1.get(f"/api/v1/records/{r['id']}").json["data"]  # noqa: E731
    assert (get(price)["winback_grade"], get(price)["winback_pool"]) == ("high_potential", ["price_watch"])
    assert get(service)["winback_grade"] == "low_potential"
    assert (get(rival)["winback_grade"], get(rival)["winback_pool"]) == ("low_potential", ["nurture"])
    assert get(later)["winback_pool"] == ["monthly_touch"]
    # bad service: the manager calls back within 24 hours, not the original salesperson
    assert [t[0] for t in tasks(app, "manager") if "服务回访" in t[0]] and not [
        t for t in tasks(app, "sales1") if "服务回访" in t[0]]
    # 30 days later: the high-potential one gets a follow-up task, and the monthly pools are touched
    clock.advance(timedelta(days=30, minutes=1))
    sweep(app)
    titles = [t[0] for t in tasks(app, "sales1")]
    assert any("高潜力战败客户回访" in t for t in titles)
    assert any("长线培育" in t for t in titles) and any("月度触达" in t for t in titles)


def drain(app, timeout=20):
    """Let the real queue run the jobs the last requests queued (for_each walks), then return."""
    import time
    from formflow.workflow.models import Job
    app.extensions["formflow.queue"].start_consumer(workers=1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            if not db.session.scalar(select(func.count(Job.id)).where(Job.status.in_(("pending", "running")))):
                return
        time.sleep(0.1)
    raise AssertionError("queued jobs did not finish")


def test_price_drop_touches_exactly_the_price_sensitive_customers_of_that_model(app, dealer):
    s1, s3 = dealer["sales1"], dealer["sales3"]
    defeat(s1, lead(s1, phone="13912340071", customer_name="价格敏感CRV"), intended_model="2021款 本田CR-V")
    defeat(s3, lead(s3, phone="13912340072", customer_name="价格敏感雅阁"), intended_model="本田雅阁")
    defeat(s1, lead(s1, phone="13912340073", customer_name="服务CRV"), intended_model="本田CR-V",
           reasons=["sales_service"], intent_strength="low")
    before = len(tasks(app))
    r = dealer["admin"].post("/api/v1/forms/market_event/records", json={"data": {
        "title": "CR-V 限时降价", "event_type": "price_cut", "model": "CR-V", "event_date": "2026-11-02"}})
    assert r.status_code == 201
    drain(app)
    new = tasks(app)[before:]
    assert len(new) == 1 and "价格敏感CRV" in new[0][0] and new[0][1] == "high"


def test_competitor_complaint_alerts_owners_of_customers_lost_to_that_model(app, dealer):
    s1, s3 = dealer["sales1"], dealer["sales3"]
    defeat(s1, lead(s1, phone="13912340081"), reasons=["competitor"], bought_other_car=True,
           competitor_model="2022款 哈弗H6 1.5T")
    defeat(s3, lead(s3, phone="13912340082"), reasons=["competitor"], bought_other_car=True, competitor_model="长安CS75")
    dealer["admin"].post("/api/v1/forms/market_event/records", json={"data": {
        "title": "哈弗H6 大量投诉", "event_type": "competitor_complaint", "model": "哈弗H6", "event_date": "2026-11-02"}})
    drain(app)
    assert any("机会" in t[0] for t in tasks(app, "sales1"))
    assert not any("机会" in t[0] for t in tasks(app, "sales3"))


def demo_lines(name):
    from conftest import CARDEALER
    return [json.loads(line) for line in (CARDEALER / "demo" / name).read_text("utf-8").splitlines() if line]


def test_demo_history_arms_only_future_reminders_and_brings_its_open_tasks(app):
    from conftest import CARDEALER, load
    load(app, CARDEALER, demo=True)
    expected = demo_lines("tasks.jsonl")
    with app.app_context():
        from formflow.workflow.models import DueEntry
        assert db.session.scalar(select(db.func.min(DueEntry.due_at))) > clock.now() - timedelta(minutes=1)
        assert db.session.scalar(select(db.func.count(Record.id))) > 400
        got = db.session.scalars(select(Task)).all()  # only the demo's open tasks: history replays nothing
        assert sorted((t.title, t.rule_key, t.record.import_key) for t in got) == sorted(
            (t["task"]["title"], t["task"]["rule"], t["task"]["record"]) for t in expected)
        assert {t.assignee.username for t in got} >= {"sales1", "sales2", "sales3"}
    load(app, CARDEALER, demo=True)  # loading again adds nothing
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Task.id))) == len(expected)


@pytest.mark.parametrize("today", [datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc),   # 20:00 in Shanghai
                                   datetime(2027, 3, 10, 0, 30, tzinfo=timezone.utc)])  # 08:30, before as_of's 18:00
def test_demo_dates_move_so_the_history_ends_now(app, today):
    """The demo was written as of 2026-11-25 18:00 +08:00; loaded on another day it ends then."""
    from conftest import CARDEALER, load
    clock.freeze(today)
    try:
        load(app, CARDEALER, demo=True)
        with app.app_context():
            leads = db.session.scalars(select(Record).join(Record.form).where(Record.form.has(key="lead"))).all()
            newest = max(r.created_at for r in leads)
            assert today - timedelta(days=1) < newest <= today  # the newest lead came in the last day, not later
            assert min(r.created_at for r in leads) < today - timedelta(days=170)  # six months of history
            source = {line["key"]: line for line in demo_lines("leads.jsonl")}
            sample = next(r for r in leads if r.data.get("next_followup_at"))
            moved = datetime.fromisoformat(sample.data["next_followup_at"]) - datetime.fromisoformat(
                source[sample.import_key]["data"]["next_followup_at"])
            assert moved.total_seconds() % 86400 == 0 and moved == sample.created_at - datetime.fromisoformat(
                source[sample.import_key]["created_at"])  # whole days, the same for every date of a record
            as_of = datetime.fromisoformat(json.loads((CARDEALER / "blueprint.json").read_text("utf-8"))["demo"]["as_of"])
            ahead = {(t["task"]["record"], t["task"]["title"]): datetime.fromisoformat(t["task"]["due_at"]) - as_of
                     for t in demo_lines("tasks.jsonl")}
            got = {(t.record.import_key, t.title): t.due_at - today for t in db.session.scalars(select(Task))}
            assert got == ahead and any(d > timedelta(0) for d in got.values())  # due as far from now as from as_of
    finally:
        clock.reset()


def test_first_follow_up_time_and_the_timeliness_kpi(app, dealer):
    s1, mgr = dealer["sales1"], dealer["manager"]
    on_time = lead(s1, phone="13912340091", status="contacted")
    late = lead(s1, phone="13912340092", status="contacted")
    never = lead(s1, phone="13912340093", status="contacted")

    def follow(rec, at):
        r = s1.post("/api/v1/forms/followup/records", json={"data": {
            "lead": rec["id"], "method": "phone", "content": "电话沟通", "followup_at": at}})
        assert r.status_code == 201, r.json

    follow(on_time, "2026-11-02T11:00:00+08:00")
    clock.advance(timedelta(hours=30))
    follow(late, "2026-11-03T15:00:00+08:00")
    follow(on_time, "2026-11-03T15:30:00+08:00")  # a second follow-up leaves the first one's time alone
    first = lambda r: s1.get(f"/api/v1/records/{r['id']}").json["data"].get("first_followup_at")  # noqa: E731
    assert first(on_time) == "2026-11-02T11:00:00+08:00" and first(late) == "2026-11-03T15:00:00+08:00"
    assert first(never) is None
    lead(s1, phone="13912340094", status="contacted")  # an hour old, not followed up: not late yet
    clock.advance(timedelta(hours=1))
    rows = mgr.get("/api/v1/reports/followup_timeliness/data").json["rows"]
    assert {r[0]: r[1:] for r in rows}["sales1"] == [4, pytest.approx(1 / 3)]  # 1 on time of 3 due


def test_dormant_wake_up_and_activation_rate(app, dealer):
    s1, mgr = dealer["sales1"], dealer["manager"]
    back = lead(s1, phone="13912340101", customer_class="dormant", status="contacted")
    gone = lead(s1, phone="13912340102", customer_class="dormant", status="contacted")
    clock.advance(timedelta(days=90, minutes=1))
    sweep(app)
    assert sum("休眠客户季度唤醒" in t[0] for t in tasks(app, "sales1")) == 2
    woken = s1.get(f"/api/v1/records/{back['id']}").json
    assert woken["data"]["woken_at"].startswith("2027-01-31")
    clock.advance(timedelta(days=10))
    r = s1.patch(f"/api/v1/records/{back['id']}", json={"data": {"customer_class": "intent"}},
                 headers={"If-Match": str(woken["version"])})
    assert r.status_code == 200 and r.json["data"]["reactivated_at"].startswith("2027-02-10")
    assert any("已被激活" in n for n in notes(app))
    rows = {r[0]: r[1:] for r in mgr.get("/api/v1/reports/dormant_activation/data").json["rows"]}
    assert rows["sales1"] == [2, 1.0]  # the other one's 30 days are not over yet
    clock.advance(timedelta(days=21))
    rows = {r[0]: r[1:] for r in mgr.get("/api/v1/reports/dormant_activation/data").json["rows"]}
    assert rows["sales1"] == [2, 0.5]
    assert s1.get(f"/api/v1/records/{gone['id']}").json["data"].get("reactivated_at") is None


def test_incomplete_defeat_capture_alerts_the_manager_after_24_hours(app, dealer):
    s1 = dealer["sales1"]
    done = defeat(s1, lead(s1, phone="13912340111"))
    half = defeat(s1, lead(s1, phone="13912340112", customer_name="未填完"), winback_angle=None, reason_notes=None)
    clock.advance(timedelta(hours=23))
    sweep(app)
    assert not any("未填写完整" in n for n in notes(app))
    clock.advance(timedelta(hours=1, minutes=1))
    sweep(app)
    alerts = [n for n in notes(app) if "未填写完整" in n]
    assert len(alerts) == 1 and "未填完" in alerts[0]
    assert [t[0] for t in tasks(app, "sales1") if "补全战败信息" in t[0]] == ["补全战败信息采集表：未填完"]
    assert done["data"]["winback_grade"] == "high_potential"
    # grading follows its inputs: a later answer re-grades the capture
    v = s1.get(f"/api/v1/records/{half['id']}").json["version"]
    r = s1.patch(f"/api/v1/records/{half['id']}", headers={"If-Match": str(v)}, json={"data": {
        "reasons": ["sales_service"], "intent_strength": "low", "winback_angle": "经理致歉"}})
    assert r.status_code == 200 and r.json["data"]["winback_grade"] == "low_potential"


def busiest_with_new_leads(app):
    """The salesperson with the most leads still new in the demo (and those leads)."""
    with app.app_context():
        leads = db.session.scalars(select(Record).where(Record.form.has(key="lead"))).all()
        by_owner = {}
        for r in leads:
            if r.data["status"] == "new" and r.owner is not None:
                by_owner.setdefault(r.owner.username, []).append(r.id)
    name = max(sorted(by_owner), key=lambda u: len(by_owner[u]))
    return name, by_owner[name]


def test_my_day_shows_the_salespersons_own_tasks_and_new_leads(app, client, auth):
    from conftest import CARDEALER, load
    load(app, CARDEALER, demo=True)
    username, new = busiest_with_new_leads(app)
    auth.login(username)
    page = client.get("/dashboards/my_day").get_data(as_text=True)
    with app.app_context():
        me = db.session.scalar(select(User.id).where(User.username == username))
        mine = db.session.scalars(select(Task).where(Task.assignee_id == me)).all()
        others = db.session.scalars(select(Task).where(Task.assignee_id != me)).all()
        overdue = [t for t in mine if t.due_at < clock.now()]
    assert 'data-tile="tasks:overdue"' in page and 'data-tile="tasks:today"' in page
    assert mine and all(t.title in page for t in overdue)
    assert not any(t.title in page for t in others if t.title not in {m.title for m in mine})
    assert new and all(f'/r/{rid}"' in page for rid in new[:12])
    auth.logout()
    other = next(f"sales{i}" for i in range(1, 7) if f"sales{i}" != username)
    auth.login(other)
    page = client.get("/dashboards/my_day").get_data(as_text=True)
    assert not any(f'/r/{rid}"' in page for rid in new)


def test_a_platform_feed_token_stamps_its_channel_on_pushed_leads(app, dealer, client):
    """Seed 000: source tags are filled in where the channel is known. The 懂车帝 feed's token
    stamps source_channel, so the feed's leads reach the platform's operator without saying so."""
    runner = app.test_cli_runner()
    made = runner.invoke(args=["token", "create", "admin", "--name", "懂车帝线索接口",
                               "--default", "lead.source_channel=dongchedi"])
    assert made.exit_code == 0, made.output
    feed = {"Authorization": f"Bearer {made.output.strip()}"}
    body = {"customer_name": "平台客户", "phone": "13912340201", "status": "new", "body_type": "suv"}
    r = client.post("/api/v1/forms/lead/records", json={"data": body}, headers=feed)
    assert r.status_code == 201, r.json
    assert r.json["data"]["source_channel"] == "dongchedi" and r.json["owner"]["username"] == "sales3"
    other = runner.invoke(args=["token", "create", "admin", "--default", "lead.source_channel=autohome"])
    again = {"data": {**body, "phone": "13912340203"}}  # two feeds of one user, the same key
    a = client.post("/api/v1/forms/lead/records", json=again, headers={**feed, "Idempotency-Key": "42"})
    b = client.post("/api/v1/forms/lead/records", json=again,
                    headers={"Authorization": f"Bearer {other.output.strip()}", "Idempotency-Key": "42"})
    assert (a.status_code, b.status_code) == (201, 201) and a.json["id"] != b.json["id"]
    assert (a.json["data"]["source_channel"], b.json["data"]["source_channel"]) == ("dongchedi", "autohome")
    said = client.post("/api/v1/forms/lead/records", headers=feed, json={"data": {
        **body, "phone": "13912340202", "source_channel": "showroom"}})
    assert said.json["data"]["source_channel"] == "showroom"  # what the caller sends wins
    for bad, why in (("lead.nope=1", "no field 'nope'"), ("ghost.x=1", "no form 'ghost'"),
                     ("lead", "FORM.FIELD=VALUE"), ("lead.source_channel=dongchedl", "dongchedl"),
                     ("lead.accepts_loan=maybe", "boolean")):
        result = runner.invoke(args=["token", "create", "admin", "--default", bad])
        assert result.exit_code != 0 and why in result.output, result.output


def test_a_capture_link_prefills_the_channel_and_live_session(app, cardealer_full, client, auth):
    auth.login("sales2")
    page = client.get("/f/lead/new?f_source_channel=live_stream&f_live_session=9.28 晚 8 点 SUV 专场直播"
                      ).get_data(as_text=True)
    assert '<option selected value="live_stream">' in page or 'value="live_stream" selected' in page
    assert 'value="9.28 晚 8 点 SUV 专场直播"' in page


def test_kpi_times_are_filled_in_by_rules_and_never_by_people(app, dealer, client, auth):
    """first_followup_at, last_followup_at, woken_at and reactivated_at are readonly in the lead's UI
    document: the rules write them; the API refuses a change naming the field, and the edit page
    shows them without sending them, so saving the page keeps them."""
    s1 = dealer["sales1"]
    rec = lead(s1, phone="13912340301", status="contacted")
    assert s1.post("/api/v1/forms/followup/records", json={"data": {
        "lead": rec["id"], "method": "phone", "content": "电话沟通", "followup_at": "2026-11-02T10:00:00+08:00"}}
    ).status_code == 201
    now = s1.get(f"/api/v1/records/{rec['id']}").json
    assert now["data"]["first_followup_at"] == "2026-11-02T10:00:00+08:00"
    r = s1.patch(f"/api/v1/records/{rec['id']}", headers={"If-Match": str(now["version"])},
                 json={"data": {"first_followup_at": "2026-11-02T09:00:00+08:00", "notes": "改时间"}})
    assert r.status_code == 422 and list(r.json["errors"]) == ["/data/first_followup_at"]
    assert s1.post("/api/v1/forms/lead/records", json={"data": {
        "customer_name": "新客户", "phone": "13912340302", "source_channel": "showroom", "status": "new",
        "reactivated_at": "2026-11-01T09:00:00+08:00"}}).status_code == 422
    auth.login("sales1")
    page = client.get(f"/r/{rec['id']}/edit").get_data(as_text=True)
    [tag] = re.findall(r'<input[^>]*name="f_first_followup_at"[^>]*>', page)
    assert "disabled" in tag and 'value="2026-11-02T10:00"' in tag
    form = {"_version": str(now["version"]), "f_customer_name": "客户", "f_phone": "13912340301",
            "f_source_channel": "showroom", "f_status": "contacted", "f_notes": "网页保存"}
    assert client.post(f"/r/{rec['id']}/edit", data=form).status_code in (302, 303)
    after = s1.get(f"/api/v1/records/{rec['id']}").json["data"]
    assert after["notes"] == "网页保存" and after["first_followup_at"] == "2026-11-02T10:00:00+08:00"
