"""What a hostile client sends, and what it gets: each row of the table
"Hostile input" in docs/api.md, on SQLite and PostgreSQL. Nothing it sends is
written, and no read model stops.

Also: a store that already holds text no table can hold (written below the
HTTP layer, as by an older version or another writer) is projected and rebuilt
to completion.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.application.ledger import Caller
from fieldledger.application.settings import Settings
from fieldledger.domain.complaints import Complainant, ComplaintChannel, Severity
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import ChecklistItem
from pydantic import ValidationError

from tests.e2e.conftest import Api
from tests.e2e.scenarios import Desk, assert_problem, booking, field_errors, iso, lodging
from tests.procedure import ON_SITE_CHECKS


def assert_nothing_stopped(api: Api) -> None:
    api.catch_up()
    r = api.client.get("/projections", headers=Desk(api)["supervisor"].headers)
    for status in r.json()["projections"]:
        assert status["error"] is None and status["lag"] == 0, status


def refused(r: Any, status: int, kind: str, field: str | None) -> dict[str, Any]:
    problem = assert_problem(r, status, f"/problems/{kind}")
    if field is not None:
        assert field in field_errors(problem), problem
    return problem


# -- text: control characters, blank text, ids ----------------------------------


def test_nul_in_a_technician_id_is_422_and_no_read_model_stops(api: Api) -> None:
    """The reproduction of issue 10: it answered 200 and stopped three read models."""
    desk = Desk(api)
    order = desk.book()
    before = api.event_count()
    r = desk["dispatcher"].post(f"/work-orders/{order}/assign", {"technician_id": "tech\u0000x"})
    problem = refused(r, 422, "invalid-request", "technician_id")
    assert "U+0000" in problem["detail"]
    assert api.event_count() == before
    assert_nothing_stopped(api)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/work-orders", booking(description="leak\u0007ing"), "description"),
        ("/work-orders", booking(customer={"name": "Zhang\u001b[31m", "phone": "1",
                                           "address": "x"}), "customer.name"),
        ("/complaints", lodging(staff_ids=["tech-1", "a\u0000"]), "staff_ids[1]"),
        ("/work-orders", booking(description="   "), "description"),
        ("/work-orders", booking(description="\u3000\t\n"), "description"),
        ("/complaints", lodging(staff_ids=["tech 1"]), "staff_ids[0]"),
    ],
    ids=["bell", "escape", "nul-in-list", "blank", "unicode-blank", "id-with-space"],
)
def test_control_characters_blank_text_and_bad_ids_in_bodies_are_422(
    api: Api, path: str, body: Any, field: str
) -> None:
    desk = Desk(api)
    before = api.event_count()
    refused(desk["dispatcher"].post(path, body), 422, "invalid-request", field)
    assert api.event_count() == before


def test_text_is_trimmed_and_keeps_tabs_and_newlines(api: Api) -> None:
    desk = Desk(api)
    order = desk.book(description="  first line\n\tsecond line  ")
    got = desk["dispatcher"].get(f"/work-orders/{order}").json()
    assert got["description"] == "first line\n\tsecond line"


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/appraisal/a%00b", {"period": "2026-11"}, 422, "staff_id"),
        ("/audit", {"actor": "a\u0000b"}, 422, "actor"),
        ("/audit", {"type": "Booked\u0000"}, 422, "type"),
        ("/sla/board", {"status": "red\u0001"}, 422, "status"),
        ("/work-orders/00000000-0000-4000-8000-00000000000%00", {}, 422, "id"),
    ],
    ids=["path", "query-id", "query-text", "query-list", "uuid-path"],
)
def test_nul_in_a_path_or_query_is_422_naming_it(
    api: Api, path: str, params: dict[str, str], status: int, field: str
) -> None:
    r = Desk(api)["supervisor"].get(path, **params)
    refused(r, status, "invalid-request", field)
    assert_nothing_stopped(api)


# -- strict types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "body", "field"),
    [
        ("feedback", {"csat": "5", "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4},
         "csat"),
        ("feedback", {"csat": 4.5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4},
         "csat"),
        ("feedback", {"csat": True, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4},
         "csat"),
        ("feedback", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
                      "praise": "yes"}, "praise"),
        ("feedback", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
                      "praise": 1}, "praise"),
        ("feedback", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
                      "occurred_at": 12345}, "occurred_at"),
        ("feedback", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
                      "occurred_at": "12345"}, "occurred_at"),
        ("feedback", {"csat": 5, "attitude": 4, "skill": 4, "punctuality": 4, "promise": 4,
                      "occurred_at": "0001-01-01T00:00:00+14:00"}, "occurred_at"),
    ],
    ids=["string-for-int", "float-for-int", "bool-for-int", "yes-for-bool", "1-for-bool",
         "number-for-datetime", "numeric-string-for-datetime", "out-of-range-datetime"],
)
def test_no_coercion_in_bodies(api: Api, command: str, body: Any, field: str) -> None:
    desk = Desk(api)
    order = desk.work_order_in("accepted")
    before = api.event_count()
    r = desk["client_app"].post(f"/work-orders/{order}/{command}", body)
    refused(r, 422, "invalid-request", field)
    assert api.event_count() == before


def test_no_coercion_of_money(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("in_service")
    for part in [{"name": "valve", "unit_price": "12.50"}, {"name": "valve", "quantity": "2"},
                 {"name": "valve", "unit_price": 1.234}]:  # fmt: skip
        r = desk["technician"].post(f"/work-orders/{order}/complete",
                                    {"summary": "done", "parts_used": [part]})  # fmt: skip
        refused(r, 422, "invalid-request", None)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/appraisal", {"as_of": "0.5"}, "as_of"),
        ("/appraisal", {"as_of": "12345"}, "as_of"),
        ("/callbacks/due", {"on": "0"}, "on"),
        ("/audit", {"late": "yes"}, "late"),
        ("/audit", {"late": "1"}, "late"),
        ("/audit", {"limit": "5.0"}, "limit"),
        ("/appraisal", {"min_position": "+3"}, "min_position"),
        ("/appraisal", {"period": "2026-13"}, "period"),
        ("/sla/compliance", {"from": "0"}, "from"),
    ],
    ids=["as_of-float", "as_of-int", "on-zero", "late-yes", "late-1", "limit-float",
         "position-sign", "period-month-13", "from-zero"],
)
def test_no_coercion_in_query_parameters(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    refused(Desk(api)["supervisor"].get(path, **params), 422, "invalid-request", field)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/sla/board", {"at": "0001-01-01T00:00:00+08:00"}, "at"),
        ("/sla/board", {"at": "9999-12-31T23:59:59-08:00"}, "at"),
        ("/sla/compliance", {"to": "9999-12-31"}, "to"),
        ("/sla/compliance", {"from": "0001-01-01"}, "from"),
    ],
    ids=["board-year-1", "board-year-9999", "compliance-to-9999", "compliance-from-year-1"],
)
def test_instants_at_the_ends_of_the_calendar_are_422(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    """Shifting them to UTC (or to the next midnight) would leave the calendar: a
    clear 422 naming the parameter, never a 500."""
    problem = refused(Desk(api)["supervisor"].get(path, **params), 422, "invalid-request", field)
    assert "outside the years 0001-9999" in problem["detail"]


# -- malformed requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status", "kind", "field"),
    [
        (b'{"description": "\xff\xfe"}', "application/json", 422, "invalid-encoding", "body"),
        (b"[" * 40 + b"]" * 40, "application/json", 422, "too-deeply-nested", "body"),
        (b"[" * 100_000, "application/json", 413, "body-too-large", None),
        (b"[" * 60_000, "application/json", 422, "too-deeply-nested", "body"),
        (b"{\"a\": 1", "application/json", 422, "malformed-json", "body"),
        (b'{"csat": Infinity}', "application/json", 422, "malformed-json", "body"),
        (b"<order/>", "application/xml", 415, "unsupported-media-type", "Content-Type"),
        (b"{}", "application/json; charset=latin-1", 415, "unsupported-media-type",
         "Content-Type"),
    ],
    ids=["not-utf8", "deep", "huge", "very-deep", "truncated", "infinity", "xml", "latin-1"],
)
def test_malformed_requests_have_their_own_problem_types(
    api: Api, content: bytes, content_type: str, status: int, kind: str, field: str | None
) -> None:
    desk = Desk(api)
    before = api.event_count()
    r = api.client.post("/work-orders", content=content,
                        headers={**desk["dispatcher"].headers, "Content-Type": content_type})  # fmt: skip
    refused(r, status, kind, field)
    assert api.event_count() == before
    assert api.client.get(f"/problems/{kind}").status_code == 200


def test_lone_surrogates_are_422(api: Api) -> None:
    desk = Desk(api)
    r = api.client.post("/work-orders", content=b'{"description": "\\udc80"}',
                        headers={**desk["dispatcher"].headers,
                                 "Content-Type": "application/json"})  # fmt: skip
    refused(r, 422, "invalid-request", None)


# -- read models hold whatever the store holds -------------------------------------


def test_a_store_holding_unstorable_text_is_projected_and_rebuilt(api: Api) -> None:
    """Events with NUL, written below the HTTP layer (as by an
    older version or another writer): every read model projects them, and a
    rebuild of each completes, on both databases."""
    desk = Desk(api)
    ledger = api.app.state.ledger
    dispatcher = Caller("disp-1", Role.DISPATCHER)
    order = UUID(desk.book())
    ledger.work_order_command(dispatcher, order, "assign", {"technician_id": "tech\u0000x"})
    for command, args, role in [
        ("confirm", {}, Role.TECHNICIAN), ("depart", {}, Role.TECHNICIAN),
        ("arrive", {}, Role.TECHNICIAN),
        ("start", {"identity_shown": True, "risk_assessment": "gas\u0000leak", **ON_SITE_CHECKS},
         Role.TECHNICIAN),
        ("complete", {"summary": "fixed\u0000", "parts_used": [],
                      "checklist": [ChecklistItem("tested\u0000", True)]}, Role.TECHNICIAN),
        ("accept", {"signed_by": "Zhang\u0000"}, Role.CLIENT_APP),
    ]:  # fmt: skip
        ledger.work_order_command(Caller("tech\u0000x", role), order, command, args)
    ledger.lodge_complaint(
        Caller("app\u0000", Role.CLIENT_APP), customer=Complainant(name="Li\u0000", phone="1"),
        channel=ComplaintChannel.PHONE, category="rude\u0000", severity=Severity.CRITICAL, description="he\u0000said",
        work_order_id=order, staff_ids=["tech\u0000x"],
    )  # fmt: skip
    assert_nothing_stopped(api)
    projections = api.app.state.projections
    for name in projections.models:
        projections.rebuild(name)
    assert_nothing_stopped(api)
    # A column shows the character it cannot hold as U+FFFD; the audit's event
    # data is JSON, which carries it exactly.
    supervisor = desk["supervisor"]
    r = supervisor.get("/audit", type="Assigned")
    assert r.status_code == 200, r.text
    assert r.json()["events"][0]["data"]["technician_id"] == "tech\u0000x"
    assert r.json()["events"][0]["actor"] == "disp-1"
    r = supervisor.get("/audit", type="Arrived")
    assert r.json()["events"][0]["actor"] == "tech\ufffdx"


# -- bounds on time ---------------------------------------------------------------


@pytest.fixture
def bounded(database_url: str) -> Iterator[Api]:
    """The service with its default FIELDLEDGER_MAX_BACKDATE (7d)."""
    settings = Settings(database_url=database_url, background=False, sweep_interval=0)
    assert settings.backdate_bound == timedelta(days=7)
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app)


def test_occurred_at_further_back_than_the_bound_is_422(bounded: Api) -> None:
    desk = Desk(bounded)
    now = datetime.now(UTC)
    before = bounded.event_count()
    for when in ["1900-01-01T00:00:00Z", iso(now - timedelta(days=7, minutes=1))]:
        r = desk["dispatcher"].post("/work-orders", booking(occurred_at=when))
        problem = refused(r, 422, "rule-violated", "occurred_at")
        assert "FIELDLEDGER_MAX_BACKDATE" in problem["detail"]
    assert bounded.event_count() == before
    # Within the bound: a phone that synced six days late.
    order = desk.book(occurred_at=iso(now - timedelta(days=6)))
    r = desk["dispatcher"].post(f"/work-orders/{order}/assign",
                                {"technician_id": "tech-1",
                                 "occurred_at": iso(now - timedelta(days=8))})  # fmt: skip
    refused(r, 422, "rule-violated", "occurred_at")


def test_max_backdate_is_an_interval_or_none() -> None:
    assert Settings(max_backdate="400d").backdate_bound == timedelta(days=400)
    assert Settings(max_backdate="12h").backdate_bound == timedelta(hours=12)
    assert Settings(max_backdate="none").backdate_bound is None
    with pytest.raises(ValidationError, match="is not an interval"):
        Settings(max_backdate="a while")
