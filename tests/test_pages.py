"""Server-rendered pages through Flask's client: sign-in, capture, list, edit, history, access."""
import re

from sqlalchemy import select

from formflow.extensions import db
from formflow.forms.models import Record
from conftest import PASSWORD

LEAD_FORM = {"f_customer_name": "王小明", "f_phone": "13812345678", "f_source_channel": "showroom",
             "f_status": "new"}


def new_lead(client, **extra):
    return client.post("/f/lead/new", data={**LEAD_FORM, **extra})


class Snapshot:
    def __init__(self, r):
        self.id, self.data, self.owner = r.id, dict(r.data), r.owner.username if r.owner else None


def only_record(app):
    with app.app_context():
        return Snapshot(db.session.scalars(select(Record)).one())


def test_pages_need_a_login(client, cardealer):
    r = client.get("/f/lead")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


def test_login_wrong_password_and_throttling(client, auth, cardealer):
    assert auth.login("sales1", "wrong").status_code == 401
    for _ in range(4):
        auth.login("sales1", "wrong")
    r = auth.login("sales1", PASSWORD)  # right password, but throttled now
    assert r.status_code == 429
    assert "15" in r.get_data(as_text=True)
    assert auth.login("sales2", PASSWORD).status_code == 302  # other accounts are not locked


def test_passwords_are_hashed(app, cardealer):
    from formflow.people.models import User
    with app.app_context():
        u = db.session.scalars(select(User).where(User.username == "sales1")).one()
        assert PASSWORD not in u.password_hash and u.password_hash.startswith(("scrypt:", "pbkdf2:"))


def test_capture_a_lead_and_see_it_in_the_list(app, client, auth, cardealer):
    auth.login("sales1")
    page = client.get("/f/lead/new").get_data(as_text=True)
    assert 'type="tel"' in page and "客户姓名" in page
    r = new_lead(client)
    assert r.status_code == 302
    rec = only_record(app)
    assert rec.data["phone"] == "13812345678" and rec.owner == "sales1"
    listing = client.get("/f/lead").get_data(as_text=True)
    assert "王小明" in listing
    view = client.get(f"/r/{rec.id}").get_data(as_text=True)
    assert "展厅" in view and "已创建" in view  # option label and history timeline


def test_bad_phone_gets_a_chinese_message_and_nothing_is_saved(app, client, auth, cardealer):
    auth.login("sales1")
    r = new_lead(client, f_phone="1381234")
    body = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "请输入有效的中国大陆手机号码（11位）" in body
    assert 'value="王小明"' in body  # what was typed is kept
    with app.app_context():
        assert db.session.scalars(select(Record)).first() is None


def test_english_when_the_user_chooses_it(client, auth, cardealer):
    auth.login("sales1")
    client.post("/language/en", data={"next": "/f/lead/new"})
    body = new_lead(client, f_phone="1381234").get_data(as_text=True)
    assert "Enter a valid mainland China mobile number (11 digits)" in body
    client.post("/language/zh_CN")
    assert "请输入有效的中国大陆手机号码" in new_lead(client, f_phone="1381234").get_data(as_text=True)


def test_conditional_field_required_only_when_shown(app, client, auth, cardealer):
    auth.login("sales1")
    body = new_lead(client, f_status="invited").get_data(as_text=True)
    assert re.search(r'data-error-for="appointment_at">此项为必填项', body)
    r = new_lead(client, f_status="invited", f_appointment_at="2026-12-01T10:30")
    assert r.status_code == 302
    assert only_record(app).data["appointment_at"] == "2026-12-01T10:30:00+08:00"


def test_other_salesperson_gets_404_and_manager_and_admin_see_it(app, client, auth, cardealer):
    auth.login("sales1")
    new_lead(client)
    rid = only_record(app).id
    auth.logout()
    auth.login("sales2")
    assert client.get(f"/r/{rid}").status_code == 404
    assert client.get(f"/r/{rid}/edit").status_code == 404
    assert client.post(f"/r/{rid}/delete").status_code == 404
    body = client.get("/f/lead?q=王小明").get_data(as_text=True)
    assert f'href="/r/{rid}"' not in body and "共0条记录" in body
    auth.logout()
    auth.login("manager")
    assert client.get(f"/r/{rid}").status_code == 200
    auth.logout()
    auth.login("admin")
    assert "王小明" in client.get("/f/lead").get_data(as_text=True)


def test_edit_with_stale_version_shows_both_values(app, client, auth, cardealer):
    auth.login("sales1")
    new_lead(client)
    rid = only_record(app).id
    assert client.post(f"/r/{rid}/edit", data={**LEAD_FORM, "f_quality": "a", "_version": "1"}).status_code == 302
    r = client.post(f"/r/{rid}/edit", data={**LEAD_FORM, "f_quality": "c", "_version": "1"})
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="conflict"' in body
    assert 'name="_version" value="2"' in body
    with app.app_context():
        assert db.session.get(Record, rid).data["quality"] == "a"


def test_delete_and_restore_from_pages(app, client, auth, cardealer):
    auth.login("sales1")
    new_lead(client)
    rid = only_record(app).id
    client.post(f"/r/{rid}/delete")
    assert "王小明" not in client.get("/f/lead").get_data(as_text=True)
    assert "王小明" in client.get("/f/lead?deleted=1").get_data(as_text=True)
    client.post(f"/r/{rid}/restore")
    assert "王小明" in client.get("/f/lead").get_data(as_text=True)


def test_duplicate_warning_names_the_owner(app, client, auth, cardealer):
    auth.login("sales1")
    new_lead(client)
    auth.logout()
    auth.login("sales2")
    r = client.post("/f/lead/new", data={**LEAD_FORM, "f_customer_name": "王先生"}, follow_redirects=True)
    body = r.get_data(as_text=True)
    assert "王磊" in body and "#1" in body


def test_list_filter_sort_and_pages(app, client, auth, cardealer):
    auth.login("sales1")
    for i in range(23):
        new_lead(client, f_customer_name=f"客户{i:02d}", f_phone=f"1391234{i:04d}",
                 f_quality="a" if i % 2 else "b")
    body = client.get("/f/lead?quality=a").get_data(as_text=True)
    assert "共11条记录" in body
    body = client.get("/f/lead?sort=customer_name&page=2").get_data(as_text=True)
    assert "客户20" in body and "客户00" not in body
    assert "客户07" in client.get("/f/lead?q=0007").get_data(as_text=True)


def test_csrf_is_required_on_forms(csrf_app, cardealer):
    client = csrf_app.test_client()
    r = client.post("/login", data={"username": "sales1", "password": PASSWORD})
    assert r.status_code == 400
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "sales1", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    assert client.post("/f/lead/new", data=LEAD_FORM).status_code == 400
    with csrf_app.app_context():
        assert db.session.scalars(select(Record)).first() is None


def test_admin_pages_are_for_admins(client, auth, cardealer):
    auth.login("sales1")
    assert client.get("/admin/forms").status_code == 403
    auth.logout()
    auth.login("admin")
    assert "lead" in client.get("/admin/forms").get_data(as_text=True)
    assert "sales1" in client.get("/admin/users").get_data(as_text=True)


def test_admin_edits_a_draft_with_pointer_errors_then_publishes(app, client, auth, cardealer):
    import json
    auth.login("admin")
    page = client.get("/admin/forms/market_event/draft").get_data(as_text=True)
    assert "schema" in page
    from formflow.forms import catalog
    with app.app_context():
        form = catalog.get_form("market_event")
        v = catalog.current_version(form)
        schema, ui, settings, title = v.schema, v.ui, v.settings, form.title
    bad_ui = json.loads(json.dumps(ui))
    bad_ui["sections"][0]["fields"].append("ghost")
    data = {"title": json.dumps(title), "settings": json.dumps(settings), "schema": json.dumps(schema),
            "ui": json.dumps(bad_ui), "action": "publish"}
    body = client.post("/admin/forms/market_event/draft", data=data).get_data(as_text=True)
    assert "/ui/sections/0/fields/" in body
    with app.app_context():
        assert len(catalog.get_form("market_event").versions) == 1
    schema["properties"]["description"]["maxLength"] = 999
    data.update(schema=json.dumps(schema), ui=json.dumps(ui))
    assert client.post("/admin/forms/market_event/draft", data=data).status_code == 302
    with app.app_context():
        cur = catalog.current_version(catalog.get_form("market_event"))
        assert cur.number == 2 and cur.schema["properties"]["description"]["maxLength"] == 999


def test_errors_are_pages_not_stack_traces(client, auth, cardealer):
    auth.login("sales1")
    r = client.get("/r/999999")
    assert r.status_code == 404 and "Traceback" not in r.get_data(as_text=True)
    assert "未找到" in r.get_data(as_text=True) or "找不到" in r.get_data(as_text=True)


def test_admin_creates_a_user_and_edits_skills(app, client, auth, cardealer):
    from formflow.people.models import User
    auth.login("admin")
    r = client.post("/admin/users/new", data={"username": "sales9", "display_name": "钱七", "role": "sales",
                                              "team": "", "skills": "SUV，按揭", "locale": "zh-CN",
                                              "active": "y", "password": "long-enough-1"})
    assert r.status_code == 302
    with app.app_context():
        u = db.session.scalars(select(User).where(User.username == "sales9")).one()
        assert u.skills == ["SUV", "按揭"] and u.check_password("long-enough-1")
        uid = u.id
    r = client.post(f"/admin/users/{uid}", data={"display_name": "钱七", "role": "sales", "team": "",
                                                  "skills": "MPV", "locale": "en"})
    assert r.status_code == 302
    with app.app_context():
        u = db.session.get(User, uid)
        assert u.skills == ["MPV"] and u.active is False and u.check_password("long-enough-1")
    body = client.post("/admin/users/new", data={"username": "sales9", "display_name": "x", "role": "sales",
                                                  "locale": "zh-CN", "password": "long-enough-1"}).get_data(as_text=True)
    assert "用户名已被占用" in body or "This username is taken" in body
    auth.logout()
    assert auth.login("sales9", "long-enough-1").status_code == 401  # deactivated above
