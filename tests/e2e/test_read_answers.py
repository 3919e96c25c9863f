"""The read routes' answers: the bytes FastAPI's own path would send (encoded
once, by the answer's model), a work order's history from one read of its
events, and dependencies that run on the event loop (docs/benchmarks.md,
branch i11o)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from fieldledger.api.reading import json_response, reading
from fieldledger.api.routes import audit, sla, work_orders
from fieldledger.api.routes.audit import AuditEvent, AuditPage
from fieldledger.api.routes.views import HistoryView, history_view
from fieldledger.application.ledger import FieldLedger, plain
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.customers import contact_access
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections import sla as sla_view

from tests.e2e.conftest import Api
from tests.e2e.scenarios import ACTOR_OF, Desk, booking


def history_as_fastapi_sent_it(ledger: FieldLedger, order: str, role: str) -> bytes:
    """The history as the route answered before: the order read for whom it is
    assigned to, the model returned, and FastAPI validating and encoding it for
    its `response_model`."""
    app = FastAPI()

    @app.get("/history/{id}", response_model=HistoryView)
    def history(id: UUID) -> HistoryView:
        entries = ledger.history(WorkOrder, id)
        assigned = ledger.get(WorkOrder, id).technician_id
        access = contact_access(Role(role), ACTOR_OF[role], assigned)
        return history_view(ledger, entries, access)

    with TestClient(app) as client:
        return client.get(f"/history/{order}").content


@pytest.mark.parametrize("role", ["technician", "analyst", "supervisor"])
def test_a_history_is_the_bytes_fastapi_sent(api: Api, role: str) -> None:
    """Byte for byte what FastAPI's own path gave, for a caller who sees the
    customer in full (the assigned technician, a supervisor) and one who sees
    it masked: names in Chinese, instants, hashes, nested data."""
    desk = Desk(api)
    order = desk.work_order_in("completed")
    answer = desk[role].get(f"/work-orders/{order}/history")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    expected = history_as_fastapi_sent_it(api.app.state.ledger, order, role)
    assert answer.content == expected
    assert len(answer.json()["events"]) >= 7


def complaint_history_as_fastapi_sent_it(ledger: FieldLedger, complaint: str, role: str) -> bytes:
    """A complaint's history as the route answered before: the model returned,
    FastAPI validating and encoding it for its `response_model`."""
    app = FastAPI()

    @app.get("/history/{id}", response_model=HistoryView)
    def history(id: UUID) -> HistoryView:
        access = contact_access(Role(role), ACTOR_OF[role])
        return history_view(ledger, ledger.history(Complaint, id), access)

    with TestClient(app) as client:
        return client.get(f"/history/{complaint}").content


@pytest.mark.parametrize("role", ["analyst", "supervisor"])
def test_a_complaint_history_is_the_bytes_fastapi_sent(api: Api, role: str) -> None:
    """`/complaints/{id}/history` is encoded once (`json_response`), byte for
    byte as FastAPI's own path gave it, the customer in full or masked."""
    desk = Desk(api)
    complaint = desk.lodge()
    answer = desk[role].get(f"/complaints/{complaint}/history")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    expected = complaint_history_as_fastapi_sent_it(api.app.state.ledger, complaint, role)
    assert answer.content == expected
    assert answer.json()["events"][0]["type"] == "Lodged"


@pytest.fixture
def counted_reads(api: Api) -> Iterator[list[UUID]]:
    """Each read of one aggregate's events, by id."""
    recorder = api.app.state.ledger.recorder
    read: list[UUID] = []
    select_events: Callable[..., Any] = recorder.select_events

    def counting(originator_id: UUID, *args: Any, **kwargs: Any) -> Any:
        read.append(originator_id)
        return select_events(originator_id, *args, **kwargs)

    recorder.select_events = counting
    try:
        yield read
    finally:
        del recorder.select_events


def test_a_history_reads_its_events_once(api: Api, counted_reads: list[UUID]) -> None:
    """The order (for whom it is assigned to) and its history come from one
    read of its events; before, the route read and decoded them three times."""
    desk = Desk(api)
    order = desk.work_order_in("on_site")
    counted_reads.clear()
    answer = desk["technician"].get(f"/work-orders/{order}/history")
    assert answer.status_code == 200, answer.text
    assert counted_reads == [UUID(order)]
    # The assigned technician sees the customer in full, as before.
    assert answer.json()["events"][0]["data"]["customer"]["name"] == "张三"


def test_a_history_of_another_kind_or_unknown_id_is_404(api: Api) -> None:
    desk = Desk(api)
    complaint = desk.lodge()
    for id_ in (complaint, "00000000-0000-4000-8000-000000000000"):
        r = desk["supervisor"].get(f"/work-orders/{id_}/history")
        assert r.status_code == 404, r.text


def test_an_answer_is_encoded_once_as_its_model_would_be() -> None:
    """`json_response`: the model's own UTF-8 JSON, as `model_dump_json` gives
    it (by alias), written once (non-ASCII text, instants with offsets)."""
    page = AuditPage.model_validate({
        "events": [{
            "type": "Booked", "version": 1, "actor": "disp-1", "role": "dispatcher",
            "occurred_at": "2026-10-09T10:00:00+08:00",
            "recorded_at": "2026-10-09T02:00:01.250000Z",
            "data": {"customer": {"name": "张*"}, "note": "é\u2028\"quoted\""},
            "hash": "ab" * 32, "aggregate_id": "00000000-0000-4000-8000-000000000001",
            "kind": "work_order", "position": 7, "late": False,
        }],
        "next_cursor": None,
    })  # fmt: skip
    assert isinstance(page.events[0], AuditEvent)
    response = json_response(page)
    assert response.body == page.model_dump_json(by_alias=True).encode()
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.body))


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


@pytest.mark.parametrize(
    "path", ["/audit", "/sla/board", "/work-orders/{id}/history", "/work-orders/{id}"]
)
def test_read_routes_solve_their_dependencies_on_the_event_loop(path: str) -> None:
    """Every dependency of these read routes is `async def` (or a class FastAPI
    awaits): a plain `def` dependency is run in a worker thread, one thread
    hop each before the route's own thread starts."""
    routes = [r for router in (audit.router, sla.router, work_orders.router) for r in router.routes]
    (route,) = [r for r in routes if isinstance(r, APIRoute) and r.path == path
                and "GET" in r.methods]  # fmt: skip
    found = list(_dependencies(route.dependant))
    assert found
    for dependant in found:
        call = dependant.call
        assert call is not None
        awaited = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
            type(call).__call__
        )
        assert awaited, f"{path}: {getattr(call, '__name__', call)} runs in a thread"


def board_as_built_before(api: Api, at: str, status: str | None, kind: str | None) -> bytes:
    """The board as the route built it before (branch s8e): `sla.board`'s items
    (three instants parsed per row), one `BoardItemOut` each, `plain` instants."""
    projections = api.app.state.projections
    settings = api.app.state.settings
    instant = sla.parse_instant("at", at, settings.timezone)
    with reading(projections, sla_view.NAME, as_of=None, min_position=None) as (tx, t, _):
        items = sla_view.board(tx, t, instant, sla.parse_statuses(status), kind)  # type: ignore[arg-type]
    answer = sla.BoardOut(
        at=plain(instant),
        items=[
            sla.BoardItemOut(
                aggregate_id=i.aggregate_id,
                kind=i.kind,
                target=i.target,
                due_at=None if i.due_at is None else plain(i.due_at),
                status=i.status,
                escalation_level=i.escalation_level,
                owner_id=i.owner_id,
                coordinator_id=i.coordinator_id,
                started_at=plain(i.started_at),
                policy_version=i.policy_version,
                calendar_warning=i.calendar_warning,
            )
            for i in items
        ],
    )
    return bytes(json_response(answer).body)


def test_the_board_is_the_bytes_it_was_before(api: Api) -> None:
    """The route writes the view's rows into its model without a `BoardItem` or
    a parsed instant per row: the same bytes as before, for targets started at
    whole seconds and within one, red, yellow and blue ones, owned or not, on
    hold (no due time) and of complaints escalated at lodging."""
    desk = Desk(api)
    desk.book(occurred_at="2026-10-08T09:00:00+08:00")
    desk.book(occurred_at="2026-10-08T09:00:00.250000+08:00", priority="urgent")
    desk.book(occurred_at="2026-10-08T10:00:00.000001+08:00")
    desk.work_order_in("on_site")
    desk.work_order_in("on_hold")
    desk.lodge(severity="critical")
    desk.complaint_in("assigned")
    last = desk["dispatcher"].post("/work-orders", booking())
    assert last.status_code == 201, last.text
    supervisor = desk["supervisor"]
    seen = 0
    for at in (
        "2026-10-08T11:30:00+08:00",
        "2026-10-08T02:00:00.250000Z",
        "2026-10-09T12:00:00+08:00",
        "9999-12-31T23:59:59+00:00",
    ):
        for status in (None, "red,yellow", "blue"):
            for kind in (None, "complaint"):
                params = {k: v for k, v in (("at", at), ("status", status), ("kind", kind))
                          if v is not None}  # fmt: skip
                answer = supervisor.get(
                    "/sla/board", **params, min_position=last.headers["X-Position"]
                )
                assert answer.status_code == 200, answer.text
                assert answer.content == board_as_built_before(api, at, status, kind)
                seen += len(answer.json()["items"])
    assert seen > 40


@pytest.mark.parametrize("stored", [
    "2026-10-08T01:00:00.000000+00:00", "2026-10-08T01:00:00.250000+00:00",
    "2026-10-08T01:00:00.000001+00:00", "0001-01-01T00:00:00.000000+00:00",
    "9999-12-31T23:59:59.999999+00:00", "2026-10-08T09:00:00+08:00",
    "2026-10-08T01:00:00+00:00", "2026-10-08T01:00:00.500+00:00",
])  # fmt: skip
def test_a_stored_instant_is_answered_as_plain_writes_it(stored: str) -> None:
    assert sla.answered(stored) == plain(datetime.fromisoformat(stored))
