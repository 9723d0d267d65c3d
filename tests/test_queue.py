"""Background work on a real huey queue (SQLite file by default, Redis when configured)."""
import time

from sqlalchemy import select

from formflow.extensions import db
from formflow.workflow import queue
from formflow.workflow.models import Heartbeat


def wait_for(fn, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.1)
    return fn()


def test_a_queued_task_runs_in_the_consumer_with_an_app_context(app):
    q = app.extensions["formflow.queue"]
    q.start_consumer(workers=1)
    with app.app_context():
        result = queue.enqueue(queue.beat, "hello from the test")
    # the task returns its note after committing its heartbeat row through the app's database
    assert result.get(blocking=True, timeout=20) == "hello from the test"
    with app.app_context():
        assert db.session.scalars(select(Heartbeat)).first() is not None


def test_backend_follows_the_queue_url(app):
    from huey import RedisHuey, SqliteHuey
    url = app.config["QUEUE_URL"]
    expected = RedisHuey if url.startswith("redis") else SqliteHuey
    assert isinstance(app.extensions["formflow.queue"].huey, expected)


def test_tasks_wait_in_the_queue_until_a_consumer_runs(app):
    with app.app_context():
        queue.enqueue(queue.beat, "queued first")
    huey = app.extensions["formflow.queue"].huey
    assert huey.pending_count() == 1
    app.extensions["formflow.queue"].start_consumer(workers=1)
    assert wait_for(lambda: huey.pending_count() == 0)


def test_bad_queue_url_fails_early_with_a_fix(tmp_path):
    import pytest
    from formflow.factory import create_app
    with pytest.raises(RuntimeError, match="FORMFLOW_QUEUE_URL"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "QUEUE_URL": "amqp://nope"},
                   instance_path=str(tmp_path))
