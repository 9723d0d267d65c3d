"""Reports compiled to SQL, checked against numbers computed here from the raw records."""
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.reports import compiler

SH = ZoneInfo("Asia/Shanghai")
CHANNELS = ["douyin_dm", "dongchedi", "autohome", "showroom", "referral"]
PATH = {"new": [], "contacted": ["contacted"], "invited": ["contacted", "invited"],
        "won": ["contacted", "invited", "visited", "won"], "defeated": ["contacted", "defeated"]}


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


@pytest.fixture
def data(app, cardealer):
    """60 leads over three months with status histories, some deleted; returns what was made."""
    rnd = random.Random(7)
    made = []
    with app.test_request_context():
        sales = [user(f"sales{i}") for i in range(1, 5)]
        for i in range(60):
            at = datetime(2026, 8, 1, 1, 0, tzinfo=timezone.utc) + timedelta(hours=rnd.randint(0, 24 * 90))
            if i == 0:
                at = datetime(2026, 8, 31, 16, 30, tzinfo=timezone.utc)  # 00:30 on Sept 1st in Shanghai
            clock.freeze(at)
            owner = rnd.choice(sales)
            final = rnd.choice(list(PATH))
            body = {"customer_name": f"客户{i}", "phone": f"1391234{i:04d}", "source_channel": rnd.choice(CHANNELS),
                    "status": "new", "quality": rnd.choice(["a", "b", "c", None]),
                    "body_type": rnd.choice(["suv", "sedan", None])}
            body = {k: v for k, v in body.items() if v is not None}
            rec = records.create(catalog.get_form("lead"), body, owner, owner=owner)
            db.session.commit()
            entered = {"new": at}
            for step in PATH[final]:
                clock.advance(timedelta(days=rnd.randint(1, 9), hours=rnd.randint(0, 20)))
                extra = {"status": step}
                if step == "invited":
                    extra["appointment_at"] = "2026-12-01T10:00:00+08:00"
                if step == "won":
                    extra["deal_date"] = "2026-12-01"
                if step == "defeated":
                    from test_workflow import defeat_for
                    defeat_for(rec, reasons=rnd.sample(["price", "competitor", "sales_service"], rnd.randint(1, 2)))
                records.update(rec, extra, rec.version, owner)
                db.session.commit()
                entered[step] = clock.now()
            deleted = i % 13 == 5
            if deleted:
                records.delete(rec, owner)
                db.session.commit()
            made.append({"id": rec.id, "data": dict(rec.data), "owner": owner.username, "at": at,
                         "entered": entered, "deleted": deleted})
        clock.reset()
    return [m for m in made if not m["deleted"]]


def run(app, defn, username="admin"):
    with app.test_request_context():
        result = compiler.run(defn, user(username))
        keys = [c.key for c in result.columns]
        return [dict(zip(keys, row)) for row in result.rows]


def test_count_share_ratio_by_channel(app, data):
    defn = {"key": "r", "source": "lead", "dimensions": [{"field": "source_channel"}], "measures": [
        {"key": "leads", "type": "count"},
        {"key": "a_leads", "type": "count", "where": [{"field": "quality", "op": "eq", "value": "a"}]},
        {"key": "a_share", "type": "ratio", "numerator": "a_leads", "denominator": "leads"},
        {"key": "share", "type": "share", "of": "leads"}],
        "sort": [{"by": "leads", "dir": "desc"}]}
    rows = run(app, defn)
    by = Counter(m["data"]["source_channel"] for m in data)
    a = Counter(m["data"]["source_channel"] for m in data if m["data"].get("quality") == "a")
    assert {r["source_channel"]: r["leads"] for r in rows} == dict(by)
    for r in rows:
        ch = r["source_channel"]
        assert r["a_leads"] == a[ch]
        assert r["a_share"] == pytest.approx(a[ch] / by[ch])
        assert r["share"] == pytest.approx(by[ch] / len(data))
    assert [r["leads"] for r in rows] == sorted((r["leads"] for r in rows), reverse=True)


def test_month_grain_uses_shanghai_time(app, data):
    rows = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "created_at", "grain": "month"}],
                     "measures": [{"key": "n", "type": "count"}]})
    expected = Counter(m["at"].astimezone(SH).strftime("%Y-%m") for m in data)
    assert {r["created_at:month"]: r["n"] for r in rows} == dict(expected)
    weeks = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "created_at", "grain": "week"}],
                      "measures": [{"key": "n", "type": "count"}]})
    expected = Counter((m["at"].astimezone(SH).date() - timedelta(days=m["at"].astimezone(SH).weekday())).isoformat()
                       for m in data)
    assert {r["created_at:week"]: r["n"] for r in weeks} == dict(expected)
    quarters = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "created_at", "grain": "quarter"}],
                         "measures": [{"key": "n", "type": "count"}]})
    expected = Counter(f"{m['at'].astimezone(SH).year}-Q{(m['at'].astimezone(SH).month + 2) // 3}" for m in data)
    assert {r["created_at:quarter"]: r["n"] for r in quarters} == dict(expected)


def test_nulls_form_their_own_group_and_empty_results(app, data):
    rows = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "quality"}],
                     "measures": [{"key": "n", "type": "count"}]})
    assert {r["quality"]: r["n"] for r in rows} == dict(Counter(m["data"].get("quality") for m in data))
    none = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "quality"}],
                     "measures": [{"key": "n", "type": "count"}],
                     "filters": [{"field": "customer_name", "op": "eq", "value": "没有这个人"}]})
    assert none == []


def test_multiselect_dimension_counts_each_value(app, data):
    rows = run(app, {"key": "r", "source": "defeat", "dimensions": [{"field": "reasons"}],
                     "measures": [{"key": "n", "type": "count"}]})
    with app.app_context():
        defeats = db.session.scalars(select(Record).join(Record.form).where(catalog.Form.key == "defeat",
                                                                            Record.deleted_at.is_(None))).all()
        expected = Counter(r for d in defeats for r in d.data.get("reasons", []))
    assert {r["reasons"]: r["n"] for r in rows} == dict(expected)


def test_joined_form_dimension(app, data):
    rows = run(app, {"key": "r", "source": "defeat", "dimensions": [{"field": "lead.source_channel"}],
                     "measures": [{"key": "n", "type": "count"}]})
    with app.app_context():
        defeats = db.session.scalars(select(Record).join(Record.form).where(catalog.Form.key == "defeat",
                                                                            Record.deleted_at.is_(None))).all()
        channel = {m["id"]: m["data"]["source_channel"] for m in data}
        expected = Counter(channel.get(d.data["lead"]) for d in defeats)
    assert {r["lead.source_channel"]: r["n"] for r in rows} == dict(expected)


def test_funnel_conversion_and_cycle_time(app, data):
    defn = {"key": "funnel", "source": "lead", "dimensions": [{"field": "quality"}], "measures": [
        {"key": "all", "type": "reached", "states": ["new"]},
        {"key": "contacted", "type": "reached", "states": ["contacted"]},
        {"key": "invited", "type": "reached", "states": ["invited"]},
        {"key": "won", "type": "reached", "states": ["won"]},
        {"key": "conv", "type": "conversion", "from": ["contacted"], "to": ["won"]},
        {"key": "days", "type": "avg_days", "from": ["created"], "to": ["won"]}]}
    rows = {r["quality"]: r for r in run(app, defn)}
    groups = defaultdict(list)
    for m in data:
        groups[m["data"].get("quality")].append(m)
    for q, items in groups.items():
        r = rows[q]
        reached = lambda s: sum(1 for m in items if s in m["entered"])  # noqa: E731
        assert r["all"] == len(items)
        assert (r["contacted"], r["invited"], r["won"]) == (reached("contacted"), reached("invited"), reached("won"))
        assert r["conv"] == (pytest.approx(reached("won") / reached("contacted")) if reached("contacted") else None)
        cycles = [(m["entered"]["won"] - m["at"]).total_seconds() / 86400 for m in items if "won" in m["entered"]]
        assert r["days"] == (pytest.approx(sum(cycles) / len(cycles), abs=1e-3) if cycles else None)


def test_sum_avg_min_max_and_count_distinct(app, data):
    with app.test_request_context():
        defeats = db.session.scalars(select(Record).join(Record.form).where(catalog.Form.key == "defeat")).all()
        for i, d in enumerate(defeats):
            records.update(d, {"competitor_price": 80000 + i * 1000.5}, d.version, None)
        db.session.commit()
        prices = [d.data["competitor_price"] for d in defeats if d.deleted_at is None]
    [row] = run(app, {"key": "r", "source": "defeat", "measures": [
        {"key": "s", "type": "sum", "field": "competitor_price"}, {"key": "a", "type": "avg", "field": "competitor_price"},
        {"key": "lo", "type": "min", "field": "competitor_price"}, {"key": "hi", "type": "max", "field": "competitor_price"},
        {"key": "owners", "type": "count_distinct", "field": "owner"}]})
    assert row["s"] == pytest.approx(sum(prices)) and row["a"] == pytest.approx(sum(prices) / len(prices))
    assert (row["lo"], row["hi"]) == (min(prices), max(prices))
    with app.app_context():
        owners = {d.owner_id for d in defeats if d.deleted_at is None}
    assert row["owners"] == len(owners)


def test_soft_deleted_records_are_excluded_and_access_applies(app, data):
    [row] = run(app, {"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}]})
    assert row["n"] == len(data)
    [mine] = run(app, {"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}]}, "sales1")
    assert mine["n"] == sum(1 for m in data if m["owner"] == "sales1")
    by_owner = run(app, {"key": "r", "source": "lead", "dimensions": [{"field": "owner"}],
                         "measures": [{"key": "n", "type": "count"}]}, "sales2")
    assert [r["owner"] for r in by_owner] == ["sales2"]


def test_relative_date_filters(app, data):
    clock.freeze(datetime(2026, 10, 15, 4, 0, tzinfo=timezone.utc))
    try:
        [row] = run(app, {"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}],
                          "filters": [{"field": "created_at", "op": "relative", "value": "last_month"}]})
    finally:
        clock.reset()
    assert row["n"] == sum(1 for m in data if m["at"].astimezone(SH).strftime("%Y-%m") == "2026-09")


def test_drill_down_returns_the_records_behind_a_cell(app, data):
    defn = {"key": "r", "source": "lead", "dimensions": [{"field": "source_channel"}],
            "measures": [{"key": "n", "type": "count"}]}
    with app.test_request_context():
        rows = compiler.run(defn, user("admin")).rows
        channel, n = rows[0][0], rows[0][1]
        behind = compiler.drill(defn, user("admin"), {"source_channel": channel})
        assert len(behind) == n and all(r.data["source_channel"] == channel for r in behind)
        mine = compiler.drill(defn, user("sales1"), {"source_channel": channel})
        assert all(r.owner.username == "sales1" for r in mine)


@pytest.mark.parametrize("defn,where", [
    ({"dimensions": [{"field": "phone; DROP TABLE records"}]}, "/dimensions/0/field"),
    ({"dimensions": [{"field": "nope"}]}, "/dimensions/0/field"),
    ({"filters": [{"field": "status", "op": "eq", "value": "new' OR 1=1 --"}]}, "/filters/0/value"),
    ({"filters": [{"field": "status", "op": "raw", "value": "1"}]}, "/filters/0/op"),
    ({"sort": [{"by": "n; DELETE FROM users"}]}, "/sort/0/by"),
    ({"measures": [{"key": "n", "type": "sum", "field": "customer_name"}]}, "/measures/0/field"),
    ({"dimensions": [{"field": "quality", "grain": "month"}]}, "/dimensions/0/grain"),
])
def test_malicious_or_wrong_definitions_are_refused(app, cardealer, defn, where):
    body = {"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}], **defn}
    with app.test_request_context(), pytest.raises(compiler.ReportInvalid) as info:
        compiler.check(body)
    assert any(p.startswith(where) for p in info.value.errors), info.value.errors


def test_values_are_bound_not_spliced(app, data):
    evil = "x' OR '1'='1"
    rows = run(app, {"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}],
                     "filters": [{"field": "customer_name", "op": "eq", "value": evil}]})
    assert rows == [] or rows[0]["n"] == 0
    with app.test_request_context():
        stmt, *_rest = compiler.compile_report({"key": "r", "source": "lead", "measures": [{"key": "n", "type": "count"}],
                                                "filters": [{"field": "customer_name", "op": "eq", "value": evil}]},
                                               user("admin"))
        assert evil not in str(stmt)


def test_reports_api(app, api, data):
    from formflow.reports import store
    with app.app_context():
        store.save({"key": "by_channel", "source": "lead", "dimensions": [{"field": "source_channel"}],
                    "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()
    a = api("sales1")
    assert [r["key"] for r in a.get("/api/v1/reports").json["reports"]] == ["by_channel"]
    body = a.get("/api/v1/reports/by_channel/data").json
    assert sum(r[1] for r in body["rows"]) == sum(1 for m in data if m["owner"] == "sales1")
    assert body["columns"][0]["labels"]["showroom"] == "展厅接待"
    ranged = a.get("/api/v1/reports/by_channel/data?from=2026-09-01&to=2026-09-30").json
    expected = sum(1 for m in data if m["owner"] == "sales1" and m["at"].astimezone(SH).strftime("%Y-%m") == "2026-09")
    assert sum(r[1] for r in ranged["rows"]) == expected
    assert a.get("/api/v1/reports/by_channel/data?from=bad").status_code == 422
    preview = a.post("/api/v1/reports/preview", json={"source": "lead", "measures": [{"key": "n", "type": "count"}]})
    assert preview.status_code == 200
    bad = a.post("/api/v1/reports/preview", json={"source": "lead", "measures": [{"key": "n", "type": "sum",
                                                                                   "field": "x' --"}]})
    assert bad.status_code == 422
    assert a.get("/api/v1/reports/nope/data").status_code == 404


def test_report_pages_export_and_drill(app, client, auth, data):
    import csv
    import io

    from openpyxl import load_workbook
    auth.login("manager")
    defn = {"key": "by_channel", "title": {"zh-CN": "各渠道线索"}, "source": "lead",
            "dimensions": [{"field": "source_channel"}],
            "measures": [{"key": "n", "type": "count"},
                         {"key": "a", "type": "count", "where": [{"field": "quality", "op": "eq", "value": "a"}]},
                         {"key": "a_share", "type": "ratio", "numerator": "a", "denominator": "n"}],
            "chart": {"type": "bar"}}
    assert client.post("/reports/builder/preview", json=defn).status_code == 200
    bad = client.post("/reports/builder/preview", json={**defn, "dimensions": [{"field": "nope"}]})
    assert bad.status_code == 422 and "/dimensions/0/field" in bad.json["errors"]
    saved = client.post("/reports/builder/save", json=defn).json
    assert saved["url"] == "/reports/by_channel"
    page = client.get("/reports/by_channel").get_data(as_text=True)
    assert "各渠道线索" in page and "/vendor/plotly.min.js" in page
    assert client.get("/vendor/plotly.min.js").status_code == 200
    rows = list(csv.reader(io.StringIO(client.get("/reports/by_channel/export.csv").get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "来源渠道"
    with app.test_request_context():
        from formflow.reports import export
        result = compiler.run(defn, user("manager"))
        on_screen = export.table(result)
    assert rows == on_screen
    for cell in on_screen[1]:
        assert cell in page  # the page shows exactly these texts
    book = load_workbook(io.BytesIO(client.get("/reports/by_channel/export.xlsx").data))
    sheet = book.active
    assert sheet.cell(2, 2).value == result.rows[0][1] and sheet.cell(2, 4).number_format == "0.00%"
    channel = result.rows[0][0]
    drill = client.get(f"/reports/by_channel/drill?source_channel={channel}").get_data(as_text=True)
    assert drill.count('class="list-group-item list-group-item-action"') == result.rows[0][1]
    auth.logout()
    auth.login("sales1")
    assert client.get("/reports/builder").status_code == 403
    assert client.post("/reports/builder/save", json=defn).status_code == 403
    mine = client.get("/reports/by_channel/export.csv").get_data(as_text=True)
    total = sum(int(r[1]) for r in csv.reader(io.StringIO(mine.lstrip("\ufeff"))) if r[1].isdigit())
    assert total == sum(1 for m in data if m["owner"] == "sales1")


def test_dashboards_roles_range_and_arrangement(app, client, auth, data):
    from formflow.reports import store
    with app.app_context():
        for key, field in (("by_channel", "source_channel"), ("by_quality", "quality")):
            store.save({"key": key, "source": "lead", "dimensions": [{"field": field}],
                        "measures": [{"key": "n", "type": "count"}]})
        db.session.commit()
    auth.login("manager")
    r = client.post("/dashboards/new", data={"key": "mgr", "title": "经理看板", "roles": ["manager", "admin"],
                                             "reports": ["by_channel", "by_quality"]})
    assert r.status_code == 302
    bad = client.post("/dashboards/new", data={"key": "bad", "reports": ["nope"]}).get_data(as_text=True)
    assert "/tiles/0/report" in bad
    page = client.get("/dashboards/mgr").get_data(as_text=True)
    assert page.index('data-report="by_channel"') < page.index('data-report="by_quality"')
    ranged = client.get("/reports/by_channel/data.json?from=2026-09-01&to=2026-09-30").json
    expected = sum(1 for m in data if m["at"].astimezone(SH).strftime("%Y-%m") == "2026-09")
    assert sum(row[1] for row in ranged["rows"]) == expected
    assert client.post("/dashboards/mgr/layout", json={"tiles": [{"report": "by_quality", "w": "12"},
                                                                 {"report": "by_channel", "w": "6"}]}).json["ok"]
    page = client.get("/dashboards/mgr").get_data(as_text=True)
    assert page.index('data-report="by_quality"') < page.index('data-report="by_channel"')
    assert 'col-md-12 tile" data-tile="by_quality"' in page
    assert client.post("/dashboards/mgr/layout", json={"tiles": [{"report": "by_quality"}]}).status_code == 422
    auth.logout()
    auth.login("sales1")
    assert client.get("/dashboards/mgr").status_code == 404
    assert "经理看板" not in client.get("/reports").get_data(as_text=True)


def test_scheduled_report_delivery_through_a_cron_rule(app, data):
    import json as _json

    from formflow.reports import store
    from formflow.workflow import jobs, outbox, rules, timers
    from formflow.workflow.models import Notification
    from test_outbox import Hook
    hook = Hook()
    try:
        clock.freeze(datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc))  # 08:00 Monday in Shanghai
        with app.test_request_context():
            store.save({"key": "by_channel", "title": {"zh-CN": "各渠道线索"}, "source": "lead",
                        "dimensions": [{"field": "source_channel"}], "measures": [{"key": "n", "type": "count"}]})
            with pytest.raises(rules.RuleInvalid) as info:
                rules.save({"key": "weekly", "form": "lead", "trigger": {"type": "cron", "schedule": "0 8 * * 1"},
                            "actions": [{"type": "send_report", "report": "by_channel", "channels": ["webhook"],
                                         "webhook": {"url": hook.url}}]})
            assert "/actions/0/as" in info.value.errors
            rules.save({"key": "weekly", "form": "lead", "trigger": {"type": "cron", "schedule": "0 8 * * 1"},
                        "actions": [{"type": "send_report", "report": "by_channel", "to": ["role:sales"],
                                     "channels": ["inbox", "webhook"], "as": "manager",
                                     "webhook": {"url": hook.url, "format": "wecom"}}]})
            db.session.commit()
            assert timers.run_cron() == 1
            assert db.session.scalar(select(func.count(Notification.id))) == 0  # compiled in the queue
            assert jobs.run_pending() == 1
            notes = {n.user_id: n for n in db.session.scalars(select(Notification))}
            s1 = notes[user("sales1").id]
            mine = sum(1 for m in data if m["owner"] == "sales1")
            assert s1.title == "各渠道线索"
            assert sum(int(line.split(" | ")[1]) for line in s1.body.splitlines()[1:]) == mine
            assert outbox.sweep() == ["sent"]
        body = _json.loads(hook.requests[0][1])
        assert body["msgtype"] == "markdown" and "各渠道线索" in body["markdown"]["content"]
    finally:
        clock.reset()
        hook.close()


def test_avg_days_between_creation_and_a_date_field(app, cardealer):
    from datetime import date as _date
    with app.test_request_context():
        s1 = user("sales1")
        spans = []
        for i, (created, deal) in enumerate([(datetime(2026, 10, 1, 2, tzinfo=timezone.utc), "2026-10-08"),
                                             (datetime(2026, 10, 3, 2, tzinfo=timezone.utc), "2026-10-18")]):
            clock.freeze(created)
            records.create(catalog.get_form("lead"), {"customer_name": "x", "phone": f"1391234{i:04d}",
                                                      "source_channel": "showroom", "status": "won",
                                                      "deal_date": deal, "quality": "a"}, s1, owner=s1, system=True)
            db.session.commit()
            d = _date.fromisoformat(deal)
            spans.append((datetime(d.year, d.month, d.day, tzinfo=SH) - created).total_seconds() / 86400)
        clock.reset()
    [row] = run(app, {"key": "r", "source": "lead", "measures": [
        {"key": "d", "type": "avg_days", "from": ["created"], "to": ["field:deal_date"]}]})
    assert row["d"] == pytest.approx(sum(spans) / 2, abs=0.01)


@pytest.mark.parametrize("hours", [1, 7, 24])
def test_within_counts_the_edges_exactly_and_waits_for_open_windows(app, cardealer, hours):
    """An end exactly `hours` after the start is on time, one second later is late; an end in the
    same second as the start, or seconds before it (forms keep minutes), is on time; a record still
    inside its window without an end is not due."""
    t0 = datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc)
    cases = [timedelta(hours=hours), timedelta(hours=hours, seconds=1), timedelta(0), None, None,
             timedelta(seconds=-37)]  # the last: a follow-up at 10:05 for a lead entered at 10:05:37
    with app.test_request_context():
        s1 = user("sales1")
        for i, after in enumerate(cases):
            created = t0 + timedelta(days=30) if i == 4 else t0  # the fifth is fresh, the fourth overdue
            if i == 5:
                created = t0 + timedelta(seconds=37)
            clock.freeze(created)
            data = {"customer_name": "x", "phone": f"1391235{i:04d}", "source_channel": "showroom",
                    "status": "contacted"}
            if after is not None:
                data["first_followup_at"] = (created + after).astimezone(SH).isoformat()
            records.create(catalog.get_form("lead"), data, s1, owner=s1, system=True)
            db.session.commit()
        clock.freeze(t0 + timedelta(days=30, minutes=30))
        try:
            result = compiler.run({"key": "r", "source": "lead", "measures": [
                {"key": "n", "type": "count"},
                {"key": "w", "type": "within", "from": ["created"], "to": ["field:first_followup_at"],
                 "hours": hours}]}, user("admin"))
        finally:
            clock.reset()
    assert result.rows == [[6, pytest.approx(3 / 5)]]  # exact, same second, same minute on time; of five due


def test_dashboard_tiles_list_own_tasks_and_the_records_behind_a_report(app, client, auth, data):
    from formflow.reports import compiler as _compiler, store
    from formflow.workflow.models import Task
    now = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
    with app.app_context():
        store.save({"key": "fresh", "source": "lead", "filters": [{"field": "status", "op": "eq", "value": "new"}],
                    "measures": [{"key": "n", "type": "count"}]})
        s1, s2 = user("sales1"), user("sales2")
        for who, title, due in ((s1, "昨天该做的", now - timedelta(hours=20)), (s1, "今天下午", now + timedelta(hours=5)),
                                (s1, "下周", now + timedelta(days=7)), (s2, "别人的任务", now - timedelta(hours=1))):
            db.session.add(Task(assignee_id=who.id, title=title, due_at=due))
        db.session.commit()
        for bad, where in (({"tiles": [{"tasks": "today", "report": "fresh"}]}, "/tiles/0"),
                           ({"tiles": [{"report": "fresh"}, {"report": "fresh"}]}, "/tiles/1"),
                           ({"tiles": [{"tasks": "someday"}]}, "/tiles/0")):
            with pytest.raises(_compiler.ReportInvalid) as err:
                store.save({"key": "bad", **bad}, kind="dashboard")
            assert any(p.startswith(where) for p in err.value.errors), err.value.errors
        store.save({"key": "day", "tiles": [{"tasks": "overdue"}, {"tasks": "today"}, {"tasks": "later"},
                                            {"report": "fresh", "view": "records"}, {"report": "fresh"}]},
                   kind="dashboard")
        db.session.commit()
        mine_new = [r.id for r in db.session.scalars(select(Record)) if r.data.get("status") == "new"
                    and r.owner_id == s1.id and r.deleted_at is None]
        others_new = [r.id for r in db.session.scalars(select(Record)) if r.data.get("status") == "new"
                      and r.owner_id != s1.id]
    auth.login("sales1")
    clock.freeze(now)
    try:
        page = client.get("/dashboards/day").get_data(as_text=True)
    finally:
        clock.reset()

    def tile(name):
        start = page.index(f'data-tile="{name}"')
        end = page.find('class="col-12', start)
        return page[start:end if end > 0 else None]
    assert "昨天该做的" in tile("tasks:overdue") and "今天下午" in tile("tasks:today") and "下周" in tile("tasks:later")
    assert "今天下午" not in tile("tasks:overdue") and "别人的任务" not in page
    assert mine_new and all(f"/r/{rid}\"" in tile("fresh:records") for rid in sorted(mine_new)[-12:])
    assert not any(f"/r/{rid}\"" in page for rid in others_new)
    assert 'data-tile="fresh"' in page and "tile-chart" in tile("fresh")
    # arranging names tiles by id, task tiles included
    auth.logout()
    auth.login("manager")
    ids = ["fresh", "tasks:later", "fresh:records", "tasks:today", "tasks:overdue"]
    assert client.post("/dashboards/day/layout", json={"tiles": [{"id": i} for i in ids]}).json["ok"]
    page = client.get("/dashboards/day").get_data(as_text=True)
    assert [page.index(f'data-tile="{i}"') for i in ids] == sorted(page.index(f'data-tile="{i}"') for i in ids)


def test_top_n_within_each_group(app, data):
    defn = {"key": "r", "source": "lead", "dimensions": [{"field": "owner"}, {"field": "source_channel"}],
            "measures": [{"key": "n", "type": "count"}], "top": {"n": 2}}
    full = run(app, {k: v for k, v in defn.items() if k != "top"})
    got = run(app, defn)
    by_owner = defaultdict(list)
    for row in full:
        by_owner[row["owner"]].append(row)
    expected = set()
    for owner, rows in by_owner.items():
        ranked = sorted(rows, key=lambda r: (-r["n"], str(r["source_channel"])))
        expected.update((owner, r["source_channel"]) for r in ranked[:2])
    assert {(r["owner"], r["source_channel"]) for r in got} == expected and len(got) == len(expected)
    with app.test_request_context():
        with pytest.raises(compiler.ReportInvalid) as err:
            compiler.check({**defn, "dimensions": defn["dimensions"][:1]})
        assert "/top" in err.value.errors
