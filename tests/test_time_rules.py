"""Editing time and cron rules never replays the past (issue 9.1); timers shared across consumers,
missed cron minutes made up once, retention (issue 9.8)."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, func, select, text

from conftest import DB_URL
from formflow import clock
from formflow.extensions import db
from formflow.forms import catalog, records
from formflow.people.models import User
from formflow.workflow import jobs, rules, tasks, timers
from formflow.workflow.models import CronMark, DueEntry, Job, Notification, RuleRun

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=timezone.utc)  # a Monday, 14:00 in Shanghai
LEAD = {"customer_name": "王小明", "source_channel": "showroom", "status": "new"}


@pytest.fixture
def ctx(app, cardealer):
    clock.freeze(T0)
    with app.app_context():
        yield app
    clock.reset()


def user(name):
    return db.session.scalars(select(User).where(User.username == name)).one()


def lead_at(moment, n):
    clock.freeze(moment)
    rec = records.create(catalog.get_form("lead"), {**LEAD, "phone": f"1381234{n:04d}"}, user("sales1"),
                         owner=user("sales1"))
    db.session.commit()
    return rec.id


def reminder(hours=2, title="两小时提醒", enabled=True):
    body = {"key": "remind", "title": {"zh-CN": title}, "form": "lead", "enabled": enabled,
            "trigger": {"type": "time", "from": "created_at", "offset": {"hours": hours}},
            "actions": [{"type": "notify", "to": ["owner"], "title": "跟进 {customer_name}", "channels": ["inbox"]}]}
    rule, _changed = rules.save(body)
    db.session.commit()
    return rule


def sweep_at(moment):
    clock.freeze(moment)
    return timers.sweep()


def notes():
    return db.session.scalar(select(func.count(Notification.id)))


def entries():
    return {e.record_id: e.due_at for e in db.session.scalars(select(DueEntry))}


def test_editing_only_the_title_leaves_the_due_entries_alone(ctx):
    clock.freeze(T0 - timedelta(days=1))
    reminder(hours=2)
    fired = lead_at(T0 - timedelta(hours=5), 1)
    waiting = lead_at(T0 - timedelta(hours=1), 2)
    assert sweep_at(T0 - timedelta(hours=3)) == 1 and notes() == 1  # the first lead's reminder went out
    clock.freeze(T0)
    before = entries()
    reminder(hours=2, title="两小时提醒（改了标题）")
    assert entries() == before and before[waiting] == T0 + timedelta(hours=1) and before[fired] is None
    assert db.session.scalar(select(func.count(Job.id))) == 1  # the rule's creation only
    assert sweep_at(T0) == 0 and notes() == 1  # nothing from the past fires again


def test_changing_the_delay_arms_only_occurrences_after_the_edit_in_a_queued_job(ctx):
    clock.freeze(T0 - timedelta(days=1))
    reminder(hours=10)
    jobs.run_pending()
    past = lead_at(T0 - timedelta(hours=3), 1)     # new timing: due T0-2h, before the edit
    ahead = lead_at(T0 - timedelta(minutes=30), 2)  # new timing: due T0+30min
    clock.freeze(T0)
    rule = reminder(hours=1)
    job = db.session.scalars(select(Job).where(Job.kind == "rearm_rule").order_by(Job.id.desc())).first()
    assert job.status == "pending"  # the rebuild is the queue's work, not the admin's request
    assert sweep_at(T0) == 0  # entries computed for the old timing are recomputed, never fired
    jobs.run_pending()
    assert entries() == {ahead: T0 + timedelta(minutes=30)}
    assert sweep_at(T0 + timedelta(minutes=31)) == 1 and notes() == 1
    assert past not in entries()
    [log] = db.session.scalars(select(RuleRun).where(RuleRun.rule_id == rule.id, RuleRun.record_id.is_(None))
                               .order_by(RuleRun.id.desc()).limit(1)).all()
    assert log.actions == [{"type": "armed", "entries": 1, "first_due": (T0 + timedelta(minutes=30)).isoformat(),
                            "since": T0.isoformat()}]


def test_enabling_a_disabled_rule_does_not_fire_what_fell_due_while_it_was_off(ctx):
    clock.freeze(T0 - timedelta(days=1))
    rule = reminder(hours=2)
    off_time = lead_at(T0 - timedelta(hours=3), 1)
    rules.set_enabled(rule, False)
    db.session.commit()
    assert sweep_at(T0 - timedelta(minutes=30)) == 0  # due while off: the disabled rule does not fire
    later = lead_at(T0 - timedelta(minutes=30), 2)
    clock.freeze(T0)
    rules.set_enabled(rules.get("remind"), True)
    db.session.commit()
    jobs.run_pending()
    assert entries().get(later) == T0 + timedelta(hours=1, minutes=30)
    assert off_time not in entries() or entries()[off_time] is None
    assert sweep_at(T0 + timedelta(minutes=5)) == 0 and notes() == 0


def test_catching_up_is_explicit_and_previewed(ctx):
    clock.freeze(T0 - timedelta(days=4))
    reminder(hours=10)
    missed = lead_at(T0 - timedelta(hours=3), 1)
    lead_at(T0 - timedelta(days=3), 2)  # long before the chosen moment
    clock.freeze(T0)
    rule = reminder(hours=1)
    jobs.run_pending()
    preview = timers.catch_up(rule, T0 - timedelta(days=1), preview=True)
    db.session.commit()
    jobs.run_pending()
    preview = db.session.get(Job, preview.id)
    assert preview.status == "done"
    assert preview.result == {"count": 1, "sample": [{"record": missed, "due": (T0 - timedelta(hours=2)).isoformat()}]}
    assert sweep_at(T0) == 0  # a preview arms nothing
    timers.catch_up(rules.get("remind"), T0 - timedelta(days=1), preview=False)
    db.session.commit()
    jobs.run_pending()
    assert sweep_at(T0 + timedelta(minutes=1)) == 1 and notes() == 1
    assert sweep_at(T0 + timedelta(minutes=2)) == 0


def test_rebuilding_runs_in_batches_in_the_real_queue(app, cardealer, monkeypatch):
    monkeypatch.setattr(jobs, "BATCH", 3)
    clock.freeze(T0)
    try:
        with app.app_context():
            for n in range(8):
                lead_at(T0 - timedelta(minutes=10 * n), n)
            clock.freeze(T0)
            reminder(hours=1)
            [job_id] = db.session.scalars(select(Job.id)).all()
        app.extensions["formflow.queue"].start_consumer(workers=1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with app.app_context():
                job = db.session.get(Job, job_id)
                if job.status == "done":
                    break
            time.sleep(0.1)
        assert (job.status, job.done, job.total) == ("done", 8, 8)
        assert job.result["armed"] == 6  # leads entered less than an hour before the edit
        with app.app_context():
            assert db.session.scalar(select(func.count(DueEntry.id))) == 6
    finally:
        clock.reset()


def test_admin_edits_title_then_delay_of_the_sla_rule_on_the_demo(app, client, auth):
    """Done-when of issue 9: on the demo data, editing first_contact_sla fires nothing for the past."""
    from conftest import CARDEALER, load
    load(app, CARDEALER, demo=True)
    auth.login("admin")
    with app.app_context():
        jobs.run_pending()
        rule = rules.get("first_contact_sla")
        body = dict(rule.body)
        before = {e.record_id: e.due_at for e in db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id))}
        due_now = select(func.count(DueEntry.id)).where(DueEntry.due_at <= clock.now())
        assert db.session.scalar(due_now) == 0
    import json
    form = {"key": body["key"], "form": body["form"], "priority": str(body["priority"]), "enabled": "on",
            "title_zh": "两小时无人联系（标题改了）", "title_en": body["title"]["en"], "condition": body["condition"],
            "trigger": json.dumps(body["trigger"]), "actions": json.dumps(body["actions"])}
    assert client.post("/admin/rules/first_contact_sla", data=form).status_code == 302
    with app.app_context():
        after = {e.record_id: e.due_at for e in db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id))}
        assert after == before and db.session.scalar(due_now) == 0
    form["trigger"] = json.dumps({**body["trigger"], "offset": {"hours": 48}})
    assert client.post("/admin/rules/first_contact_sla", data=form).status_code == 302
    with app.app_context():
        jobs.run_pending()
        assert db.session.scalar(due_now) == 0
        fired = tasks.run_tick()
        assert fired[0] == 0
        log = db.session.scalars(select(RuleRun).where(RuleRun.rule_key == "first_contact_sla",
                                                       RuleRun.record_id.is_(None)).order_by(RuleRun.id.desc())).first()
        assert log.actions[0]["type"] == "armed"
        armed = db.session.scalars(select(DueEntry).where(DueEntry.rule_id == rule.id)).all()
        assert all(e.due_at is None or e.due_at > clock.now() for e in armed)
        assert log.actions[0]["entries"] == sum(e.due_at is not None for e in armed)


# --- cron ----------------------------------------------------------------------------------

def daily_rule(at_created):
    clock.freeze(at_created)
    rule, _ = rules.save({"key": "daily", "form": "lead", "trigger": {"type": "cron", "schedule": "0 9 * * *"},
                          "actions": [{"type": "notify", "to": ["user:manager"], "title": "早会", "channels": ["inbox"]}]})
    db.session.commit()
    return rule


SH = timezone(timedelta(hours=8))


def test_a_cron_minute_no_tick_saw_is_made_up_once(ctx):
    daily_rule(datetime(2026, 11, 2, 8, 0, tzinfo=SH))
    assert timers.run_cron(datetime(2026, 11, 2, 9, 0, tzinfo=SH)) == 1
    # the consumer was down from 08:50 to 09:04 on the next day
    assert timers.run_cron(datetime(2026, 11, 3, 9, 5, tzinfo=SH)) == 1
    assert timers.run_cron(datetime(2026, 11, 3, 9, 6, tzinfo=SH)) == 0
    assert timers.run_cron(datetime(2026, 11, 3, 15, 0, tzinfo=SH)) == 0
    marks = db.session.scalars(select(CronMark.minute).order_by(CronMark.minute)).all()
    assert marks == ["202611020900", "202611030900"]
    triggers = db.session.scalars(select(RuleRun.trigger).where(RuleRun.rule_key == "daily").order_by(RuleRun.id)).all()
    assert triggers == ["cron 202611020900", "cron 202611030900 (made up at 202611030905)"]


def test_a_new_cron_rule_does_not_make_up_minutes_before_it_existed(ctx):
    daily_rule(datetime(2026, 11, 2, 10, 0, tzinfo=SH))
    assert timers.run_cron(datetime(2026, 11, 2, 10, 1, tzinfo=SH)) == 0


# --- consumers ------------------------------------------------------------------------------

@pytest.mark.skipif(not DB_URL.startswith("postgres"), reason="row locks between consumers: PostgreSQL only "
                    "(SQLite has one writer at a time, so two consumers cannot overlap)")
def test_a_second_consumer_skips_the_entry_the_first_one_holds(ctx):
    clock.freeze(T0 - timedelta(days=1))
    reminder(hours=1)
    first = lead_at(T0 - timedelta(hours=3), 1)
    second = lead_at(T0 - timedelta(hours=2), 2)
    clock.freeze(T0)
    db.session.commit()
    other = create_engine(ctx.config["SQLALCHEMY_DATABASE_URI"])
    held = other.connect()
    tx = held.begin()  # consumer 1 is busy firing the first entry
    held.execute(text("SELECT id FROM due_entries WHERE record_id = :r FOR UPDATE"), {"r": first})
    db.session.execute(text("SET lock_timeout = '3s'"))
    done = {}

    def consumer_two():
        with ctx.app_context():
            done["fired"] = timers.sweep(limit=1)
            done["left"] = entries()

    worker = threading.Thread(target=consumer_two)
    worker.start()
    worker.join(timeout=10)
    tx.rollback()
    held.close()
    other.dispose()
    assert done.get("fired") == 1  # it did not wait for the first consumer's row
    assert done["left"][second] is None and done["left"][first] is not None


# --- retention ------------------------------------------------------------------------------

def test_rule_runs_cron_marks_and_jobs_are_kept_for_their_retention(ctx):
    ctx.config.update(RULE_RUN_RETENTION_DAYS=30, CRON_MARK_RETENTION_DAYS=7, JOB_RETENTION_DAYS=7)
    rule = daily_rule(T0 - timedelta(days=40))
    for age in (40, 31, 29, 1):
        db.session.add(RuleRun(rule_id=rule.id, rule_key="daily", trigger="x", at=T0 - timedelta(days=age)))
        db.session.add(CronMark(rule_id=rule.id, minute=(T0 - timedelta(days=age)).astimezone(SH).strftime("%Y%m%d%H%M")))
    db.session.add(Job(kind="rearm_rule", status="done", params={}, state={}, result={}, done=0,
                       created_at=T0 - timedelta(days=8)))
    db.session.commit()
    assert timers.prune(T0) == {"rule_runs": 2, "cron_marks": 3, "jobs": 1}
    ages = sorted(round((T0 - r.at).total_seconds() / 86400) for r in db.session.scalars(select(RuleRun)))
    assert ages == [1, 29]
    assert timers.prune(T0) == {"rule_runs": 0, "cron_marks": 0, "jobs": 0}


def test_the_rule_page_previews_then_confirms_a_catch_up_and_shows_the_work(app, client, auth, cardealer):
    clock.freeze(T0 - timedelta(days=2))
    try:
        with app.app_context():
            reminder(hours=10)
            missed = lead_at(T0 - timedelta(hours=3), 1)
            clock.freeze(T0)
            reminder(hours=1)
            jobs.run_pending()
        auth.login("admin")
        r = client.post("/admin/rules/remind/catch-up", json={"since": "2099-01-01", "preview": True})
        assert r.status_code == 422 and "/since" in r.json["errors"]
        r = client.post("/admin/rules/remind/catch-up", json={"since": "2026-11-01", "preview": True})
        assert r.status_code == 202
        with app.app_context():
            jobs.run_pending()
            assert timers.sweep() == 0  # a preview arms nothing
        job = client.get(r.json["status_url"]).json
        assert job["status"] == "done" and job["result"]["count"] == 1 and job["result"]["sample"][0]["record"] == missed
        r = client.post("/admin/rules/remind/catch-up", json={"since": "2026-11-01", "preview": False})
        with app.app_context():
            jobs.run_pending()
            assert timers.sweep() == 1 and notes() == 1
        page = client.get("/admin/rules/remind").get_data(as_text=True)
        assert "补发" in page and "重新安排" in page  # the catch-up section and the re-arming job, in plain words
        assert "已安排" in page  # the run log says what the timing edit armed
    finally:
        clock.reset()
