"""Many leads at once, over real HTTP: the assignment cap holds and nothing is lost."""
import json
import threading
import urllib.error
import urllib.request

from sqlalchemy import func, select

from formflow.extensions import db
from formflow.forms.models import Record
from formflow.workflow import rules
from conftest import token_for

CAP = 3


def post(url, token, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status


def test_the_cap_holds_under_concurrent_creation(app, cardealer, live):
    with app.app_context():
        rules.save({"key": "round_robin", "form": "lead", "trigger": {"type": "created"}, "actions": [
            {"type": "assign", "open": {"field": "status", "not_in": ["won", "defeated"]},
             "strategies": [{"strategy": "least_loaded", "team": "store1_sales", "cap": CAP}]}]})
        db.session.commit()
    token = token_for(app, "admin")
    n, statuses, errors = 40, [], []

    def worker(i):
        try:
            statuses.append(post(f"{live.url}/api/v1/forms/lead/records", token, {"data": {
                "customer_name": f"客户{i}", "phone": f"1371234{i:04d}", "source_channel": "douyin_dm",
                "status": "new"}}))
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and statuses == [201] * n
    with app.app_context():
        per_owner = dict(db.session.execute(select(Record.owner_id, func.count()).where(Record.owner_id.is_not(None))
                                            .group_by(Record.owner_id)).all())
        total = db.session.scalar(select(func.count(Record.id)))
        from formflow.people.models import Team, User
        sales = db.session.scalar(select(func.count(User.id)).join(Team).where(Team.key == "store1_sales",
                                                                               User.role == "sales"))
    assert total == n
    assert max(per_owner.values()) <= CAP
    assert sum(per_owner.values()) == min(n, CAP * sales)  # everyone filled up to the cap, no more


def test_the_same_lead_updated_by_many_at_once_has_one_winner(app, cardealer, live):
    token = token_for(app, "admin")
    created = post(f"{live.url}/api/v1/forms/lead/records", token, {"data": {
        "customer_name": "抢改", "phone": "13712345678", "source_channel": "showroom", "status": "new"}})
    assert created == 201
    with app.app_context():
        rid = db.session.scalar(select(Record.id))
    codes = []

    def patch(i):
        req = urllib.request.Request(f"{live.url}/api/v1/records/{rid}", method="PATCH",
                                     data=json.dumps({"data": {"notes": f"writer {i}"}}).encode(),
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                              "If-Match": "1"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                codes.append(resp.status)
        except urllib.error.HTTPError as err:
            codes.append(err.code)

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [412] * 9
    with app.app_context():
        rec = db.session.get(Record, rid)
        assert rec.version == 2 and rec.data["notes"].startswith("writer ")
        assert len(rec.history) == 2
