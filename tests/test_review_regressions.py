"""Defects a review of the issue 9 work found; each test failed before its fix."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.workflow import jobs, rules, timers
from formflow.workflow.models import DueEntry, RuleRun

from test_time_rules import T0, ctx, lead_at, user  # noqa: F401 (ctx is a fixture)


def time_rule(form="lead", hours=3, trigger=None):
    body = {"key": "remind", "title": {"zh-CN": "提醒"}, "form": form,
            "trigger": trigger or {"type": "time", "from": "created_at", "offset": {"hours": hours}},
            "actions": [{"type": "notify", "to": ["owner"], "title": "跟进", "channels": ["inbox"]}]}
    rule, _changed = rules.save(body)
    db.session.commit()
    return rule


def runs_of(rule_id):
    return db.session.scalars(select(RuleRun).where(RuleRun.rule_id == rule_id,
                                                    RuleRun.record_id.is_not(None))).all()


# --- 1. timers: an edit that takes a rule off "time" leaves its entries to fire ------------------

def test_time_rule_turned_into_an_event_rule_does_not_fire_from_old_due_entries(ctx):
    clock.freeze(T0 - timedelta(days=1))
    rule = time_rule(hours=3)
    jobs.run_pending()
    lead_at(T0 - timedelta(hours=1), 1)  # due T0+2h under the time rule
    clock.freeze(T0)
    time_rule(trigger={"type": "created"})  # now an event rule: no time entries should remain
    jobs.run_pending()
    clock.freeze(T0 + timedelta(hours=3))
    fired = timers.sweep()
    assert fired == 0 and runs_of(rule.id) == [], "an event rule fired from a leftover time entry"


def test_moving_a_time_rule_to_another_form_never_fires_it_on_the_old_forms_records(ctx):
    clock.freeze(T0 - timedelta(days=1))
    rule = time_rule(hours=3)
    jobs.run_pending()
    lead = lead_at(T0 - timedelta(hours=1), 1)  # lead entry due T0+2h
    clock.freeze(T0)
    time_rule(form="followup", hours=2)  # the rule now belongs to the follow-up form
    # the sweep meets the lead's stale entry before the queued re-arm job has run
    clock.freeze(T0 + timedelta(hours=2, minutes=1))
    timers.sweep()
    jobs.run_pending()
    clock.freeze(T0 + timedelta(hours=3))
    timers.sweep()
    bad = [r.record_id for r in runs_of(rule.id) if r.record_id == lead]
    left = db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id, DueEntry.record_id == lead)).all()
    assert bad == [] and left == [], "a follow-up rule fired on (or stayed armed for) a lead record"


# --- 2. the sandbox: values the size checks do not see -------------------------------------------

@pytest.mark.parametrize("expression", [
    "len('%(a(b)c)020000000d' % {'a(b)c': 1}) > 0",  # a key with parentheses hides the width from the bound
    "len([b'a'][0] * 10**7) > 0",                     # bytes are not text: repetition unbounded
    "len([b'%020000000d'][0] % 1) > 0",              # ... and bytes formatting too
])
def test_the_sandbox_bounds_every_value_that_can_grow(app, expression):
    from formflow.workflow import expressions
    with app.test_request_context():
        assert expressions.check(expression, {}) != []  # the rule editor says why, instead of "OK" ...
        assert _refused(expressions, expression), "... and run time refuses before building a 10-20 MB value"


def _refused(expressions, expression):
    try:
        expressions.evaluate(expression, {})
    except expressions.ExpressionError:
        return True
    return False


# --- 3. SQLite: a GET that writes (a token's last use) begins deferred ---------------------------

def test_an_api_get_while_another_connection_writes_is_not_a_500(app, cardealer, api):
    import sqlite3
    import time
    from conftest import DB_URL
    if DB_URL.startswith("postgres"):
        pytest.skip("SQLite's deferred BEGIN")
    sales = api("sales1")  # a fresh token: its first use writes last_used_at
    path = app.config["SQLALCHEMY_DATABASE_URI"][len("sqlite:///"):]
    other = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # a queue job's batch holding the write lock for a moment
    other.execute("UPDATE users SET active = active")
    done = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    done.start()
    try:
        started = time.monotonic()
        response = sales.get("/api/v1/forms")
    finally:
        done.join()
        other.close()
    assert response.status_code == 200, (response.status_code, round(time.monotonic() - started, 2))


# --- 4. fan-out: the SQL prefilter must only ever widen ------------------------------------------

DEFEAT = {"customer_name": "李雷", "phone": "13912340000", "intended_model": "h6", "reasons": ["price"],
          "intent_strength": "high"}


@pytest.mark.parametrize("where", [
    'not contains(winback_pool, "nurture")',  # records without the list: Python keeps them
    'followup_count > 2',                      # 3.0 is a valid JSON-Schema integer
])
def test_the_prefilter_keeps_every_record_python_matches(app, cardealer, where):
    from formflow.forms.models import Record
    from formflow.workflow import fanout
    from formflow.workflow.engine import Context
    with app.app_context():
        form = catalog.get_form("defeat")
        data = {**DEFEAT, "never_visited": True}
        for extra in ({"followup_count": 1, "winback_pool": ["nurture"]}, {"followup_count": 3.0},
                      {"followup_count": 5}):
            records.create(form, {**data, **extra}, user("sales1"), owner=user("sales1"))
        db.session.commit()
        rule = type("R", (), {"key": "x", "id": 0, "revision": 1})()
        ctx = Context(rule=rule, record=None, trigger="test", event={})
        action = {"where": where}
        everything = db.session.scalars(select(Record).where(Record.form_id == form.id)).all()
        exact = sorted(r.id for r in everything if fanout.matches(action, ctx, r, {}))
        assert len(exact) == 2
        through = sorted(r.id for r in fanout.candidates(form, action, {}))  # the job's own query
        assert set(exact) <= set(through), (exact, through)
