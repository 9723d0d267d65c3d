"""for_each over every matching record, in queued batches, narrowed in SQL only where exact (issue 9.7)."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.forms.models import Record
from formflow.people.models import User
from formflow.workflow import fanout, jobs, rules
from formflow.workflow.engine import Context
from formflow.workflow.models import Job, RuleRun

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
CHANNELS = ["showroom", "autohome", "dongchedi", "referral"]


@pytest.fixture
def leads(app, cardealer):
    clock.freeze(T0)
    with app.app_context():
        s1 = db.session.scalars(select(User).where(User.username == "sales1")).one()
        for i in range(23):
            data = {"customer_name": f"客户{i}", "phone": f"1391234{i:04d}", "source_channel": CHANNELS[i % 4],
                    "status": "new"}
            if i % 3:
                data["quality"] = "ab"[i % 2]
            if i % 5 < 2:
                data["accepts_loan"] = i % 5 == 0
            records.create(catalog.get_form("lead"), data, s1, owner=s1)
        db.session.commit()
        yield app
    clock.reset()


def event_rule(where, actions=None):
    rules.save({"key": "touch", "form": "market_event", "trigger": {"type": "created"},
                "actions": [{"type": "for_each", "form": "lead", "where": where,
                             "actions": actions or [{"type": "set", "values": {"notes": '"已触达"'}}]}]})
    records.create(catalog.get_form("market_event"), {"title": "降价", "event_type": "price_cut", "model": "h6",
                                                      "event_date": "2026-11-02"}, None)
    db.session.commit()


def touched():
    return sorted(r.id for r in db.session.scalars(select(Record).join(Record.form).where(
        catalog.Form.key == "lead")) if r.data.get("notes") == "已触达")


def test_every_matching_record_is_processed_in_batches_with_progress(leads, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH", 4)
    event_rule('source_channel != "showroom"')
    assert touched() == []  # nothing inside the request that saved the event
    [job] = db.session.scalars(select(Job).where(Job.kind == "for_each")).all()
    assert jobs.run(job.id, max_batches=2) == "pending"  # handed back after two batches
    assert db.session.get(Job, job.id).done == 8  # progress after two batches
    jobs.run_pending()
    job = db.session.get(Job, job.id)
    expected = [r.id for r in db.session.scalars(select(Record).where(Record.data["source_channel"].as_string()
                                                                      != "showroom"))
                if r.form.key == "lead"]
    assert job.status == "done" and job.total == len(expected) == 17 and job.result["matched"] == 17
    assert touched() == sorted(expected)
    [summary] = db.session.scalars(select(RuleRun).where(RuleRun.trigger.like("for_each%"))).all()
    assert summary.actions[0]["matched"] == 17 and summary.actions[0]["job"] == job.id


def test_one_failing_record_is_logged_and_the_walk_goes_on(leads):
    event_rule("True", [{"type": "set", "values": {"notes": '"已触达" if 1 / (0 if accepts_loan == True else 1) else ""'}}])
    jobs.run_pending()
    job = db.session.scalars(select(Job).where(Job.kind == "for_each")).one()
    loans = 5  # leads 0, 5, 10, 15, 20 accept a loan: their expression divides by zero
    assert job.status == "done" and job.result["matched"] == 23 and job.result["errors"] == loans
    assert len(touched()) == 23 - loans and job.result["first_error"]["error"]


EXPRESSIONS = [
    'source_channel == "autohome"',
    'source_channel != "autohome"',
    'quality != "a"',
    'quality in ["a"] or source_channel == "referral"',
    'quality not in ["a", "b"]',
    'not (quality == "b")',
    'accepts_loan == True',
    'accepts_loan != True and source_channel != "showroom"',
    'accepts_loan == False or accepts_loan == None',
    'source_channel == event.source',
    'quality == "a" and lower(customer_name) != "客户4"',
    'status == "new" and quality == None',
    'source_channel == 1',
    'customer_name < "客户2"',
]


@pytest.mark.parametrize("where", EXPRESSIONS)
def test_the_sql_prefilter_never_changes_what_matches(leads, where):
    form = catalog.get_form("lead")
    event = {"source": "dongchedi"}
    rule = type("R", (), {"key": "x", "id": 0, "revision": 1})()
    ctx = Context(rule=rule, record=None, trigger="test", event=event)
    action = {"where": where}
    everything = db.session.scalars(select(Record).where(Record.form_id == form.id)).all()

    def python_says(r):
        try:
            return fanout.matches(action, ctx, r, event)
        except Exception:  # an expression error counts as no match, in both
            return False

    exact = sorted(r.id for r in everything if python_says(r))
    through = fanout.candidates(form, action, event)
    assert sorted(r.id for r in through if python_says(r)) == exact
    assert len(through) >= len(exact)


def test_the_prefilter_narrows_what_sql_can_express(leads):
    form = catalog.get_form("lead")
    assert fanout.count_candidates(form, {"where": 'source_channel == "autohome"'}, {}) == 6
    assert fanout.count_candidates(form, {"where": 'source_channel == "autohome" and lower(customer_name) != "x"'},
                                   {}) == 6  # the part SQL can say still narrows
    assert fanout.count_candidates(form, {"where": 'lower(customer_name) != "x"'}, {}) == 23
