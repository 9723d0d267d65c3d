"""Blueprints: validated before anything is written, idempotent, exportable, engine-agnostic."""
import json
import shutil
import zipfile

import pytest
from sqlalchemy import func, select

from formflow.blueprints import loader
from formflow.blueprints.models import Blueprint
from formflow.extensions import db
from formflow.forms import catalog
from formflow.forms.models import Form, FormVersion, Record
from formflow.people.models import Team, User
from conftest import CARDEALER, HELPDESK, load


def counts():
    return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Form, FormVersion, Record, User, Team, Blueprint))


def copy_of(src, tmp_path, name="bp"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def edit(path, fn):
    doc = json.loads(path.read_text("utf-8"))
    fn(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")


def test_cardealer_loads_with_demo_data(app):
    summary = load(app, CARDEALER, demo=True)
    assert set(summary["forms_added"]) == {"lead", "defeat", "followup", "market_event"}
    with app.app_context():
        leads = db.session.scalars(select(Record).join(Record.form).where(Form.key == "lead")).all()
        assert len(leads) >= 100
        assert any(r.duplicate_of_id for r in leads)  # the demo has repeat phone numbers
        defeats = db.session.scalars(select(Record).join(Record.form).where(Form.key == "defeat")).all()
        lead_ids = {r.id for r in leads}
        assert defeats and all(d.data["lead"] in lead_ids for d in defeats)
        roles = {u.role for u in db.session.scalars(select(User))}
        assert roles == {"admin", "manager", "sales"}
        sales = db.session.scalars(select(User).where(User.role == "sales")).all()
        assert len(sales) >= 4 and len({tuple(u.skills) for u in sales}) == len(sales)


def test_loading_twice_changes_nothing(app):
    load(app, CARDEALER, demo=True)
    with app.app_context():
        before = counts()
    again = load(app, CARDEALER, demo=True)
    assert again["forms_added"] == [] and again["demo_records"] == 0
    with app.app_context():
        assert counts() == before


def test_second_blueprint_from_another_domain(app):
    summary = load(app, HELPDESK, demo=True)
    assert summary["demo_records"] > 0
    with app.app_context():
        assert {f.key for f in catalog.all_forms()} == {"ticket", "kb_article"}


@pytest.mark.parametrize("breakage,file,pointer", [
    (lambda d: d["ui"]["sections"][0]["fields"].append("ghost"), "forms/lead.json", "/ui/sections/0/fields/"),
    (lambda d: d["schema"]["properties"]["phone"].update({"$ref": "http://evil/x.json"}), "forms/lead.json",
     "/schema/properties/phone/$ref"),
    (lambda d: d["schema"].update({"type": 5}), "forms/lead.json", "/schema/type"),
])
def test_broken_form_changes_nothing_and_names_file_and_pointer(app, tmp_path, breakage, file, pointer):
    bp = copy_of(CARDEALER, tmp_path)
    edit(bp / file, breakage)
    with app.app_context():
        before = counts()
        with pytest.raises(loader.BlueprintError) as info:
            loader.load(bp, with_demo=True)
        assert counts() == before == (0, 0, 0, 0, 0, 0)
    assert any(f == file and p.startswith(pointer) for f, p, _m in info.value.problems), info.value.problems


def test_broken_demo_line_rolls_everything_back(app, tmp_path):
    bp = copy_of(CARDEALER, tmp_path)
    lines = (bp / "demo" / "leads.jsonl").read_text("utf-8").splitlines()
    bad = json.loads(lines[5])
    bad["data"]["phone"] = "12345"
    lines[5] = json.dumps(bad, ensure_ascii=False)
    (bp / "demo" / "leads.jsonl").write_text("\n".join(lines), encoding="utf-8")
    with app.app_context():
        with pytest.raises(loader.BlueprintError) as info:
            loader.load(bp, with_demo=True)
        assert counts() == (0, 0, 0, 0, 0, 0)
    assert ("demo/leads.jsonl:6", "/data/phone") in [(f, p) for f, p, _m in info.value.problems]


def test_bad_json_and_manifest_are_named(app, tmp_path):
    bp = copy_of(CARDEALER, tmp_path)
    (bp / "forms" / "defeat.json").write_text("{ nope", encoding="utf-8")
    edit(bp / "blueprint.json", lambda d: d.update(version="one"))
    with app.app_context():
        with pytest.raises(loader.BlueprintError) as info:
            loader.load(bp)
    where = {(f, p) for f, p, _m in info.value.problems}
    assert ("blueprint.json", "/version") in where
    assert ("forms/defeat.json", "") in where


def test_requires_a_newer_engine(app, tmp_path):
    bp = copy_of(HELPDESK, tmp_path)
    edit(bp / "blueprint.json", lambda d: d.update(requires=">=99.0"))
    with app.app_context(), pytest.raises(loader.BlueprintError) as info:
        loader.load(bp)
    assert info.value.problems[0][:2] == ("blueprint.json", "/requires")


def test_newer_version_adds_form_versions_and_keeps_records(app, tmp_path):
    load(app, CARDEALER, demo=True)
    bp = copy_of(CARDEALER, tmp_path)
    edit(bp / "blueprint.json", lambda d: d.update(version="1.3.0"))
    edit(bp / "forms" / "lead.json", lambda d: d["schema"]["properties"]["notes"].update(maxLength=500))
    with app.app_context():
        old = {r.id: (r.form_version_id, r.version, r.data) for r in db.session.scalars(select(Record))}
    summary = load(app, bp)
    assert summary["forms_added"] == ["lead"]
    with app.app_context():
        lead = catalog.get_form("lead")
        assert [v.number for v in lead.versions] == [1, 2]
        assert catalog.current_version(lead).schema["properties"]["notes"]["maxLength"] == 500
        assert {r.id: (r.form_version_id, r.version, r.data) for r in db.session.scalars(select(Record))} == old
        assert db.session.scalars(select(Blueprint)).one().version == "1.3.0"


def test_zip_and_export_round_trip(app, tmp_path, template_db):
    archive = tmp_path / "cardealer.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in CARDEALER.rglob("*"):
            if p.is_file():
                zf.write(p, "cardealer/" + p.relative_to(CARDEALER).as_posix())
    load(app, archive)
    out = tmp_path / "exported"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["blueprint", "export", "cardealer", str(out)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        original = {f.key: catalog.as_definition(f, catalog.current_version(f)) for f in catalog.all_forms()}
    exported = {p.stem: json.loads(p.read_text("utf-8")) for p in (out / "forms").glob("*.json")}
    assert exported == original
    people = json.loads((out / "people.json").read_text("utf-8"))
    assert "password" not in json.dumps(people) and len(people["users"]) >= 6


def test_export_loads_into_an_empty_database_with_the_same_definitions(app, tmp_path):
    load(app, CARDEALER)
    out = tmp_path / "exported"
    assert app.test_cli_runner().invoke(args=["blueprint", "export", "cardealer", str(out)]).exit_code == 0
    with app.app_context():
        first = {f.key: catalog.as_definition(f, catalog.current_version(f)) for f in catalog.all_forms()}
        # empty the database, then load the export
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        loader.load(out)
        second = {f.key: catalog.as_definition(f, catalog.current_version(f)) for f in catalog.all_forms()}
    assert first == second


def test_cli_load_list_and_refusal(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["blueprint", "load", str(HELPDESK)])
    assert result.exit_code == 0 and "helpdesk" in result.output
    result = runner.invoke(args=["blueprint", "list"])
    assert "helpdesk\t1.0.0" in result.output
    bp = copy_of(HELPDESK, tmp_path)
    (bp / "people.json").write_text('{"users": [{"username": "x"}]}', encoding="utf-8")
    result = runner.invoke(args=["blueprint", "load", str(bp)])
    assert result.exit_code != 0
    assert "people.json#/users/0" in result.output and "nothing changed" in result.output


def test_demo_dates_move_to_today_and_open_tasks_come_along(app, tmp_path):
    """On another domain: with demo.as_of, every date moves by whole days (created_at, date and
    date-time fields) so the history ends now; task lines become open tasks that keep their
    distance from now."""
    from datetime import datetime, timedelta, timezone

    from formflow import clock
    from formflow.workflow.models import Task
    bp = copy_of(HELPDESK, tmp_path)
    edit(bp / "blueprint.json", lambda d: d.update(demo={"as_of": "2026-11-20T18:00:00+08:00"}))
    (bp / "demo" / "tasks.jsonl").write_text(json.dumps({
        "key": "t1", "created_at": "2026-11-20T10:00:00+08:00",
        "task": {"form": "ticket", "record": "ticket-0001", "assignee": "agent2", "title": "回访王芳",
                 "due_at": "2026-11-21T09:00:00+08:00", "priority": "high", "rule": "follow_up"}},
        ensure_ascii=False) + "\n", encoding="utf-8")
    source = json.loads((HELPDESK / "demo" / "tickets.jsonl").read_text("utf-8").splitlines()[0])
    now = datetime(2027, 1, 10, 12, 0, tzinfo=timezone.utc)  # 20:00 in Shanghai, 51 days after as_of
    clock.freeze(now)
    try:
        load(app, bp, demo=True)
        with app.app_context():
            ticket = db.session.scalars(select(Record).where(Record.import_key == "ticket-0001")).one()
            days = timedelta(days=51)
            assert ticket.created_at == datetime.fromisoformat(source["created_at"]) + days
            assert datetime.fromisoformat(ticket.data["due_at"]) == datetime.fromisoformat(source["data"]["due_at"]) + days
            assert ticket.data["subject"] == source["data"]["subject"]  # text is left alone
            task = db.session.scalars(select(Task)).one()
            assert (task.title, task.priority, task.record_id, task.assignee.username, task.rule_key) == (
                "回访王芳", "high", ticket.id, "agent2", "follow_up")
            assert task.due_at == now + timedelta(hours=15) and task.status == "open"  # 15 h after as_of then
        load(app, bp, demo=True)  # idempotent: no second task
        with app.app_context():
            assert db.session.scalar(select(func.count(Task.id))) == 1
    finally:
        clock.reset()


def test_a_bad_demo_task_line_names_its_place_and_changes_nothing(app, tmp_path):
    bp = copy_of(HELPDESK, tmp_path)
    (bp / "demo" / "tasks.jsonl").write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in (
        {"key": "t1", "task": {"form": "ticket", "record": "ticket-0001", "assignee": "agent1", "title": "好的"}},
        {"key": "t2", "task": {"form": "ticket", "record": "ticket-0001", "assignee": "nobody", "title": "坏的"}},
        {"key": "t3", "task": {"record": "ticket-0001", "assignee": "agent1", "title": "缺表单"}},
    )) + "\n", encoding="utf-8")
    with app.app_context():
        with pytest.raises(loader.BlueprintError) as info:
            loader.load(bp, with_demo=True)
        assert counts() == (0, 0, 0, 0, 0, 0)
    assert any(f == "demo/tasks.jsonl:3" for f, _p, _m in info.value.problems), info.value.problems
    (bp / "demo" / "tasks.jsonl").write_text("\n".join((bp / "demo" / "tasks.jsonl").read_text("utf-8")
                                                       .splitlines()[:2]) + "\n", encoding="utf-8")
    with app.app_context():
        with pytest.raises(loader.BlueprintError) as info:
            loader.load(bp, with_demo=True)
        assert counts() == (0, 0, 0, 0, 0, 0)
    assert [(f, p) for f, p, _m in info.value.problems] == [("demo/tasks.jsonl:2", "/task/assignee")]


def test_saved_trigger_and_within_measure_on_another_domain(app):
    """A rule that derives a value when a ticket is created and whenever its inputs change, and
    "reported within an hour of the outage" as a within measure: nothing about cars."""
    from datetime import datetime, timedelta, timezone

    from formflow import clock
    from formflow.forms import records
    from formflow.reports import compiler
    from formflow.workflow import rules
    load(app, HELPDESK)
    t0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
    with app.test_request_context():
        rules.save({"key": "priority_from_impact", "form": "ticket",
                    "trigger": {"type": "saved", "fields": ["users_affected", "is_outage"]},
                    "actions": [{"type": "set", "values": {
                        "priority": "\"p1\" if is_outage == True or coalesce(users_affected, 0) >= 50 else \"p3\""}}]})
        db.session.commit()
        agent = db.session.scalars(select(User).where(User.username == "agent1")).one()
        base = {"subject": "打印机", "requester": "张三", "status": "new", "category": "hardware",
                "description": "无法打印", "priority": "p4"}
        clock.freeze(t0)
        small = records.create(catalog.get_form("ticket"), {**base, "users_affected": 2}, agent, owner=agent)
        outage = records.create(catalog.get_form("ticket"), {**base, "is_outage": True, "users_affected": 300,
                                                             "outage_start": "2026-11-02T09:30:00+08:00"},
                                agent, owner=agent)
        late = records.create(catalog.get_form("ticket"), {**base, "is_outage": True,
                                                           "outage_start": "2026-11-02T08:00:00+08:00"},
                              agent, owner=agent)
        db.session.commit()
        assert (small.data["priority"], outage.data["priority"], late.data["priority"]) == ("p3", "p1", "p1")
        records.update(small, {"users_affected": 80}, small.version, agent)  # an input changed: derived again
        db.session.commit()
        assert small.data["priority"] == "p1"
        records.update(small, {"priority": "p4"}, small.version, agent)  # not an input: left as the agent set it
        db.session.commit()
        assert small.data["priority"] == "p4"
        clock.freeze(t0 + timedelta(hours=3))
        result = compiler.run({"key": "r", "source": "ticket", "filters": [{"field": "is_outage", "op": "eq",
                                                                            "value": True}],
                               "measures": [{"key": "n", "type": "count"},
                                            {"key": "quick", "type": "within", "from": ["field:outage_start"],
                                             "to": ["created"], "hours": 1}]}, agent)
        clock.reset()
    assert result.rows == [[2, 0.5]]  # reported 30 minutes after its outage began; the other 2 hours after
