"""`GET /audit` over HTTP on SQLite and PostgreSQL: filters, the cursor, late
reports, hashes, and the 401/403/422 answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fieldledger.projections.audit import AuditTrail

from tests.e2e.conftest import Actor, Api

ORDER = {
    "customer": {"name": "王五", "phone": "13900000000", "address": "上海"},
    "service_type": "repair", "priority": "routine", "zone": "urban",
    "channel": "phone", "billing": "paid", "description": "空调不制冷",
}  # fmt: skip
COMPLAINT = {
    "customer": {"name": "赵六", "phone": "13700000000"}, "channel": "phone",
    "category": "service", "severity": "critical", "description": "technician was rude",
}  # fmt: skip


def book(dispatcher: Actor, **extra: Any) -> str:
    r = dispatcher.post("/work-orders", {**ORDER, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def search(who: Actor, **params: Any) -> Any:
    r = who.get("/audit", **params)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def scene(api: Api) -> dict[str, Any]:
    """After the PolicyAdopted the service records when it starts (position 1):
    two work orders (one booked an hour after it happened), a critical complaint
    (Lodged + Escalated) and a conduct record."""
    dispatcher = api.actor("disp-1", "dispatcher")
    supervisor = api.actor("sup-1", "supervisor")
    first = book(dispatcher)
    assert dispatcher.post(f"/work-orders/{first}/assign", {"technician_id": "tech-1"}).status_code == 200
    late_at = datetime.now(UTC) - timedelta(hours=1)
    second = book(dispatcher, occurred_at=late_at.isoformat())
    complaint = supervisor.post("/complaints", COMPLAINT)
    assert complaint.status_code == 201, complaint.text
    conduct = supervisor.post("/staff/tech-1/conduct", {"kind": "uniform", "note": "no badge"})
    assert conduct.status_code == 200, conduct.text
    api.catch_up()
    return {"first": first, "second": second, "complaint": complaint.json()["id"],
            "late_at": late_at, "supervisor": supervisor, "dispatcher": dispatcher}  # fmt: skip


def test_every_event_newest_first_with_the_contract_fields(api: Api, scene: dict[str, Any]) -> None:
    body = search(scene["supervisor"])
    events = body["events"]
    assert body["next_cursor"] is None
    assert [(e["kind"], e["type"]) for e in events] == [
        ("staff", "ConductRecorded"), ("staff", "Registered"),
        ("complaint", "Escalated"), ("complaint", "Lodged"),
        ("work_order", "Booked"), ("work_order", "Assigned"), ("work_order", "Booked"),
        ("policy", "PolicyAdopted"),
    ]  # fmt: skip
    assert [e["position"] for e in events] == list(range(8, 0, -1))
    for e in events:
        assert {"type", "version", "actor", "role", "occurred_at", "recorded_at", "data", "hash",
                "aggregate_id", "kind"} <= e.keys()  # fmt: skip
        assert len(e["hash"]) == 64
    assigned = events[5]
    assert (assigned["aggregate_id"], assigned["version"]) == (scene["first"], 2)
    assert (assigned["actor"], assigned["role"]) == ("disp-1", "dispatcher")
    assert assigned["data"] == {"technician_id": "tech-1"}
    # The same hash as the aggregate's own history.
    history = scene["dispatcher"].get(f"/work-orders/{scene['first']}/history").json()
    assert [e["hash"] for e in history["events"]] == [events[6]["hash"], events[5]["hash"]]
    history = scene["supervisor"].get(f"/complaints/{scene['complaint']}/history").json()
    assert [e["hash"] for e in history["events"]] == [events[3]["hash"], events[2]["hash"]]


def test_late_reports_are_flagged(api: Api, scene: dict[str, Any]) -> None:
    events = search(scene["supervisor"])["events"]
    late = [e for e in events if e["late"]]
    assert [(e["aggregate_id"], e["type"]) for e in late] == [(scene["second"], "Booked")]
    (booked,) = late
    assert datetime.fromisoformat(booked["occurred_at"]) == scene["late_at"]
    assert datetime.fromisoformat(booked["recorded_at"]) - scene["late_at"] >= timedelta(hours=1)
    only_late = search(scene["supervisor"], late="true")["events"]
    assert [e["position"] for e in only_late] == [booked["position"]]
    assert len(search(scene["supervisor"], late="false")["events"]) == 7


def test_filters(api: Api, scene: dict[str, Any]) -> None:
    analyst = api.actor("ana-1", "analyst")

    def types(**params: Any) -> list[str]:
        return [e["type"] for e in search(analyst, **params)["events"]]

    assert types(actor="disp-1") == ["Booked", "Assigned", "Booked"]
    # The critical complaint's escalation on lodging is the system's, not the supervisor's.
    assert types(role="supervisor") == ["ConductRecorded", "Registered", "Lodged"]
    assert types(kind="complaint", role="system") == ["Escalated"]
    assert types(type="Booked") == ["Booked", "Booked"]
    assert types(type="Lodged,Assigned") == ["Lodged", "Assigned"]
    assert types(aggregate_id=scene["first"]) == ["Assigned", "Booked"]
    assert types(kind="complaint") == ["Escalated", "Lodged"]
    assert types(kind="policy") == ["PolicyAdopted"]
    assert types(role="system") == ["Escalated", "PolicyAdopted"]
    assert types(kind="work_order", actor="disp-1", type="Booked") == ["Booked", "Booked"]
    # from/to are on occurred_at: the late booking happened an hour ago.
    late_at: datetime = scene["late_at"]
    assert types(to=(late_at + timedelta(minutes=1)).isoformat()) == ["Booked"]
    assert types(**{"from": late_at.isoformat(), "to": (late_at + timedelta(seconds=1)).isoformat()}) == ["Booked"]
    assert len(types(**{"from": (late_at + timedelta(minutes=1)).isoformat()})) == 7
    assert types(actor="nobody") == []
    # A date is a whole local day: `to` includes it.
    assert types(to="2020-01-01") == []
    assert len(types(**{"from": "2020-01-01", "to": "2999-12-31"})) == 8


def test_pages_follow_the_cursor(api: Api, scene: dict[str, Any]) -> None:
    system = api.actor("sla-sweeper", "system")
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        body = search(system, **params)
        seen += [e["position"] for e in body["events"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert (pages, seen) == (3, [8, 7, 6, 5, 4, 3, 2, 1])
    # The cursor belongs to its search.
    first = search(system, limit=2, actor="disp-1")
    assert [e["type"] for e in first["events"]] == ["Booked", "Assigned"]
    rest = search(system, limit=2, actor="disp-1", cursor=first["next_cursor"])
    assert ([e["type"] for e in rest["events"]], rest["next_cursor"]) == (["Booked"], None)
    r = system.get("/audit", limit=2, actor="sup-1", cursor=first["next_cursor"])
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"


def test_every_event_exactly_once_across_pages_while_writes_continue(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    supervisor = api.actor("sup-1", "supervisor")
    for _ in range(6):
        book(dispatcher)
    api.catch_up()
    existing = api.event_count()
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4}
    while True:
        body = search(supervisor, **params)
        seen += [e["position"] for e in body["events"]]
        # New events arrive between pages (and are projected).
        order = book(dispatcher)
        dispatcher.post(f"/work-orders/{order}/assign", {"technician_id": "tech-9"})
        api.catch_up()
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == list(range(existing, 0, -1))
    assert api.event_count() > existing


def test_read_your_writes_with_min_position(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    supervisor = api.actor("sup-1", "supervisor")
    r = dispatcher.post("/work-orders", ORDER)
    position = r.headers["X-Position"]
    assert search(supervisor)["events"] == []  # not projected yet (no background here)
    events = search(supervisor, min_position=position)["events"]
    # The booking, after the policy the service recorded when it started.
    assert [(e["aggregate_id"], e["type"]) for e in events][:1] == [(r.json()["id"], "Booked")]
    assert [e["type"] for e in events[1:]] == ["PolicyAdopted"]


def test_who_may_search(api: Api) -> None:
    assert api.client.get("/audit").status_code == 401
    r = api.client.get("/audit", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    for role in ("technician", "dispatcher", "client_app"):
        r = api.actor(f"{role}-1", role).get("/audit")
        assert r.status_code == 403, role
        assert "supervisor" in r.json()["detail"]
    for role in ("supervisor", "analyst", "system"):
        assert api.actor(f"{role}-1", role).get("/audit").status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"role": "janitor"}, "role"),
        ({"kind": "invoice"}, "kind"),
        ({"aggregate_id": "not-a-uuid"}, "aggregate_id"),
        ({"from": "2026-10-09T10:00:00"}, "from"),  # no offset
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-10-09T10:00:00+08:00", "to": "2026-10-09T09:00:00+08:00"}, "to"),
        ({"type": "Bookd"}, "type"),
        ({"type": ","}, "type"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"late": "maybe"}, "late"),
    ],
)
def test_bad_searches_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    r = api.actor("sup-1", "supervisor").get("/audit", **params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_a_failed_projection_is_reported_not_skipped(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    supervisor = api.actor("sup-1", "supervisor")
    book(dispatcher)
    r = dispatcher.post("/work-orders", ORDER)
    original = AuditTrail.handle

    # Positions: 1 the PolicyAdopted of the service's start, 2 and 3 the bookings.
    def refuse_second(self: AuditTrail, tx: Any, t: Any, event: Any, position: int) -> None:
        if position == 3:
            raise RuntimeError("cannot file this")
        original(self, tx, t, event, position)

    monkeypatch.setattr(AuditTrail, "handle", refuse_second)
    r = supervisor.get("/audit", min_position=r.headers["X-Position"])
    assert r.status_code == 503
    assert "failed at position 3" in r.json()["detail"]
    (status,) = [p for p in supervisor.get("/projections").json()["projections"]
                 if p["name"] == "audit"]  # fmt: skip
    assert (status["position"], status["lag"], status["error_position"]) == (2, 1, 3)
    assert "cannot file this" in status["error"]
    # The view still serves what it has.
    assert [e["position"] for e in search(supervisor)["events"]] == [2, 1]
