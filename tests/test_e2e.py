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
    assert page.locator(".records").get_by_text("周杰").is_visible()
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
    assert page3.locator(".records").get_by_text("周杰").is_visible()
    admin.close()
