"""A salesperson on a phone, in a real headless Chromium: the foundation's acceptance story."""
import re

from conftest import ARTIFACTS, PASSWORD


def login(page, live, username):
    page.goto(f"{live.url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live.url}/")


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_salesperson_captures_a_lead_on_a_phone(live, phone, cardealer):
    page = phone.new_page()
    login(page, live, "sales1")
    page.goto(f"{live.url}/f/lead/new")
    # nothing wider than the screen: usable at 375 px
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.get_by_label("客户姓名").fill("周杰")
    page.get_by_label("手机号").fill("1381234")
    page.get_by_label("来源渠道").select_option(label="展厅接待")

    # a conditional field appears and disappears as the user answers, without a reload
    appointment = page.locator('[data-field="appointment_at"]')
    assert appointment.is_hidden()
    status = page.get_by_label("跟进状态")
    status.select_option(label="已邀约")
    appointment.wait_for(state="visible")
    status.select_option(label="新线索（未联系）")
    appointment.wait_for(state="hidden")

    page.get_by_role("button", name="保存").click()
    error = page.locator('[data-error-for="phone"]')
    error.wait_for()
    assert "请输入有效的中国大陆手机号码" in error.inner_text()
    assert page.get_by_label("客户姓名").input_value() == "周杰"  # nothing typed is lost
    shot(page, "lead-phone-error")

    page.get_by_label("手机号").fill("13812345678")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/r/\d+$"))
    record_url = page.url
    assert "周杰" in page.locator("h1").inner_text()

    page.goto(f"{live.url}/f/lead")
    page.get_by_placeholder("搜索姓名或手机号").fill("13812345678")
    page.get_by_role("button", name="应用").click()
    page.wait_for_url("**/f/lead?q=13812345678*")
    page.locator(".records").get_by_text("周杰").wait_for()
    shot(page, "lead-list")

    other = phone.browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page2 = other.new_page()
    login(page2, live, "sales2")
    response = page2.goto(record_url)
    assert response.status == 404
    assert "周杰" not in page2.content()
    other.close()

    admin = phone.browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    page3 = admin.new_page()
    login(page3, live, "admin")
    page3.goto(f"{live.url}/f/lead")
    page3.locator(".records").get_by_text("周杰").wait_for()
    admin.close()


def test_admin_writes_assignment_and_sla_rules_in_the_browser(app, live, browser, cardealer):
    """The workflow issue's story, without a line of Python: two rules typed into the editor."""
    import json
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import select

    from formflow import clock
    from formflow.extensions import db
    from formflow.forms.models import Record
    from formflow.people.models import User
    from formflow.workflow import queue, tasks
    from conftest import token_for

    clock.freeze(datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc))
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    ctx.set_default_timeout(15000)
    try:
        page = ctx.new_page()
        login(page, live, "admin")

        def write_rule(key, title, trigger_type, trigger, condition, actions):
            page.goto(f"{live.url}/admin/rules/new")
            page.get_by_label("键").fill(key)
            page.get_by_label("标题 (中文)").fill(title)
            page.get_by_label("表单", exact=True).select_option("lead")
            page.locator("#trigger-type").select_option(trigger_type)
            page.locator("#trigger").fill(json.dumps(trigger))
            page.locator("#condition").fill(condition)
            page.locator("#condition-check.text-success").wait_for()  # the live check agrees
            page.locator("#actions").fill(json.dumps(actions, ensure_ascii=False))
            page.get_by_label("已启用").check()
            page.get_by_role("button", name="保存").click()
            page.wait_for_url(f"{live.url}/admin/rules/{key}")

        # a typo is caught live, with its column, before saving
        page.goto(f"{live.url}/admin/rules/new")
        page.locator("#condition").fill('source_chanel == "douyin_dm"')
        page.locator("#condition-check.text-danger").wait_for()
        assert "source_chanel" in page.locator("#condition-check").inner_text()

        write_rule("douyin_suv", "抖音 8-12 万线索给 SUV 顾问", "created", {"type": "created"},
                   'source_channel == "douyin_dm" and budget == "budget_8_12"',
                   [{"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
                     "strategies": [{"strategy": "skill", "skills": ["SUV"], "team": "store1_sales", "cap": 15}]}])
        write_rule("sla_2h", "2 小时未联系：通知经理并改派", "time",
                   {"type": "time", "from": "created_at", "offset": {"hours": 2}}, 'status == "new"',
                   [{"type": "notify", "to": ["manager"], "title": "线索 {customer_name} 2 小时无人联系，已改派"},
                    {"type": "assign", "exclude_current": True, "open": {"field": "status", "not_in": ["won", "defeated"]},
                     "strategies": [{"strategy": "skill", "skills": ["SUV"], "team": "store1_sales", "cap": 15},
                                    {"strategy": "least_loaded", "team": "store1_sales", "cap": 15}]}])
        page.screenshot(path=str(ARTIFACTS / "rule-editor.png"), full_page=True)

        # an integrator pushes a lead over the API
        token = token_for(app, "admin")
        import urllib.request
        req = urllib.request.Request(f"{live.url}/api/v1/forms/lead/records", method="POST", data=json.dumps({"data": {
            "customer_name": "抖音客户", "phone": "13612345678", "source_channel": "douyin_dm",
            "budget": "budget_8_12", "status": "new"}}).encode(), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        created = json.loads(urllib.request.urlopen(req, timeout=30).read())
        with app.app_context():
            first = db.session.scalars(select(User).where(User.username == created["owner"]["username"])).one()
            assert "SUV" in first.skills

        # two hours pass; the queue's periodic tick fires the SLA rule
        clock.advance(timedelta(hours=2, minutes=1))
        app.extensions["formflow.queue"].start_consumer(workers=1)
        with app.app_context():
            result = queue.enqueue(tasks.tick_now)
        result.get(blocking=True, timeout=30)  # (the periodic tick may have fired it first: either is fine)
        with app.app_context():
            rec = db.session.get(Record, created["id"])
            assert rec.owner_id != first.id and "SUV" in rec.owner.skills

        manager = ctx.browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
        mpage = manager.new_page()
        login(mpage, live, "manager")
        mpage.goto(f"{live.url}/inbox")
        mpage.get_by_text("线索 抖音客户 2 小时无人联系，已改派").wait_for()
        mpage.goto(f"{live.url}/r/{created['id']}")
        mpage.get_by_text("sla_2h").first.wait_for()  # why it was reassigned
        manager.close()
    finally:
        ctx.close()
        clock.reset()


def test_manager_builds_a_channel_report_by_dragging_and_drills_into_a_bar(app, live, desk, cardealer):
    from sqlalchemy import select

    from formflow.extensions import db
    from formflow.forms import catalog, records
    from formflow.people.models import User
    from formflow.reports import compiler

    with app.app_context():
        sales1 = db.session.scalars(select(User).where(User.username == "sales1")).one()
        for i, (ch, q) in enumerate([("douyin_dm", "a"), ("douyin_dm", "b"), ("douyin_dm", "a"),
                                     ("autohome", "c"), ("showroom", "a")]):
            records.create(catalog.get_form("lead"), {"customer_name": f"客户{i}", "phone": f"1361234{i:04d}",
                                                      "source_channel": ch, "status": "new", "quality": q},
                           sales1, owner=sales1)
        db.session.commit()
    page = desk.new_page()
    login(page, live, "manager")
    page.goto(f"{live.url}/reports/builder")
    page.locator("#source").select_option("lead")
    chip = lambda label: page.locator("#palette li", has_text=label).first  # noqa: E731
    chip("来源渠道").drag_to(page.locator("#zone-rows"))
    chip("记录数").drag_to(page.locator("#zone-measures"))
    chip("线索质量").drag_to(page.locator("#zone-measures"))
    page.locator("#zone-measures label", has_text="显示为占比").locator("input").check()
    # the keyboard alternative: the chip's own button
    chip("转化率").get_by_role("button").first.press("Enter")
    page.locator("#charttype").select_option("bar")
    page.locator("#rkey").fill("channel_quality")
    page.locator("#rtitle").fill("渠道线索质量")
    page.locator("#preview-table tr").nth(3).wait_for()
    page.screenshot(path=str(ARTIFACTS / "report-builder.png"), full_page=True)
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{live.url}/reports/channel_quality")
    page.locator("#chart .bars path").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "report-view.png"), full_page=True)
    with app.test_request_context():
        from formflow.reports import store
        report = store.get("channel_quality")
        manager = db.session.scalars(select(User).where(User.username == "manager")).one()
        result = compiler.run(report.body, manager)
    rows = {r[0]: r for r in result.rows}
    assert rows["douyin_dm"][1] == 3
    share = [c.key for c in result.columns].index([c.key for c in result.columns if c.key.endswith("_share")][0])
    assert abs(rows["douyin_dm"][share] - 2 / 3) < 1e-9
    table = page.locator("#report-table").inner_text()
    assert "抖音私信" in table and "66.67%" in table
    # put it on a dashboard and drill into a bar from there
    page.goto(f"{live.url}/dashboards/new")
    page.get_by_label("键").fill("manager_home")
    page.get_by_label("标题").fill("经理看板")
    page.get_by_label("渠道线索质量").check()
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{live.url}/dashboards/manager_home")
    page.locator(".tile-chart .bars path").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    box = page.locator(".tile-chart .bars path").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly reads hover, then click
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # drill into the first bar
    page.wait_for_url("**/drill?**")
    count = page.locator(".list-group-item-action").count()
    first = result.rows[0]
    assert count == first[1]


def test_salesperson_opens_my_day_on_a_phone_after_a_fresh_start(app, live, phone):
    """Demo loaded as on first start: the salesperson's phone shows today's work and ticks one off."""
    from conftest import CARDEALER, load
    from test_cardealer import busiest_with_new_leads
    load(app, CARDEALER, demo=True)
    username, _new = busiest_with_new_leads(app)
    page = phone.new_page()
    login(page, live, username)
    page.locator("#home-dashboards").get_by_role("link", name="我的一天").click()  # from the start page
    page.wait_for_url(f"{live.url}/dashboards/my_day")
    overdue = page.locator('[data-tile="tasks:overdue"] .list-group-item')
    new_leads = page.locator('[data-tile="my_new_leads:records"] a.list-group-item')
    tasks = page.locator('[data-tile^="tasks:"] form')  # a done button per real task, none for "暂无"
    assert tasks.count() >= 1 and overdue.locator("form").count() >= 1
    assert new_leads.count() >= 1
    page.locator('[data-tile="my_new_leads:records"]').scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('.tile-chart .main-svg').length >= 1")
    shot(page, "my-day-phone")
    wide = page.evaluate("""Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 376)
        .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width}px): {wide}"
    tile = page.locator('[data-tile="tasks:overdue"]')
    before = tile.locator("form").count()
    assert before >= 1
    title = tile.locator("strong").first.inner_text()
    tile.locator("form button").first.click()
    page.wait_for_url(re.compile(r".*/dashboards/my_day.*"))
    assert page.locator('[data-tile="tasks:overdue"] form').count() == before - 1
    assert title not in page.locator('[data-tile="tasks:overdue"]').inner_text()


def test_saving_a_report_from_the_builder_keeps_what_the_page_does_not_edit(app, live, desk, cardealer_full):
    """The TOP 3 per month, its sort and English title survive a save from the drag-and-drop page."""
    from formflow.extensions import db
    from formflow.reports import store
    with app.app_context():
        before = store.get("defeat_reasons_by_month").body
    page = desk.new_page()
    login(page, live, "manager")
    page.goto(f"{live.url}/reports/builder?key=defeat_reasons_by_month")
    page.locator("#rtitle").fill("每月战败原因前三")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(f"{live.url}/reports/defeat_reasons_by_month")
    with app.app_context():
        db.session.expire_all()
        after = store.get("defeat_reasons_by_month").body
    assert after["top"] == before["top"] == {"n": 3}
    assert after["title"] == {**before["title"], "zh-CN": "每月战败原因前三"}
    assert after["dimensions"] == before["dimensions"] and after["measures"] == before["measures"]


def test_admin_changes_a_reminders_delay_then_previews_and_confirms_a_catch_up(app, live, desk, cardealer):
    """Issue 9.1 in the browser: a timing edit fires nothing from the past; catching up is a preview
    in plain words, then a confirmation, both worked by the real queue."""
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import func, select

    from formflow import clock
    from formflow.extensions import db
    from formflow.forms import catalog, records
    from formflow.people.models import User
    from formflow.workflow import rules, timers
    from formflow.workflow.models import Notification

    t0 = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)
    body = {"key": "remind", "title": {"zh-CN": "十小时提醒"}, "form": "lead",
            "trigger": {"type": "time", "from": "created_at", "offset": {"hours": 10}},
            "actions": [{"type": "notify", "to": ["owner"], "title": "跟进 {customer_name}", "channels": ["inbox"]}]}
    try:
        with app.app_context():
            clock.freeze(t0 - timedelta(days=2))
            rules.save(body)
            db.session.commit()
            clock.freeze(t0 - timedelta(hours=3))
            s1 = db.session.scalars(select(User).where(User.username == "sales1")).one()
            records.create(catalog.get_form("lead"), {"customer_name": "周先生", "phone": "13812340001",
                                                      "source_channel": "showroom", "status": "new"}, s1, owner=s1)
            db.session.commit()
            clock.freeze(t0)
        app.extensions["formflow.queue"].start_consumer(workers=1)
        page = desk.new_page()
        login(page, live, "admin")
        page.goto(f"{live.url}/admin/rules/remind")
        page.locator("#trigger").fill('{"type": "time", "from": "created_at", "offset": {"hours": 1}}')
        page.get_by_role("button", name="保存").click()
        page.wait_for_url(f"{live.url}/admin/rules/remind")
        with app.app_context():
            assert timers.sweep() == 0  # the new one-hour mark (2 hours ago) is before the edit: nothing fires
        page.locator("#catch-since").fill("2026-11-01")
        page.get_by_role("button", name="预览").click()
        page.get_by_text("将在下一分钟补发 1 条错过的提醒").wait_for(timeout=20000)
        preview = page.locator("#catch-result").inner_text()
        assert "记录 #1" in preview and "12:00" in preview  # due 04:00 UTC, shown in Shanghai time
        shot(page, "rule-catch-up-preview")
        page.get_by_role("button", name="确认补发").click()
        page.get_by_text("1 条错过的提醒将在一分钟内发出").wait_for(timeout=20000)
        with app.app_context():
            assert timers.sweep() == 1
            assert db.session.scalar(select(func.count(Notification.id))) == 1
        page.reload()
        assert "已安排" in page.locator("table").inner_text()  # the run log, in words
        shot(page, "rule-catch-up-done")
    finally:
        clock.reset()
