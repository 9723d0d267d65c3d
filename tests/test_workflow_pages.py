"""Workflow in the browser's pages (Flask client): rule editor, checks, tasks, inbox, buttons."""
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from formflow import clock
from formflow.extensions import db
from formflow.forms.models import Record
from formflow.workflow import jobs, rules
from formflow.workflow.models import Notification, Task

LEAD_FORM = {"f_customer_name": "王小明", "f_phone": "13812345678", "f_source_channel": "showroom", "f_status": "new"}


def rule_form(**over):
    data = {"key": "new_lead_task", "title_zh": "新线索首次跟进", "title_en": "First follow-up", "form": "lead",
            "priority": "10", "enabled": "on", "trigger": json.dumps({"type": "created"}),
            "condition": 'status == "new"',
            "actions": json.dumps([{"type": "task", "to": ["owner"], "title": "24 小时内制定跟进计划：{customer_name}",
                                    "due": {"hours": 24}}])}
    data.update(over)
    return data


def test_admin_writes_a_rule_in_the_browser_and_it_runs(app, client, auth, cardealer):
    auth.login("admin")
    assert client.get("/admin/rules/new").status_code == 200
    body = client.post("/admin/rules/new", data=rule_form(condition='status = "new"')).get_data(as_text=True)
    assert "/condition" in body and "==" in body
    r = client.post("/admin/rules/new", data=rule_form())
    assert r.status_code == 302
    auth.logout()
    auth.login("sales1")
    client.post("/f/lead/new", data=LEAD_FORM)
    tasks = client.get("/tasks").get_data(as_text=True)
    assert "24 小时内制定跟进计划：王小明" in tasks
    with app.app_context():
        rid = db.session.scalars(select(Record)).one().id
    assert "24 小时内制定跟进计划" in client.get(f"/r/{rid}").get_data(as_text=True)


def test_live_check_dry_run_enable_and_rollback(app, client, auth, cardealer):
    auth.login("admin")
    client.post("/admin/rules/new", data=rule_form())
    ok = client.post("/admin/expressions/check", json={"form": "lead", "expression": 'quality == "a"'}).json
    bad = client.post("/admin/expressions/check", json={"form": "lead", "expression": 'qualty == "a"'}).json
    assert ok["ok"] is True and bad["ok"] is False and bad["errors"][0]["col"] == 1
    client.post("/f/lead/new", data=LEAD_FORM)
    with app.app_context():
        rid = db.session.scalars(select(Record)).one().id
        tasks_before = db.session.scalar(select(db.func.count(Task.id)))
    dry = client.post("/admin/rules/new_lead_task/dry-run", json={"record": rid}).json
    assert dry["matched"] is True and dry["actions"][0]["type"] == "task"
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Task.id))) == tasks_before
    client.post("/admin/rules/new_lead_task", data=rule_form(condition='status == "contacted"'))
    client.post("/admin/rules/new_lead_task/enable", data={"enabled": "0"})
    with app.app_context():
        rule = rules.get("new_lead_task")
        assert rule.revision == 3 and rule.enabled is False
    client.post("/admin/rules/new_lead_task/rollback/1")
    with app.app_context():
        rule = rules.get("new_lead_task")
        assert rule.body["condition"] == 'status == "new"' and rule.enabled is True and rule.revision == 4
    response = client.get("/admin/rules/new_lead_task")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[page.find("<main"):][:500]
    assert "r4" in page and "r1" in page
    assert "new_lead_task" in client.get(f"/admin/runs?record={rid}").get_data(as_text=True)


def test_rule_pages_are_for_admins(client, auth, cardealer):
    auth.login("manager")
    assert client.get("/admin/rules").status_code == 403
    assert client.post("/admin/expressions/check", json={}).status_code == 403


def test_manual_button_and_inbox(app, client, auth, cardealer):
    with app.app_context():
        rules.save({"key": "ask_manager", "form": "lead", "title": {"zh-CN": "请经理协助"},
                    "trigger": {"type": "manual", "label": {"zh-CN": "请经理协助"}},
                    "actions": [{"type": "notify", "to": ["manager"], "title": "{owner} 请求协助：{customer_name}"}]})
        db.session.commit()
    auth.login("sales1")
    client.post("/f/lead/new", data=LEAD_FORM)
    with app.app_context():
        rid = db.session.scalars(select(Record)).one().id
    page = client.get(f"/r/{rid}").get_data(as_text=True)
    assert "请经理协助" in page
    assert client.post(f"/r/{rid}/rules/ask_manager", follow_redirects=True).status_code == 200
    auth.logout()
    auth.login("manager")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "王磊 请求协助：王小明" in inbox
    assert 'id="unread-count">1<' in client.get("/tasks").get_data(as_text=True)
    client.post("/inbox/read")
    with app.app_context():
        assert db.session.scalars(select(Notification)).one().read_at is not None
    auth.logout()
    auth.login("sales2")
    assert client.post(f"/r/{rid}/rules/ask_manager").status_code == 404


def test_defeat_requires_the_capture_form_with_a_prefilled_link(app, client, auth, cardealer):
    from test_workflow import flowed
    with app.app_context():
        flowed(app)
    auth.login("sales1")
    client.post("/f/lead/new", data=LEAD_FORM)
    with app.app_context():
        rid = db.session.scalars(select(Record)).one().id
    body = client.post(f"/r/{rid}/edit", data={**LEAD_FORM, "f_status": "defeated", "_version": "1"}).get_data(as_text=True)
    assert 'id="required-form"' in body and "战败客户信息采集表" in body
    link = body.split('id="required-form"')[1].split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert f"f_lead={rid}" in link and "f_phone=13812345678" in link
    form = client.get(link).get_data(as_text=True)
    assert 'value="13812345678"' in form and f'<option selected value="{rid}">' in form


def test_overdue_and_today_tasks(app, client, auth, cardealer):
    clock.freeze(datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    try:
        with app.app_context():
            rules.save({"key": "t", "form": "lead", "trigger": {"type": "created"}, "actions": [
                {"type": "task", "to": ["owner"], "title": "今天", "due": {"hours": 3}},
                {"type": "task", "to": ["owner"], "title": "明天", "due": {"days": 1}}]})
            db.session.commit()
        auth.login("sales1")
        client.post("/f/lead/new", data=LEAD_FORM)
        from datetime import timedelta
        clock.advance(timedelta(hours=4))
        page = client.get("/tasks").get_data(as_text=True)
        overdue = page.split('id="overdue"')[1].split('id="today"')[0]
        later = page.split('id="later"')[1]
        assert "今天" in overdue and "明天" in later
    finally:
        clock.reset()


@pytest.fixture
def evening_utc():
    """17:00 UTC is already tomorrow in Shanghai: "today" must be the business day, not UTC's."""
    clock.freeze(datetime(2026, 11, 2, 17, 0, tzinfo=timezone.utc))
    yield
    clock.reset()


def test_simulate_from_the_editor(app, client, auth, cardealer, evening_utc):
    auth.login("admin")
    client.post("/admin/rules/new", data=rule_form())
    client.post("/f/lead/new", data=LEAD_FORM)
    today = clock.now().astimezone(clock.zone()).date().isoformat()
    r = client.post("/admin/rules/new_lead_task/simulate", json={"from": "2020-01-01", "to": today})
    assert r.status_code == 202  # queued: the admin's request does not replay anything itself
    assert client.get(r.json["status_url"]).json["status"] == "pending"
    with app.app_context():
        jobs.run_pending()
    res = client.get(r.json["status_url"]).json
    assert res["status"] == "done" and res["done"] == res["total"] == 1
    assert res["result"]["records"] == 1 and res["result"]["actions"] == {"task": 1}
    assert client.post("/admin/rules/new_lead_task/simulate", json={"from": "x", "to": today}).status_code == 422
