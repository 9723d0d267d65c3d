"""The OpenAPI 3.1 description of API v1, served at /api/v1/openapi.json."""
from flask import jsonify

from ..version import __version__
from . import bp

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes):
    text = {400: "Malformed request", 401: "Missing or invalid bearer token", 403: "Not allowed",
            404: "Not found or not visible to you", 409: "Idempotency-Key reused with a different body",
            412: "Version mismatch; the body carries the current record", 413: "Body larger than 1 MiB",
            415: "Content-Type is not application/json", 422: "Invalid values, by JSON pointer",
            428: "If-Match missing"}
    out = {}
    for c in codes:
        schema = {"$ref": "#/components/schemas/ValidationError"} if c == 422 else (
            {"$ref": "#/components/schemas/StaleRecord"} if c == 412 else ERROR)
        out[str(c)] = _json(schema, text[c])
    return out


RECORD_ID = {"name": "record_id", "in": "path", "required": True, "schema": {"type": "integer"}}
FORM_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
RECORD = {"$ref": "#/components/schemas/Record"}
RANGE = [{"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
          "description": "First day (in the business time zone, the TIMEZONE setting) of records to count"},
         {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}, "description": "Last day"},
         {"name": "date_field", "in": "query", "schema": {"type": "string", "default": "created_at"},
          "description": "The date or date-time field of the report's form the range applies to; "
                         "another name is a 422 naming date_field"}]
RECORD_OK = {"description": "The record", "headers": {"ETag": {"schema": {"type": "string"},
                                                              "description": "The record's version, quoted"}},
             "content": {"application/json": {"schema": RECORD}}}


def document():
    return {
        "openapi": "3.1.0",
        "info": {"title": "Formflow API", "version": __version__,
                 "description": "Forms, records and people. Authenticate with `Authorization: Bearer <token>` "
                                "(create one with `flask --app app token create USERNAME`). Every record "
                                "response is limited to what the token's user may see."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/forms": {"get": {"operationId": "listForms", "summary": "Forms with a published version",
                               "responses": {"200": _json({"type": "object", "properties": {"forms": {
                                   "type": "array", "items": {"$ref": "#/components/schemas/FormSummary"}}}},
                                   "The forms"), **_errors(401)}}},
            "/forms/{key}": {"get": {"operationId": "getForm", "summary": "A form's current published definition",
                                     "parameters": [FORM_KEY],
                                     "responses": {"200": _json({"$ref": "#/components/schemas/FormDetail"},
                                                                "JSON Schema, UI document and settings"),
                                                   **_errors(401, 404)}}},
            "/forms/{key}/records": {
                "post": {"operationId": "createRecord", "summary": "Capture a record",
                         "description": "Fields the body leaves out take the calling token's defaults for this form "
                                        "(flask token create --default FORM.FIELD=VALUE), e.g. a platform feed's channel.",
                         "parameters": [FORM_KEY, {"name": "Idempotency-Key", "in": "header", "required": False,
                                                   "description": "A retried request with the same key returns the "
                                                                  "first record instead of creating another",
                                                   "schema": {"type": "string", "maxLength": 200}}],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/RecordInput"}}}},
                         "responses": {"201": {**RECORD_OK, "description": "Created (or replayed; then the header "
                                                                           "Idempotent-Replayed is true)",
                                               "content": {"application/json": {"schema": {
                                                   "$ref": "#/components/schemas/CreatedRecord"}}}},
                                       **_errors(400, 401, 404, 409, 413, 415, 422)}},
                "get": {"operationId": "listRecords", "summary": "Records you may see, filtered and paged",
                        "parameters": [
                            FORM_KEY,
                            {"name": "q", "in": "query", "schema": {"type": "string"},
                             "description": "Search the form's search fields (e.g. name, phone)"},
                            {"name": "filter", "in": "query", "style": "deepObject", "explode": True,
                             "schema": {"type": "object", "additionalProperties": {"type": "string"}},
                             "description": "filter[field]=value; a multi-select field matches when it contains value"},
                            {"name": "owner", "in": "query", "schema": {"type": "string"}},
                            {"name": "sort", "in": "query", "schema": {"type": "string", "default": "-created_at"},
                             "description": "A field, created_at, updated_at or id; prefix - for descending"},
                            {"name": "page", "in": "query",
                             "schema": {"type": "integer", "minimum": 1, "maximum": 10**9, "default": 1}},
                            {"name": "per_page", "in": "query",
                             "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20}},
                            {"name": "deleted", "in": "query", "schema": {"type": "boolean"},
                             "description": "true lists soft-deleted records instead"}],
                        "responses": {"200": _json({"$ref": "#/components/schemas/RecordPage"}, "One page"),
                                      **_errors(400, 401, 404)}},
            },
            "/records/{record_id}": {
                "get": {"operationId": "getRecord", "parameters": [RECORD_ID],
                        "responses": {"200": RECORD_OK, **_errors(401, 404)}},
                "patch": {"operationId": "updateRecord", "summary": "Change some field values",
                          "parameters": [RECORD_ID, {"name": "If-Match", "in": "header", "required": True,
                                                     "schema": {"type": "string"},
                                                     "description": "The version you read (ETag)"}],
                          "requestBody": {"required": True, "content": {"application/json": {"schema": {
                              "$ref": "#/components/schemas/RecordPatch"}}}},
                          "responses": {"200": RECORD_OK, **_errors(400, 401, 404, 412, 413, 415, 422, 428)}},
                "delete": {"operationId": "deleteRecord", "summary": "Soft delete (restorable)",
                           "parameters": [RECORD_ID, {"name": "If-Match", "in": "header", "required": False,
                                                      "schema": {"type": "string"}}],
                           "responses": {"200": RECORD_OK, **_errors(401, 404, 412)}},
            },
            "/records/{record_id}/restore": {
                "post": {"operationId": "restoreRecord", "parameters": [RECORD_ID],
                         "responses": {"200": RECORD_OK, **_errors(401, 404)}}},
            "/records/{record_id}/history": {
                "get": {"operationId": "recordHistory", "summary": "The append-only change history",
                        "parameters": [RECORD_ID],
                        "responses": {"200": _json({"type": "object", "properties": {"history": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Change"}}}}, "History"),
                            **_errors(401, 404)}}},
            "/users": {"get": {"operationId": "listUsers", "summary": "All users (admins only)",
                               "responses": {"200": _json({"type": "object", "properties": {"users": {
                                   "type": "array", "items": {"$ref": "#/components/schemas/User"}}}}, "Users"),
                                   **_errors(401, 403)}}},
            "/rules": {
                "get": {"operationId": "listRules", "summary": "Workflow rules (admins)",
                        "parameters": [{"name": "form", "in": "query", "schema": {"type": "string"}}],
                        "responses": {"200": _json({"type": "object", "properties": {"rules": {
                            "type": "array", "items": {"$ref": "#/components/schemas/Rule"}}}}, "Rules"),
                            **_errors(401, 403)}},
                "post": {"operationId": "createRule", "summary": "Create a rule (checked against its form first)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "$ref": "#/components/schemas/RuleInput"}}}},
                         "responses": {"201": _json({"$ref": "#/components/schemas/Rule"}, "Created"),
                                       **_errors(400, 401, 403, 409, 413, 415, 422)}},
            },
            "/rules/{key}": {
                "get": {"operationId": "getRule", "parameters": [FORM_KEY],
                        "responses": {"200": _json({"$ref": "#/components/schemas/Rule"}, "The rule"),
                                      **_errors(401, 403, 404)}},
                "put": {"operationId": "updateRule", "summary": "Change a rule (adds a revision)",
                        "parameters": [FORM_KEY],
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "$ref": "#/components/schemas/RuleInput"}}}},
                        "responses": {"200": _json({"$ref": "#/components/schemas/Rule"}, "Saved"),
                                      **_errors(400, 401, 403, 404, 413, 415, 422)}},
            },
            "/rules/{key}/dry-run": {
                "post": {"operationId": "dryRunRule", "summary": "What the rule would do to a record; nothing is kept",
                         "parameters": [FORM_KEY],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["record"], "additionalProperties": False,
                             "properties": {"record": {"type": "integer"}}}}}},
                         "responses": {"200": _json({"$ref": "#/components/schemas/DryRun"}, "The outcome"),
                                       **_errors(400, 401, 403, 404, 415, 422)}}},
            "/rules/{key}/simulate": {
                "post": {"operationId": "simulateRule",
                         "summary": "Queue a replay of a rule over the records created in a past date range; nothing is kept",
                         "parameters": [FORM_KEY],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["from", "to"], "additionalProperties": False,
                             "properties": {"from": {"type": "string", "format": "date"},
                                            "to": {"type": "string", "format": "date"}}}}}},
                         "responses": {"202": _json({"$ref": "#/components/schemas/Job"},
                                                    "Queued: poll the job (Location) for progress and the outcome counts"),
                             **_errors(400, 401, 403, 404, 415, 422)}}},
            "/jobs/{job_id}": {
                "get": {"operationId": "getJob", "summary": "A background job: status, progress and result",
                        "parameters": [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                        "responses": {"200": _json({"$ref": "#/components/schemas/Job"}, "The job"),
                                      **_errors(401, 403, 404)}}},
            "/rules/{key}/runs": {
                "get": {"operationId": "ruleRuns", "summary": "The rule's run log, newest first",
                        "parameters": [FORM_KEY, {"name": "limit", "in": "query",
                                                  "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                                             "default": 100}}],
                        "responses": {"200": _json({"type": "object", "properties": {"runs": {
                            "type": "array", "items": {"$ref": "#/components/schemas/RuleRun"}}}}, "Runs"),
                            **_errors(400, 401, 403, 404)}}},
            "/records/{record_id}/runs": {
                "get": {"operationId": "recordRuns", "summary": "Every rule firing on a record: why it is as it is",
                        "parameters": [RECORD_ID],
                        "responses": {"200": _json({"type": "object", "properties": {"runs": {
                            "type": "array", "items": {"$ref": "#/components/schemas/RuleRun"}}}}, "Runs"),
                            **_errors(401, 404)}}},
            "/records/{record_id}/rules/{key}": {
                "post": {"operationId": "pressRule", "summary": "Run a manual rule on a record",
                         "parameters": [RECORD_ID, FORM_KEY],
                         "responses": {"200": _json({"$ref": "#/components/schemas/RuleRun"}, "The run"),
                                       **_errors(401, 404)}}},
            "/expressions/check": {
                "post": {"operationId": "checkExpression",
                         "summary": "Check an expression against a form: syntax, fields, types, with positions",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["form", "expression"], "additionalProperties": False,
                             "properties": {"form": {"type": "string"}, "expression": {"type": "string"}}}}}},
                         "responses": {"200": _json({"type": "object", "properties": {
                             "ok": {"type": "boolean"}, "errors": {"type": "array", "items": {
                                 "type": "object", "properties": {"message": {"type": "string"},
                                                                  "line": {"type": ["integer", "null"]},
                                                                  "col": {"type": ["integer", "null"]}}}}}},
                             "The verdict"), **_errors(400, 401, 415, 422)}}},
            "/reports": {"get": {"operationId": "listReports", "summary": "Saved report definitions",
                                 "responses": {"200": _json({"type": "object", "properties": {"reports": {
                                     "type": "array", "items": {"$ref": "#/components/schemas/Report"}}}}, "Reports"),
                                     **_errors(401)}}},
            "/reports/{key}": {"get": {"operationId": "getReport", "parameters": [FORM_KEY],
                                       "responses": {"200": _json({"$ref": "#/components/schemas/Report"}, "The definition"),
                                                     **_errors(401, 404)}}},
            "/reports/{key}/data": {"get": {
                "operationId": "reportData", "summary": "The report's rows, counting only records you may see",
                "parameters": [FORM_KEY, *RANGE],
                "responses": {"200": _json({"$ref": "#/components/schemas/ReportData"}, "Rows"), **_errors(401, 404, 422)}}},
            "/reports/preview": {"post": {
                "operationId": "previewReport", "summary": "Run an unsaved definition",
                "parameters": RANGE,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Report"}}}},
                "responses": {"200": _json({"$ref": "#/components/schemas/ReportData"}, "Rows"),
                              **_errors(400, 401, 413, 415, 422)}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document (no token needed)",
                                      "security": [],
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
    }


TEXT = {"type": "object", "additionalProperties": {"type": "string"}, "description": "Text per locale"}
USER_REF = {"type": ["object", "null"], "properties": {"username": {"type": "string"},
                                                       "display_name": {"type": "string"}}}
SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {
        "error": {"type": "object", "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"},
            "request_id": {"type": "string", "description": "On a 5xx: quote it (also the X-Request-Id header)"}}},
        "errors": {"type": "object", "description": "The bad parameter → messages",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
    "ValidationError": {"type": "object", "required": ["errors"], "properties": {
        "error": {"type": "object"},
        "errors": {"type": "object", "description": "JSON pointer into the request body → messages",
                   "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
    "Job": {"type": "object", "required": ["id", "kind", "status", "done"], "properties": {
        "id": {"type": "integer"}, "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "running", "done", "failed", "superseded"]},
        "done": {"type": "integer"}, "total": {"type": ["integer", "null"]},
        "result": {"type": "object", "description": "simulations: records, matched, errors, actions, owners"},
        "error": {"type": ["string", "null"]}, "created_at": {"type": ["string", "null"], "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"}}},
    "StaleRecord": {"type": "object", "properties": {"error": {"type": "object"},
                                                     "record": {"$ref": "#/components/schemas/Record"}}},
    "FormSummary": {"type": "object", "properties": {"key": {"type": "string"}, "title": TEXT,
                                                     "version": {"type": ["integer", "null"]}}},
    "FormDetail": {"type": "object", "properties": {
        "key": {"type": "string"}, "title": TEXT, "version": {"type": "integer"},
        "schema": {"type": "object", "description": "JSON Schema draft 2020-12"},
        "ui": {"type": "object"}, "settings": {"type": "object"},
        "published_at": {"type": "string", "format": "date-time"}}},
    "Record": {"type": "object", "properties": {
        "id": {"type": "integer"}, "form": {"type": "string"}, "form_version": {"type": "integer"},
        "version": {"type": "integer"}, "title": {"type": "string"}, "data": {"type": "object"},
        "owner": USER_REF, "created_by": USER_REF,
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "deleted": {"type": "boolean"}, "deleted_at": {"type": ["string", "null"], "format": "date-time"},
        "duplicate_of": {"type": ["integer", "null"]}}},
    "CreatedRecord": {"allOf": [{"$ref": "#/components/schemas/Record"}, {"type": "object", "properties": {
        "warnings": {"type": "array", "items": {"type": "object", "properties": {
            "code": {"const": "duplicate"}, "record": {"type": "integer"}, "owner": USER_REF,
            "message": {"type": "string"}}}}}}]},
    "RecordInput": {"type": "object", "required": ["data"], "additionalProperties": False, "properties": {
        "data": {"type": "object", "description": "Field values, validated by the form's JSON Schema"},
        "owner": {"type": ["string", "null"], "description": "Username; default you (sales, managers) or none"}}},
    "RecordPatch": {"type": "object", "additionalProperties": False, "properties": {
        "data": {"type": "object", "description": "Changed fields; null removes a value"},
        "owner": {"type": ["string", "null"]}}},
    "RecordPage": {"type": "object", "properties": {
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
        "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"},
        "pages": {"type": "integer"}}},
    "Change": {"type": "object", "properties": {
        "version": {"type": "integer"}, "action": {"enum": ["create", "update", "delete", "restore"]},
        "user": USER_REF, "at": {"type": "string", "format": "date-time"},
        "changes": {"type": "object", "description": "field → [before, after]"}}},
    "RuleInput": {"type": "object", "required": ["key", "form", "trigger", "actions"],
                  "description": "A rule definition: the same format as a blueprint's rules/*.json"},
    "Rule": {"type": "object", "properties": {
        "key": {"type": "string"}, "form": {"type": "string"}, "trigger": {"type": "object"},
        "condition": {"type": "string"}, "actions": {"type": "array", "items": {"type": "object"}},
        "priority": {"type": "integer"}, "enabled": {"type": "boolean"}, "revision": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"}}},
    "DryRun": {"type": "object", "properties": {"matched": {"type": ["boolean", "null"]},
                                                "actions": {"type": "array", "items": {"type": "object"}},
                                                "error": {"type": ["string", "null"]}}},
    "RuleRun": {"type": "object", "properties": {
        "id": {"type": "integer"}, "rule": {"type": "string"}, "revision": {"type": "integer"},
        "record": {"type": ["integer", "null"]}, "trigger": {"type": "string"}, "matched": {"type": ["boolean", "null"]},
        "actions": {"type": "array", "items": {"type": "object"}}, "error": {"type": ["string", "null"]},
        "depth": {"type": "integer"}, "at": {"type": "string", "format": "date-time"}}},
    "Report": {"type": "object", "required": ["source", "measures"],
               "description": "A report definition (see docs/reports.md): source form, dimensions, measures, "
                              "filters, sort, limit, chart",
               "properties": {"key": {"type": "string"}, "title": {"type": "object"}, "source": {"type": "string"},
                              "dimensions": {"type": "array", "items": {"type": "object"}},
                              "measures": {"type": "array", "items": {"type": "object"}},
                              "filters": {"type": "array", "items": {"type": "object"}},
                              "sort": {"type": "array", "items": {"type": "object"}},
                              "limit": {"type": "integer"}, "chart": {"type": "object"},
                              "revision": {"type": "integer"}}},
    "ReportData": {"type": "object", "properties": {
        "columns": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "kind": {"enum": ["dimension", "measure"]}, "label": {"type": "string"},
            "field": {"type": "string"}, "grain": {"type": "string"}, "format": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}},
        "rows": {"type": "array", "items": {"type": "array"}}}},
    "User": {"type": "object", "properties": {
        "id": {"type": "integer"}, "username": {"type": "string"}, "display_name": {"type": "string"},
        "email": {"type": ["string", "null"]},
        "role": {"enum": ["admin", "manager", "sales"]}, "team": {"type": ["string", "null"]},
        "skills": {"type": "array", "items": {"type": "string"}}, "locale": {"type": ["string", "null"]},
        "active": {"type": "boolean"}}},
}


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
