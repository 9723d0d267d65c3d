"""The cardealer blueprint's processes (seeds 000, 001, 003), driven through the API and the clock."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

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
    mine = lead(dealer["sales1"], phone="13912340006")  # a salesperson's own lead stays theirs
    assert mine["owner"]["username"] == "sales1"


def test_uncontacted_lead_is_escalated_and_reassigned_after_two_hours(app, dealer):
    rec = lead(dealer["admin"], phone="13912340011", source_channel="website", body_type="mpv")
    first = rec["owner"]["username"]
    clock.advance(timedelta(hours=2, minutes=1))
    assert sweep(app) == 1
    after = dealer["admin"].get(f"/api/v1/records/{rec['id']}").json
    assert after["owner"]["username"] != first
    with app.app_context():
        note = db.session.scalars(select(Notification)).one()
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


def test_deal_hands_over_to_after_sales(app, dealer):
    s1 = dealer["sales1"]
    rec = lead(s1, phone="13912340041")
    for step in ({"status": "contacted"}, {"status": "won", "deal_date": "2026-11-02"}):
        v = s1.get(f"/api/v1/records/{rec['id']}").json["version"]
        assert s1.patch(f"/api/v1/records/{rec['id']}", json={"data": step}, headers={"If-Match": str(v)}).status_code == 200
    assert any("转交售后" in t[0] and t[1] == "high" for t in tasks(app, "sales1"))


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
    new = tasks(app)[before:]
    assert len(new) == 1 and "价格敏感CRV" in new[0][0] and new[0][1] == "high"


def test_competitor_complaint_alerts_owners_of_customers_lost_to_that_model(app, dealer):
    s1, s3 = dealer["sales1"], dealer["sales3"]
    defeat(s1, lead(s1, phone="13912340081"), reasons=["competitor"], bought_other_car=True,
           competitor_model="2022款 哈弗H6 1.5T")
    defeat(s3, lead(s3, phone="13912340082"), reasons=["competitor"], bought_other_car=True, competitor_model="长安CS75")
    dealer["admin"].post("/api/v1/forms/market_event/records", json={"data": {
        "title": "哈弗H6 大量投诉", "event_type": "competitor_complaint", "model": "哈弗H6", "event_date": "2026-11-02"}})
    assert any("机会" in t[0] for t in tasks(app, "sales1"))
    assert not any("机会" in t[0] for t in tasks(app, "sales3"))


def test_demo_data_arms_only_future_reminders(app):
    from conftest import CARDEALER, load
    load(app, CARDEALER, demo=True)
    with app.app_context():
        assert db.session.scalars(select(Task)).first() is None  # history replays no reminders
        from formflow.workflow.models import DueEntry
        assert db.session.scalar(select(db.func.min(DueEntry.due_at))) > clock.now() - timedelta(minutes=1)
        assert db.session.scalar(select(db.func.count(Record.id))) > 400


def test_dashboards_ship_and_show_numbers_from_the_demo_data(app, client, auth):
    from conftest import CARDEALER, load
    load(app, CARDEALER, demo=True)
    auth.login("manager")
    page = client.get("/reports").get_data(as_text=True)
    assert "销售经理看板" in page and "渠道营销看板" in page
    assert 'data-report="channel_overview"' in client.get("/dashboards/manager").get_data(as_text=True)
    data = client.get("/reports/lead_funnel/data.json").json
    stages = data["rows"][0]
    assert stages[0] >= stages[1] >= stages[2] >= stages[3] > 0  # a funnel narrows
    cycle = {row[0]: row[1] for row in client.get("/reports/cycle_by_quality/data.json").json["rows"]}
    assert cycle["a"] < cycle["b"]  # A-class leads close faster (seed 000: 7 vs 15 days)
    auth.logout()
    auth.login("sales1")
    assert client.get("/dashboards/manager").status_code == 404
    mine = client.get("/reports/my_leads_by_status/data.json").json
    with app.app_context():
        own = db.session.scalar(select(db.func.count(Record.id)).where(
            Record.owner_id == select(User.id).where(User.username == "sales1").scalar_subquery(),
            Record.form_id == select(Record.form_id).where(Record.data["status"].as_string().is_not(None)).limit(1)
            .scalar_subquery(), Record.deleted_at.is_(None)))
    assert sum(row[1] for row in mine["rows"]) == own
