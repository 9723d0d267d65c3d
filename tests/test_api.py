"""REST API v1 through real HTTP requests on Flask's client."""
import json
import re


LEAD = {"customer_name": "王小明", "phone": "13812345678", "source_channel": "showroom", "status": "new"}


def test_token_is_required(client, cardealer):
    r = client.get("/api/v1/forms")
    assert r.status_code == 401
    assert r.json["error"]["code"] == 401
    assert client.get("/api/v1/forms", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_list_and_get_forms(api, cardealer):
    a = api("sales1")
    r = a.get("/api/v1/forms")
    assert r.status_code == 200
    keys = {f["key"] for f in r.json["forms"]}
    assert {"lead", "defeat"} <= keys
    r = a.get("/api/v1/forms/lead")
    assert r.json["schema"]["properties"]["phone"]["format"] == "cn-mobile"
    assert r.json["version"] == 1 and "sections" in r.json["ui"]
    assert a.get("/api/v1/forms/nope").status_code == 404


def test_create_read_patch_delete_restore(api, cardealer):
    a = api("sales1")
    r = a.post("/api/v1/forms/lead/records", json={"data": LEAD})
    assert r.status_code == 201, r.json
    rec = r.json
    assert rec["data"]["phone"] == "13812345678" and rec["version"] == 1
    assert rec["owner"]["username"] == "sales1"
    assert r.headers["ETag"] == '"1"'
    rid = rec["id"]
    assert a.get(f"/api/v1/records/{rid}").json["data"]["customer_name"] == "王小明"

    r = a.patch(f"/api/v1/records/{rid}", json={"data": {"quality": "a"}}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.json
    assert r.json["version"] == 2 and r.json["data"]["quality"] == "a"

    r = a.delete(f"/api/v1/records/{rid}")
    assert r.status_code == 200 and r.json["deleted"] is True
    listed = a.get("/api/v1/forms/lead/records").json
    assert rid not in [x["id"] for x in listed["records"]]
    assert rid in [x["id"] for x in a.get("/api/v1/forms/lead/records?deleted=true").json["records"]]
    r = a.post(f"/api/v1/records/{rid}/restore")
    assert r.status_code == 200 and r.json["deleted"] is False
    history = a.get(f"/api/v1/records/{rid}/history").json["history"]
    assert [h["action"] for h in history] == ["create", "update", "delete", "restore"]
    assert history[1]["changes"] == {"quality": [None, "a"]}


def test_validation_errors_are_json_pointers_in_the_users_language(api, cardealer):
    a = api("sales1")
    r = a.post("/api/v1/forms/lead/records",
               json={"data": {"customer_name": "李", "phone": "12345", "status": "invited", "source_channel": "showroom"}})
    assert r.status_code == 422
    errors = r.json["errors"]
    assert errors["/data/phone"] == ["请输入有效的中国大陆手机号码（11位）"]
    assert "/data/appointment_at" in errors  # required when status is invited
    r = a.post("/api/v1/forms/lead/records", json={"data": {**LEAD, "nonsense": 1}})
    assert r.status_code == 422 and "/data/nonsense" in r.json["errors"]
    assert a.get("/api/v1/forms/lead/records").json["total"] == 0


def test_bad_requests_are_clean_4xx_and_write_nothing(api, cardealer):
    a = api("sales1")
    url = "/api/v1/forms/lead/records"
    r = a.post(url, data="{not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json["error"]["message"]
    r = a.post(url, data="customer_name=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415
    r = a.post(url, data=json.dumps({"data": {**LEAD, "notes": "x" * (1024 * 1024)}}), content_type="application/json")
    assert r.status_code == 413 and r.json["error"]["code"] == 413
    r = a.post(url, json={"data": LEAD, "extra": True})
    assert r.status_code == 422 and "/extra" in r.json["errors"]
    r = a.post(url, json=[1, 2])
    assert r.status_code == 400
    assert a.get(url).json["total"] == 0


def test_idempotency_key_returns_the_first_record(api, cardealer):
    a = api("sales1")
    headers = {"Idempotency-Key": "abc-123"}
    first = a.post("/api/v1/forms/lead/records", json={"data": LEAD}, headers=headers)
    again = a.post("/api/v1/forms/lead/records", json={"data": LEAD}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json["id"] == again.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert a.get("/api/v1/forms/lead/records").json["total"] == 1
    other = a.post("/api/v1/forms/lead/records", json={"data": {**LEAD, "customer_name": "别人"}}, headers=headers)
    assert other.status_code == 409


def test_patch_needs_if_match_and_refuses_stale_versions(api, cardealer):
    a = api("sales1")
    rid = a.post("/api/v1/forms/lead/records", json={"data": LEAD}).json["id"]
    assert a.patch(f"/api/v1/records/{rid}", json={"data": {"quality": "b"}}).status_code == 428
    assert a.patch(f"/api/v1/records/{rid}", json={"data": {"quality": "b"}}, headers={"If-Match": "1"}).status_code == 200
    r = a.patch(f"/api/v1/records/{rid}", json={"data": {"quality": "c"}}, headers={"If-Match": "1"})
    assert r.status_code == 412
    assert r.json["record"]["version"] == 2 and r.json["record"]["data"]["quality"] == "b"
    assert a.get(f"/api/v1/records/{rid}").json["data"]["quality"] == "b"
    r = a.patch(f"/api/v1/records/{rid}", json={"data": {"phone": "bad"}}, headers={"If-Match": "2"})
    assert r.status_code == 422 and "/data/phone" in r.json["errors"]
    assert a.get(f"/api/v1/records/{rid}").json["version"] == 2


def test_duplicate_phone_is_linked_and_owner_named(api, cardealer):
    first = api("sales1").post("/api/v1/forms/lead/records", json={"data": LEAD}).json
    r = api("sales2").post("/api/v1/forms/lead/records",
                           json={"data": {**LEAD, "customer_name": "王先生", "source_channel": "autohome"}})
    assert r.status_code == 201
    assert r.json["duplicate_of"] == first["id"]
    warning = r.json["warnings"][0]
    assert warning["code"] == "duplicate" and warning["owner"]["username"] == "sales1"
    assert "王磊" in warning["message"]


def test_row_level_access_in_the_api(api, cardealer):
    rid = api("sales1").post("/api/v1/forms/lead/records", json={"data": LEAD}).json["id"]
    other = api("sales2")
    assert other.get(f"/api/v1/records/{rid}").status_code == 404
    assert other.patch(f"/api/v1/records/{rid}", json={"data": {}}, headers={"If-Match": "1"}).status_code == 404
    assert other.delete(f"/api/v1/records/{rid}").status_code == 404
    assert other.get("/api/v1/forms/lead/records?q=13812345678").json["total"] == 0
    assert api("manager").get(f"/api/v1/records/{rid}").status_code == 200
    assert api("admin").get(f"/api/v1/records/{rid}").status_code == 200


def test_users_endpoint_is_for_admins(api, cardealer):
    assert api("sales1").get("/api/v1/users").status_code == 403
    users = api("admin").get("/api/v1/users").json["users"]
    assert {"admin", "manager", "sales1"} <= {u["username"] for u in users}
    assert all("password" not in json.dumps(u) for u in users)


def test_list_filters_search_sort_and_pages(api, cardealer):
    a = api("sales1")
    for i in range(25):
        data = {**LEAD, "customer_name": f"客户{i:02d}", "phone": f"1381234{i:04d}",
                "quality": "a" if i % 5 == 0 else "b", "body_type": "suv" if i % 2 else "sedan"}
        assert a.post("/api/v1/forms/lead/records", json={"data": data}).status_code == 201
    page = a.get("/api/v1/forms/lead/records?per_page=10&page=3&sort=customer_name").json
    assert page["total"] == 25 and page["pages"] == 3
    assert [r["data"]["customer_name"] for r in page["records"]] == [f"客户{i:02d}" for i in range(20, 25)]
    assert a.get("/api/v1/forms/lead/records?filter[quality]=a").json["total"] == 5
    assert a.get("/api/v1/forms/lead/records?filter[quality]=a&filter[body_type]=suv").json["total"] == 2
    assert a.get("/api/v1/forms/lead/records?q=客户07").json["total"] == 1
    assert a.get("/api/v1/forms/lead/records?q=0013").json["records"][0]["data"]["phone"] == "13812340013"
    r = a.get("/api/v1/forms/lead/records?filter[nope]=1")
    assert r.status_code == 400 and "filter[nope]" in r.json["errors"]
    assert a.get("/api/v1/forms/lead/records?sort=drop table").status_code == 400


def test_multiselect_filter_matches_contained_values(api, cardealer):
    a = api("admin")
    base = {"customer_name": "赵", "phone": "13912345678", "lead": None}
    lead = a.post("/api/v1/forms/lead/records", json={"data": LEAD}).json["id"]
    defeat = {"lead": lead, "customer_name": "赵", "phone": "13912345678", "intended_model": "途观L",
              "first_visit_date": "2026-10-01", "followup_count": 3, "reasons": ["price", "competitor"],
              "intent_strength": "high", "reason_notes": "比别家贵五千", "winback_angle": "月底有贴息",
              "expected_next_purchase_date": "2027-03-01"}
    r = a.post("/api/v1/forms/defeat/records", json={"data": defeat})
    assert r.status_code == 201, r.json
    assert a.get("/api/v1/forms/defeat/records?filter[reasons]=competitor").json["total"] == 1
    assert a.get("/api/v1/forms/defeat/records?filter[reasons]=sales_service").json["total"] == 0
    del base


def test_openapi_document_is_valid_and_covers_every_route(app, client):
    from openapi_spec_validator import validate
    doc = client.get("/api/v1/openapi.json").json
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {(path, m) for path, ops in doc["paths"].items() for m in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method.lower()) in documented, (path, method)


def test_responses_match_the_openapi_schemas(client, api, cardealer):
    from jsonschema import Draft202012Validator
    doc = client.get("/api/v1/openapi.json").json

    def check(name, instance):
        schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
        errors = list(Draft202012Validator(schema).iter_errors(instance))
        assert errors == [], (name, [e.message for e in errors])

    a = api("sales1")
    created = a.post("/api/v1/forms/lead/records", json={"data": LEAD})
    check("CreatedRecord", created.json)
    rid = created.json["id"]
    check("Record", a.get(f"/api/v1/records/{rid}").json)
    check("RecordPage", a.get("/api/v1/forms/lead/records").json)
    check("FormDetail", a.get("/api/v1/forms/lead").json)
    check("ValidationError", a.post("/api/v1/forms/lead/records", json={"data": {}}).json)
    check("StaleRecord", a.patch(f"/api/v1/records/{rid}", json={"data": {}}, headers={"If-Match": "9"}).json)
    check("Error", a.get("/api/v1/records/99999").json)
    for u in api("admin").get("/api/v1/users").json["users"]:
        check("User", u)
    for h in a.get(f"/api/v1/records/{rid}/history").json["history"]:
        check("Change", h)


RULE = {"key": "douyin_suv", "form": "lead", "trigger": {"type": "created"},
        "condition": 'source_channel == "douyin_dm" and budget == "budget_8_12"',
        "actions": [{"type": "assign", "strategies": [
            {"strategy": "skill", "skills": ["SUV"], "team": "store1_sales", "cap": 15}]}]}


def test_rules_api_create_check_dry_run_and_runs(api, cardealer):
    admin = api("admin")
    assert api("sales1").get("/api/v1/rules").status_code == 403
    bad = admin.post("/api/v1/rules", json={**RULE, "condition": 'source_channel = "douyin_dm"'})
    assert bad.status_code == 422 and "/condition" in bad.json["errors"]
    r = admin.post("/api/v1/rules", json=RULE)
    assert r.status_code == 201 and r.json["revision"] == 1
    assert admin.post("/api/v1/rules", json=RULE).status_code == 409
    r = admin.put("/api/v1/rules/douyin_suv", json={**RULE, "priority": 5})
    assert r.status_code == 200 and r.json["revision"] == 2 and r.json["priority"] == 5
    lead = admin.post("/api/v1/forms/lead/records", json={"data": {**LEAD, "source_channel": "douyin_dm",
                                                                   "budget": "budget_8_12"}}).json
    assert lead["owner"] is not None  # assigned by the rule
    runs = admin.get(f"/api/v1/records/{lead['id']}/runs").json["runs"]
    assert runs[0]["rule"] == "douyin_suv" and runs[0]["matched"] is True
    assert "skill" in runs[0]["actions"][0]["why"]
    dry = admin.post("/api/v1/rules/douyin_suv/dry-run", json={"record": lead["id"]})
    assert dry.status_code == 200 and dry.json["matched"] is True
    assert admin.get("/api/v1/rules/douyin_suv/runs").json["runs"][0]["record"] == lead["id"]
    assert admin.get("/api/v1/rules").json["rules"][0]["key"] == "douyin_suv"


def test_expression_check_endpoint(api, cardealer):
    a = api("admin")
    ok = a.post("/api/v1/expressions/check", json={"form": "lead", "expression": 'quality == "a"'}).json
    assert ok == {"ok": True, "errors": []}
    bad = a.post("/api/v1/expressions/check", json={"form": "lead", "expression": 'qualty == "a"'}).json
    assert bad["ok"] is False and bad["errors"][0]["col"] == 1
    assert a.post("/api/v1/expressions/check", json={"form": "nope", "expression": "1"}).status_code == 422
