"""The read routes' answers: the bytes FastAPI's own path would send (encoded
once, by the answer's model), a work order's history from one read of its
events, and dependencies that run on the event loop (docs/benchmarks.md,
branch i11o)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from fieldledger.api.reading import json_response
from fieldledger.api.routes import audit, sla, work_orders
from fieldledger.api.routes.audit import AuditEvent, AuditPage
from fieldledger.api.routes.views import HistoryView, history_view
from fieldledger.application.ledger import FieldLedger
from fieldledger.domain.customers import contact_access
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import WorkOrder

from tests.e2e.conftest import Api
from tests.e2e.scenarios import ACTOR_OF, Desk


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
