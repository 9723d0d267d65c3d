"""Bad input is a clear 4xx naming the parameter, in the user's language, and changes nothing
(issue 9.12), on SQLite and PostgreSQL: JSON nested deeper than anyone needs, numbers that are
not numbers or overflow a column, dates that are not dates, NUL characters (PostgreSQL refuses
them in text and jsonb). A loop over the URL map sends bad parameters to every API and page
route; report pages and report data have their own tests."""

import pytest
from sqlalchemy import func, select

from formflow.extensions import db
from formflow.forms.models import Record, RecordChange
from formflow.workflow.models import Rule, RuleRevision, RuleRun

LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}
RULE = {"key": "touch", "form": "lead", "trigger": {"type": "manual"},
        "actions": [{"type": "set", "values": {"notes": '"touched"'}}]}
DEEP = "[" * 100_000 + "]" * 100_000  # far past Python's recursion limit
HUGE = "99999999999999999999"  # past 64 bits: OverflowError on SQLite, out of range on PostgreSQL
EN = {"Accept-Language": "en"}
NESTED_ZH = "JSON 的嵌套超过 64 层。"
NESTED_EN = "The JSON is nested more than 64 levels deep."


@pytest.fixture
def world(app, api, cardealer):
    """An admin's API client, one lead and one manual rule."""
    admin = api("admin")
    r = admin.post("/api/v1/forms/lead/records", json={"data": LEAD})
    assert r.status_code == 201, r.json
    assert admin.post("/api/v1/rules", json=RULE).status_code == 201
    return {"api": admin, "record": r.json["id"]}


def snapshot(app):
    """What bad input must leave alone: records, their history, rules, revisions and runs."""
    with app.app_context():
        return {m.__name__: db.session.scalar(select(func.count()).select_from(m))
                for m in (Record, RecordChange, Rule, RuleRevision, RuleRun)} | {
            "data": [r.data for r in db.session.scalars(select(Record).order_by(Record.id))],
            "rules": [r.body for r in db.session.scalars(select(Rule).order_by(Rule.id))]}


def nested(depth):
    return "[" * depth + "]" * depth


def json_routes(rid):
    """Every API route that reads a JSON body: (method, url, headers)."""
    return [("post", "/api/v1/forms/lead/records", {}), ("patch", f"/api/v1/records/{rid}", {"If-Match": '"1"'}),
            ("post", "/api/v1/rules", {}), ("put", "/api/v1/rules/touch", {}),
            ("post", "/api/v1/rules/touch/dry-run", {}), ("post", "/api/v1/rules/touch/simulate", {}),
            ("post", "/api/v1/expressions/check", {}), ("post", "/api/v1/reports/preview", {})]


def test_deeply_nested_json_is_a_400_on_every_json_route(app, world):
    a, before = world["api"], snapshot(app)
    bodies = [DEEP, '{"data": {"notes": ' + DEEP + "}}", '{"data": ' + nested(500) + "}"]
    for method, url, headers in json_routes(world["record"]):
        for body in bodies:
            r = getattr(a, method)(url, data=body, content_type="application/json", headers=headers)
            assert r.status_code == 400, (method, url, r.status_code, r.get_data(as_text=True)[:300])
            assert r.json["error"]["message"] == NESTED_ZH
        r = getattr(a, method)(url, data=DEEP, content_type="application/json", headers={**headers, **EN})
        assert r.status_code == 400 and r.json["error"]["message"] == NESTED_EN
    assert snapshot(app) == before


def test_the_depth_limit_is_64_levels(world):
    a = world["api"]

    def post(depth):  # the body object and "data" are two levels; notes holds the rest
        body = '{"data": {"notes": ' + nested(depth - 2) + "}}"
        return a.post("/api/v1/forms/lead/records", data=body, content_type="application/json")

    r = post(64)
    assert r.status_code == 422 and "/data/notes" in r.json["errors"]  # deep enough to parse, still not text
    r = post(65)
    assert r.status_code == 400 and r.json["error"]["message"] == NESTED_ZH


def test_deep_json_on_the_rule_editor_pages(app, world, auth):
    before = snapshot(app)
    assert auth.login("admin").status_code == 302
    client = auth.client
    for url in ("/admin/expressions/check", "/admin/rules/touch/dry-run", "/admin/rules/touch/simulate"):
        r = client.post(url, data=DEEP, content_type="application/json")
        assert r.status_code == 400, (url, r.status_code)
        assert r.json["error"] == NESTED_ZH
    for field in ("trigger", "actions"):  # the rule editor's JSON text areas
        r = client.post("/admin/rules/touch", data={"key": "touch", "form": "lead", "trigger": '{"type": "manual"}',
                                                    "actions": "[]", field: DEEP})
        assert r.status_code == 422 and NESTED_ZH in r.get_data(as_text=True)
    r = client.post("/admin/forms/lead/draft", data={"title": "{}", "settings": "{}", "schema": DEEP, "ui": "{}"})
    assert r.status_code == 422 and NESTED_ZH in r.get_data(as_text=True)
    assert snapshot(app) == before


def test_nul_characters_are_refused_by_name(app, world):
    a, rid, before = world["api"], world["record"], snapshot(app)
    r = a.post("/api/v1/forms/lead/records", json={"data": {**LEAD, "customer_name": "王\u0000明"}})
    assert r.status_code == 422 and "/data/customer_name" in r.json["errors"], r.json
    assert "NUL" in r.json["errors"]["/data/customer_name"][0]
    r = a.post("/api/v1/forms/lead/records", json={"data": {**LEAD, "a\u0000b": "1"}}, headers=EN)
    assert r.status_code == 422 and "/data/a\u0000b" in r.json["errors"]
    assert r.json["errors"]["/data/a\u0000b"] == ["“a␀b” contains a NUL character, which cannot be stored."]
    r = a.patch(f"/api/v1/records/{rid}", json={"data": {"notes": "x\u0000"}}, headers={"If-Match": '"1"'})
    assert r.status_code == 422 and "/data/notes" in r.json["errors"]
    r = a.put("/api/v1/rules/touch", json={**RULE, "title": {"zh-CN": "\u0000"}})
    assert r.status_code == 422 and "/title/zh-CN" in r.json["errors"]
    r = a.post("/api/v1/expressions/check", json={"form": "lead", "expression": "notes == '\u0000'"})
    assert r.status_code == 422 and "/expression" in r.json["errors"]

    r = a.get("/api/v1/forms/lead/records?filter[a%00b]=1")
    assert r.status_code == 400 and "filter[a\u0000b]" in r.json["errors"]
    assert r.json["error"]["message"] == "“filter[a␀b]”含有无法保存的 NUL 字符。"
    r = a.get("/api/v1/forms/lead/records?q=%00", headers=EN)
    assert r.status_code == 400 and r.json["errors"] == {"q": ["“q” contains a NUL character, which cannot be stored."]}
    assert a.get("/api/v1/forms/le%00ad").status_code == 400
    assert snapshot(app) == before


def test_nul_characters_on_pages(app, world, auth):
    before = snapshot(app)
    auth.login("admin")
    client = auth.client
    r = client.get("/f/lead?q=%00")
    assert r.status_code == 400 and "“q”含有无法保存的 NUL 字符。" in r.get_data(as_text=True)
    r = client.post("/f/lead/new", data={"f_customer_name": "王\x00明", "f_phone": "13812345679",
                                          "f_source_channel": "showroom", "f_status": "new"})
    assert r.status_code == 400 and "f_customer_name" in r.get_data(as_text=True)
    r = client.post("/login", data={"username": "admin\x00", "password": "x"})
    assert r.status_code == 400
    assert snapshot(app) == before


def test_numbers_that_are_not_numbers_or_overflow(app, world):
    a, before = world["api"], snapshot(app)
    for query, name in ((f"page={HUGE}", "page"), (f"per_page={HUGE}", "per_page"), ("page=abc", "page"),
                        ("page=0", "page"), ("per_page=201", "per_page"), ("per_page=null", "per_page")):
        r = a.get(f"/api/v1/forms/lead/records?{query}")
        assert r.status_code == 400 and name in r.json["errors"], (query, r.status_code)
    r = a.get(f"/api/v1/forms/lead/records?page={HUGE}", headers=EN)
    assert r.json["errors"]["page"] == ["“page” must be a whole number from 1 to 1000000000."]
    r = a.get(f"/api/v1/forms/lead/records?page={HUGE}")
    assert r.json["errors"]["page"] == ["“page”须为 1 到 1000000000 之间的整数。"]
    assert a.get("/api/v1/forms/lead/records?page=2&per_page=200").status_code == 200

    for limit in ("abc", "null", "", "-1", "0", HUGE, "1001"):
        r = a.get(f"/api/v1/rules/touch/runs?limit={limit}")
        assert r.status_code == 400 and "limit" in r.json["errors"], (limit, r.status_code)
    assert a.get("/api/v1/rules/touch/runs?limit=5").status_code == 200

    assert a.get(f"/api/v1/records/{HUGE}").status_code == 404
    assert a.get(f"/api/v1/records/{2**31}").status_code == 404  # past PostgreSQL's integer column

    # numbers inside JSON bodies: beyond 64 bits, NaN, infinities
    defeat = {"lead": int(HUGE), "customer_name": "赵", "phone": "13912345678"}
    r = a.post("/api/v1/forms/defeat/records", json={"data": defeat})
    assert r.status_code == 422 and "/data/lead" in r.json["errors"], r.json
    for text in ("NaN", "Infinity", "-Infinity", "1e400", "1" * 5000):
        r = a.post("/api/v1/forms/lead/records", data='{"data": {"notes": %s}}' % text,
                   content_type="application/json")
        assert r.status_code in (400, 422), (text[:20], r.status_code)
    r = a.post("/api/v1/rules/touch/dry-run", json={"record": int(HUGE)})
    assert r.status_code == 422 and "/record" in r.json["errors"]
    r = a.post("/api/v1/rules/touch/dry-run", json={"record": 2**40})
    assert r.status_code == 422 and "/record" in r.json["errors"]
    assert snapshot(app) == before


def test_numbers_on_pages(app, world, auth):
    auth.login("admin")
    client = auth.client
    for url, name in ((f"/f/lead?page={HUGE}", "page"), (f"/f/lead?per_page={HUGE}", "per_page"),
                      ("/f/lead?page=abc", "page"), (f"/admin/runs?record={HUGE}", "record")):
        r = client.get(url)
        assert r.status_code == 400 and f"“{name}”" in r.get_data(as_text=True), (url, r.status_code)
    assert client.get(f"/r/{HUGE}").status_code == 404
    assert client.get(f"/r/{HUGE}/edit").status_code == 404
    r = client.post("/admin/rules/touch/dry-run", json={"record": HUGE})
    assert r.status_code == 422
    r = client.post(f"/r/{world['record']}/edit", data={"f_customer_name": "王小明", "f_phone": "13812345678",
                                                        "f_source_channel": "showroom", "f_status": "new",
                                                        "_version": "1", "_owner": HUGE})
    assert r.status_code in (400, 403)


def test_a_date_filter_must_be_a_date(world):
    a = world["api"]
    for value in ("abc", "2026-02-30", "2026-3-1", "20260301"):
        r = a.get(f"/api/v1/forms/lead/records?filter[deal_date]={value}")
        assert r.status_code == 400 and "filter[deal_date]" in r.json["errors"], (value, r.status_code)
    r = a.get("/api/v1/forms/lead/records?filter[deal_date]=abc", headers=EN)
    assert r.json["errors"]["filter[deal_date]"] == ["Give a date as YYYY-MM-DD"]
    assert a.get("/api/v1/forms/lead/records?filter[deal_date]=2026-03-01").status_code == 200
    r = a.get("/api/v1/forms/lead/records?filter[appointment_at]=abc")
    assert r.status_code == 400 and "filter[appointment_at]" in r.json["errors"]
    assert a.get("/api/v1/forms/lead/records?filter[appointment_at]=2026-03-01T10:30:00%2B08:00").status_code == 200
    r = a.get(f"/api/v1/forms/defeat/records?filter[followup_count]={HUGE}")
    assert r.status_code == 400 and "filter[followup_count]" in r.json["errors"]
    r = a.get("/api/v1/forms/defeat/records?filter[followup_count]=3")
    assert r.status_code == 200 and r.json["total"] == 0


# --- every route ---------------------------------------------------------------------------------

NUL_ARGS = [{"q": "a\x00b"}, {"filter[a\x00b]": "1"}, {"x\x00": "1"}, {"rule": "\x00"}, {"scope": "\x00"}]
NUMBER_ARGS = [{"page": HUGE}, {"per_page": HUGE}, {"page": "abc"}, {"limit": "abc"}, {"limit": "null"},
               {"limit": HUGE}, {"record": HUGE}, {"from": "2026-02-30"}, {"filter[deal_date]": "abc"}]
# Which routes read which parameter: these must refuse a bad value with a 400 naming it.
READS = {"page": {"api.list_records", "web.record_list"}, "per_page": {"api.list_records", "web.record_list"},
         "limit": {"api.rule_runs"}, "record": {"web.admin_runs"}, "filter[deal_date]": {"api.list_records"}}
REPORTS = ("formflow.web.reports", "formflow.api.reports")  # helper B's: report pages and report data


def _routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        if rule.endpoint in ("static", "bootstrap.static", "web.plotly_js") or view.__module__ in REPORTS:
            continue
        yield rule


def _url(rule, values, **override):
    args = {}
    for name in rule.arguments - set(rule.defaults or ()):
        if name == "key":
            args[name] = values["rule"] if "rules" in rule.rule else "lead"
        else:
            args[name] = values.get(name, 1)
    return rule.build({**args, **override}, append_unknown=False)[1]


def test_every_route_answers_bad_parameters_with_a_4xx(app, world, auth):
    before = snapshot(app)
    auth.login("admin")
    client, a = auth.client, world["api"]
    with app.app_context():
        from formflow.people.models import User
        admin_id = db.session.scalar(select(User.id).where(User.username == "admin"))
    values = {"rule": "touch", "record_id": world["record"], "user_id": admin_id, "code": "en"}
    seen, failures = set(), []
    for rule in _routes(app):
        api = rule.rule.startswith("/api/")
        url = _url(rule, values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            send = getattr(a, method.lower()) if api else getattr(client, method.lower())
            seen.add(rule.endpoint)
            if method == "GET":
                for args in NUL_ARGS:
                    r = send(url, query_string=args)
                    if r.status_code != 400:
                        failures.append((method, url, args, r.status_code))
                for args in NUMBER_ARGS:
                    r = send(url, query_string=args)
                    [name] = args
                    expected = 400 if rule.endpoint in READS.get(name, ()) else None
                    if r.status_code >= 500 or (expected and (r.status_code != expected or name not in
                                                              r.get_data(as_text=True))):
                        failures.append((method, url, args, r.status_code))
            else:  # refused before the route runs, so nothing is deleted, pressed or logged out
                r = send(url, query_string={"x\x00": "1"})
                if r.status_code != 400:
                    failures.append((method, url, "NUL query", r.status_code))
                if not api:
                    r = send(url, data={"f_notes": "a\x00b"})
                    if r.status_code != 400 or "f_notes" not in r.get_data(as_text=True):
                        failures.append((method, url, "NUL form", r.status_code))
    assert not failures, failures
    assert {"api.list_records", "web.record_list", "api.rule_runs", "web.admin_runs", "web.record_new"} <= seen
    assert snapshot(app) == before


def test_every_id_in_a_path_is_bounded(app, world, auth):
    """/r/99999999999999999999 is a 404 on both databases, on every route with an id."""
    auth.login("admin")
    client, a = auth.client, world["api"]
    values = {"rule": "touch", "code": "en"}
    failures, checked = [], 0
    for rule in _routes(app):
        for name in [n for n in rule.arguments - set(rule.defaults or ()) if n.endswith("_id") or n == "number"]:
            for number in (int(HUGE), 2**31):
                url = _url(rule, values, **{name: number})
                for method in rule.methods - {"HEAD", "OPTIONS"}:
                    send = getattr(a if rule.rule.startswith("/api/") else client, method.lower())
                    r = send(url, json={})
                    checked += 1
                    if r.status_code != 404:
                        failures.append((method, url, r.status_code))
    assert checked >= 20 and not failures, failures


def test_values_past_what_the_parsers_and_databases_take(world, auth):
    """Found by trying more: each was a 500 before."""
    a, rid = world["api"], world["record"]
    r = a.get("/api/v1/forms/lead/records?q=" + "x" * 100_000)  # SQLite: LIKE pattern too complex
    assert r.status_code == 400 and "q" in r.json["errors"]
    r = a.patch(f"/api/v1/records/{rid}", json={"data": {}}, headers={"If-Match": "9" * 5000})  # int() refuses
    assert r.status_code == 400
    r = a.post("/api/v1/rules/touch/simulate", json={"from": "2026-01-01", "to": "9999-12-31"})  # no day after
    assert r.status_code == 422 and "/to" in r.json["errors"]
    auth.login("admin")
    r = auth.client.post("/admin/rules/touch/simulate", json={"from": "2026-01-01", "to": "9999-12-31"})
    assert r.status_code == 422
