"""A token's last_used_at (issue 9.8): every API request, GETs included, keeps it current to the
minute, with at most one small write a minute per token rather than one per request."""
from datetime import timedelta

from sqlalchemy import event, select

from formflow import clock
from formflow.extensions import db
from formflow.people.models import ApiToken


def stored(app):
    with app.app_context():
        return db.session.scalars(select(ApiToken.last_used_at)).one()


def test_last_used_at_is_written_at_most_once_a_minute(app, api, cardealer):
    a = api("sales1")
    writes = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE API_TOKENS"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert stored(app) is None
        assert a.get("/api/v1/forms").status_code == 200
        first = stored(app)
        assert first is not None and abs(first - clock.now()) < timedelta(seconds=5)  # committed, GET or not
        assert a.get("/api/v1/forms").status_code == 200
        assert a.get("/api/v1/forms/lead").status_code == 200
        assert len(writes) == 1 and stored(app) == first

        clock.advance(timedelta(minutes=2))
        assert a.get("/api/v1/forms").status_code == 200
        assert a.get("/api/v1/forms").status_code == 200
        assert len(writes) == 2
        assert stored(app) - first >= timedelta(minutes=2)
        assert a.get("/api/v1/forms", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert len(writes) == 2
    finally:
        event.remove(engine, "before_cursor_execute", count)
        clock.reset()


def test_a_refused_request_still_notes_the_use_and_saves_nothing_else(app, api, cardealer):
    a = api("sales1")
    r = a.post("/api/v1/forms/lead/records", json={"data": {"customer_name": "王", "phone": "12"}})
    assert r.status_code == 422
    assert stored(app) is not None
    assert a.get("/api/v1/forms/lead/records").json["total"] == 0
