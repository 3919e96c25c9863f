"""`GET /openapi.json` against the contract: every command of §4 and §5 (and
conduct) at its path, with a body of the contract's fields and bounds, its
success headers and its error answers as problem+json; the queries; and the
documented answers equal to what the service really answers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.application.settings import Settings

from tests.e2e.conftest import Api
from tests.e2e.scenarios import PROBLEM_JSON, Desk

# The body fields of each command, as contract §4, §5 and §6 name them.
CONTRACT_BODIES: dict[str, set[str]] = {
    "/work-orders": {"customer", "service_type", "priority", "zone", "appointment", "channel",
                     "billing", "description", "contract_id"},
    "/work-orders/{id}/assign": {"technician_id"},
    "/work-orders/{id}/confirm": set(),
    "/work-orders/{id}/depart": set(),
    "/work-orders/{id}/notify-late": {"expected_arrival", "reason"},
    "/work-orders/{id}/arrive": set(),
    "/work-orders/{id}/start": {"identity_shown", "risk_assessment"},
    "/work-orders/{id}/change-scope": {"description", "new_eta"},
    "/work-orders/{id}/complete": {"summary", "parts_used"},
    "/work-orders/{id}/accept": {"signed_by"},
    "/work-orders/{id}/reject": {"reasons"},
    "/work-orders/{id}/resolve-remotely": {"summary"},
    "/work-orders/{id}/hold": {"reason"},
    "/work-orders/{id}/resume": set(),
    "/work-orders/{id}/feedback": {"csat", "attitude", "skill", "punctuality", "promise",
                                   "praise", "comment"},
    "/work-orders/{id}/escalate": {"level", "reason"},
    "/work-orders/{id}/cancel": {"reason"},
    "/work-orders/{id}/log-callback": {"outcome", "note"},
    "/complaints": {"customer", "channel", "category", "severity", "description",
                    "work_order_id", "staff_ids"},
    "/complaints/{id}/acknowledge": set(),
    "/complaints/{id}/assign": {"department", "owner_id"},
    "/complaints/{id}/record-findings": {"root_cause", "evidence", "responsible_staff_id",
                                         "company_at_fault"},
    "/complaints/{id}/plan": {"measures", "owner_id", "due"},
    "/complaints/{id}/update-progress": {"note"},
    "/complaints/{id}/resolve": {"outcome"},
    "/complaints/{id}/confirm": {"satisfied", "csat"},
    "/complaints/{id}/escalate": {"level", "reason"},
    "/staff/{staff_id}/conduct": {"kind", "points", "minutes", "discipline", "extra_points",
                                  "note"},
    "/staff/{staff_id}/quality-checks": {"passed", "notes"},
    "/staff/{staff_id}/retrained": {"note"},
    "/staff/{staff_id}/reassigned": {"note"},
    "/staff/{staff_id}/joined": {"on"},
    "/staff/{staff_id}/training": {"kind", "held_on", "attended", "disciplined",
                                   "form_completed", "test_passed", "deadline"},
    # §11.5
    "/maintenance-contracts": {"customer", "starts_on", "ends_on", "visits_per_year"},
    "/maintenance-contracts/{id}/renew": {"ends_on"},
    "/maintenance-contracts/{id}/end": {"reason"},
}  # fmt: skip
CREATES = {"/work-orders", "/complaints", "/maintenance-contracts"}
#: Fields the service takes beyond the contract's, each documented in docs/api.md.
EXTENSIONS = {"/complaints/{id}/record-findings": {"responsible_staff_ids"}}

# Bounds the contract states: (path, field) → (minimum, maximum) or enum values.
RANGES = {
    ("/work-orders/{id}/feedback", "csat"): (1, 5),
    ("/work-orders/{id}/feedback", "attitude"): (1, 4),
    ("/work-orders/{id}/feedback", "skill"): (1, 4),
    ("/work-orders/{id}/feedback", "punctuality"): (1, 4),
    ("/work-orders/{id}/feedback", "promise"): (1, 4),
    ("/work-orders/{id}/escalate", "level"): (1, 3),
    ("/complaints/{id}/escalate", "level"): (1, 3),
    ("/complaints/{id}/confirm", "csat"): (1, 5),
    ("/staff/{staff_id}/conduct", "minutes"): (0, 24 * 60),  # issue 13: over a day is absurd
}
ENUMS = {
    ("/staff/{staff_id}/conduct", "discipline"): {"warning", "demerit", "dismissal"},
    ("/staff/{staff_id}/training", "kind"): {"induction", "monthly", "fire_safety"},
    ("/work-orders", "priority"): {"urgent", "priority", "routine"},
    ("/work-orders", "zone"): {"urban", "suburban"},
    ("/work-orders", "channel"): {"phone", "online", "walk_in"},
    ("/work-orders", "billing"): {"paid", "contract", "warranty"},
    ("/complaints", "channel"): {"phone", "email", "online", "visit"},
    ("/complaints", "severity"): {"minor", "major", "critical"},
}
NESTED = {
    ("/work-orders", "customer"): {"name", "phone", "address"},
    ("/work-orders", "appointment"): {"start", "end"},
    ("/complaints", "customer"): {"name", "phone"},
    ("/maintenance-contracts", "customer"): {"name", "phone", "address"},
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The document as served (it depends on no database, so it is built once)."""
    app = create_app(Settings(database_url="sqlite:///unused.db", background=False))
    r = TestClient(app).get("/openapi.json")  # outside `with`: no lifespan, nothing opened
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref, and through `X | null`, to the object schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return resolve(spec, spec["components"]["schemas"][name])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            assert len(options) == 1, schema
            return resolve(spec, options[0])
    return schema


def body_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    operation = spec["paths"][path]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json"}
    return resolve(spec, content["application/json"]["schema"])


@pytest.mark.parametrize("path", sorted(CONTRACT_BODIES))
def test_every_command_is_documented_with_its_body(spec: dict[str, Any], path: str) -> None:
    assert "post" in spec["paths"].get(path, {}), f"{path} is not in /openapi.json"
    schema = body_schema(spec, path)
    properties = set(schema["properties"])
    contract = CONTRACT_BODIES[path]
    assert contract <= properties, f"{path} lacks {contract - properties}"
    assert properties - contract <= {"occurred_at"} | EXTENSIONS.get(path, set())
    assert schema["additionalProperties"] is False  # unknown fields refused
    occurred = resolve(spec, schema["properties"]["occurred_at"])
    assert occurred["format"] == "date-time"
    required = spec["paths"][path]["post"]["requestBody"].get("required", False)
    assert required == bool(schema.get("required")), "a body with required fields is required"


def test_contract_bounds_are_in_the_schemas(spec: dict[str, Any]) -> None:
    for (path, field), (low, high) in RANGES.items():
        schema = resolve(spec, body_schema(spec, path)["properties"][field])
        assert (schema["minimum"], schema["maximum"]) == (low, high), (path, field)
    for (path, field), values in ENUMS.items():
        schema = resolve(spec, body_schema(spec, path)["properties"][field])
        assert set(schema["enum"]) == values, (path, field)
    for (path, field), fields in NESTED.items():
        schema = resolve(spec, body_schema(spec, path)["properties"][field])
        assert set(schema["properties"]) == fields and schema["additionalProperties"] is False
    reasons = resolve(spec, body_schema(spec, "/work-orders/{id}/reject")["properties"]["reasons"])
    assert reasons["type"] == "array" and reasons["minItems"] == 1
    praise = body_schema(spec, "/work-orders/{id}/feedback")["properties"]["praise"]
    assert praise["type"] == "boolean"
    assert body_schema(spec, "/complaints/{id}/confirm")["properties"]["satisfied"]["type"] \
        == "boolean"  # fmt: skip


def assert_problem_answers(spec: dict[str, Any], operation: dict[str, Any],
                           statuses: set[str]) -> None:  # fmt: skip
    answers = operation["responses"]
    assert statuses <= set(answers), f"missing {statuses - set(answers)}"
    for status, answer in answers.items():
        if status[0] in "45":
            assert set(answer["content"]) == {PROBLEM_JSON}, (status, answer)
            schema = resolve(spec, answer["content"][PROBLEM_JSON]["schema"])
            assert {"type", "title", "status", "detail"} <= set(schema["required"])


@pytest.mark.parametrize("path", sorted(CONTRACT_BODIES))
def test_every_command_documents_its_answers(spec: dict[str, Any], path: str) -> None:
    operation = spec["paths"][path]["post"]
    if path in CREATES:
        assert_problem_answers(spec, operation, {"401", "403", "413", "415", "422", "500"})
        success = operation["responses"]["201"]
        assert "Location" in success["headers"]
    else:
        # A staff member's record is opened by its first conduct: no 404 there.
        errors = {"401", "403", "409", "412", "413", "415", "422", "500"}
        if "{id}" in path:
            errors.add("404")
        assert_problem_answers(spec, operation, errors)
        success = operation["responses"]["200"]
    assert {"ETag", "X-Position"} <= set(success["headers"])
    answer = resolve(spec, success["content"]["application/json"]["schema"])
    assert {"id", "version", "state"} <= set(answer["properties"])
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    # The schema is the validation: a create takes no If-Match (it is refused), so
    # the parameter is documented on the other commands only, with its pattern.
    assert ("If-Match" in headers) == (path not in CREATES)
    assert operation["security"] == [{"HTTPBearer": []}]


@pytest.mark.parametrize("resource", ["work-orders", "complaints", "maintenance-contracts"])
def test_the_queries_are_documented(spec: dict[str, Any], resource: str) -> None:
    get = spec["paths"][f"/{resource}/{{id}}"]["get"]
    assert {p["name"]: p["in"] for p in get["parameters"]}["as_of"] == "query"
    assert "ETag" in get["responses"]["200"]["headers"]
    assert_problem_answers(spec, get, {"401", "404", "422", "500"})
    history = spec["paths"][f"/{resource}/{{id}}/history"]["get"]
    assert_problem_answers(spec, history, {"401", "404", "500"})
    events = resolve(spec, history["responses"]["200"]["content"]["application/json"]["schema"])
    event = resolve(spec, events["properties"]["events"]["items"])
    assert {"type", "version", "actor", "role", "occurred_at", "recorded_at", "data"} \
        <= set(event["properties"])  # fmt: skip


def test_every_route_is_in_the_document(api: Api, spec: dict[str, Any]) -> None:
    assert api.client.get("/openapi.json").json() == spec
    # The documentation pages themselves (/docs, /redoc) are not API operations.
    pages = {"/docs", "/docs/oauth2-redirect", "/redoc"}
    for route in api.app.routes:
        if isinstance(route, APIRoute) and route.path not in pages:
            assert route.include_in_schema, route.path
            for method in route.methods:
                assert method.lower() in spec["paths"][route.path], (method, route.path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def documented(spec: dict[str, Any], path: str) -> dict[str, Any]:
    answer = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    return resolve(spec, answer["schema"])


def test_the_documented_answers_are_the_real_ones(api: Api, spec: dict[str, Any]) -> None:
    desk = Desk(api)
    order = desk.work_order_in("accepted")
    desk.ok("client_app", f"/work-orders/{order}/feedback", {
        "csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4})  # fmt: skip
    complaint = desk.complaint_in("resolved")
    contract = desk.ok("dispatcher", "/maintenance-contracts", {
        "customer": {"name": "王五", "phone": "139", "address": "上海"},
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "visits_per_year": 4})["id"]
    real_contract = desk["analyst"].get(f"/maintenance-contracts/{contract}").json()
    contract_schema = documented(spec, "/maintenance-contracts/{id}")
    assert set(real_contract) == set(contract_schema["properties"])
    assert set(contract_schema["required"]) == set(contract_schema["properties"])
    for path, id_ in [("/work-orders/{id}", order), ("/complaints/{id}", complaint)]:
        schema = documented(spec, path)
        real = desk["analyst"].get(path.format(id=id_)).json()
        assert set(real) == set(schema["properties"]), path
        assert set(schema["required"]) == set(schema["properties"])
        sla_item = resolve(spec, schema["properties"]["sla"]["items"])
        for target in real["sla"]:
            assert set(target) == set(sla_item["properties"]), target
        customer = resolve(spec, schema["properties"]["customer"])
        assert set(real["customer"]) == set(customer["properties"])
        history = desk["analyst"].get(path.format(id=id_) + "/history").json()
        event = resolve(spec, resolve(spec, documented(spec, path + "/history"))
                        ["properties"]["events"]["items"])  # fmt: skip
        for e in history["events"]:
            assert set(e) == set(event["properties"]), e
    feedback = resolve(spec, documented(spec, "/work-orders/{id}")["properties"]["feedback"])
    real_feedback = desk["analyst"].get(f"/work-orders/{order}").json()["feedback"]
    assert set(real_feedback) == set(feedback["properties"])
