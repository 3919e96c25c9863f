"""A work order and a complaint through their whole lives over HTTP: after each
command the answer, the query (state, version, ETag) and the history (types,
versions, who did it as the token says, when it happened) agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Api
from tests.e2e.scenarios import ACTOR_OF, Desk, booking, iso, lodging, utc


def check_step(
    desk: Desk,
    resource: str,
    id_: str,
    answer: Any,
    *,
    state: str,
    types: list[str],
    role: str,
    occurred_at: datetime,
) -> list[dict[str, Any]]:
    """The answer, the GET and the history after one command; the history returned."""
    version = len(types)
    assert answer.status_code in (200, 201), answer.text
    assert answer.json() == {"id": id_, "version": version, "state": state}
    assert answer.headers["ETag"] == f'"{version}"'
    assert int(answer.headers["X-Position"]) >= version

    got = desk["analyst"].get(f"/{resource}/{id_}")
    assert got.status_code == 200, got.text
    assert (got.json()["state"], got.json()["version"]) == (state, version)
    assert got.headers["ETag"] == f'"{version}"'

    history = desk["analyst"].get(f"/{resource}/{id_}/history")
    assert history.status_code == 200, history.text
    events = history.json()["events"]
    assert [e["type"] for e in events] == types
    assert [e["version"] for e in events] == list(range(1, version + 1))
    last = events[-1]
    assert (last["actor"], last["role"]) == (ACTOR_OF[role], role)
    assert utc(last["occurred_at"]) == occurred_at
    assert utc(last["recorded_at"]) >= occurred_at
    assert utc(last["recorded_at"]) <= datetime.now(UTC)
    recorded = [utc(e["recorded_at"]) for e in events]
    assert recorded == sorted(recorded)
    return list(events)


def test_work_order_lifecycle(api: Api) -> None:
    desk = Desk(api)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    appointment = {"start": iso(start + timedelta(hours=1)), "end": iso(start + timedelta(hours=2))}
    at = [start + timedelta(minutes=5 * i) for i in range(12)]
    # The technician arrives 7 minutes after the appointment's start.
    at[5] = start + timedelta(hours=1, minutes=7)
    for i in range(6, 12):
        at[i] = at[5] + timedelta(minutes=10 * (i - 5))

    r = desk["client_app"].post(
        "/work-orders", booking(appointment=appointment, occurred_at=iso(at[0]))
    )
    order = r.json()["id"]
    assert r.status_code == 201 and r.headers["Location"] == f"/work-orders/{order}"
    types = ["Booked"]
    events = check_step(desk, "work-orders", order, r, state="booked", types=types,
                        role="client_app", occurred_at=at[0])  # fmt: skip
    # The analyst reading the history sees the customer masked (docs/api.md).
    assert events[0]["data"]["customer"]["name"] == "张*"
    assert events[0]["data"]["customer"]["address"] is None
    assert events[0]["data"]["priority"] == "routine"

    steps: list[tuple[str, str, dict[str, Any] | None, str, str]] = [
        ("dispatcher", "assign", {"technician_id": "tech-1"}, "assigned", "Assigned"),
        ("technician", "confirm", None, "confirmed", "Confirmed"),
        ("technician", "depart", None, "en_route", "Departed"),
        ("technician", "notify-late",
         {"expected_arrival": iso(at[5]), "reason": "traffic"}, "en_route", "LatenessNotified"),
        ("technician", "arrive", None, "on_site", "Arrived"),
        ("technician", "start", {"identity_shown": True, "risk_assessment": "gas off"},
         "in_service", "ServiceStarted"),
        ("technician", "complete", {"summary": "valve replaced",
         "parts_used": [{"name": "valve", "quantity": 1, "unit_price": 12.5}]},
         "completed", "ServiceCompleted"),
        ("client_app", "reject", {"reasons": ["still leaking"]}, "in_service", "Rejected"),
        ("technician", "complete", {"summary": "seal replaced too", "parts_used": []},
         "completed", "ServiceCompleted"),
        ("client_app", "accept", {"signed_by": "张三"}, "accepted", "Accepted"),
        ("client_app", "feedback", {"csat": 4, "attitude": 4, "skill": 3, "punctuality": 2,
         "promise": 4, "praise": True, "comment": "good in the end"}, "accepted",
         "FeedbackReceived"),
    ]  # fmt: skip
    for i, (role, command, body, state, event) in enumerate(steps, start=1):
        given = {**(body or {}), "occurred_at": iso(at[i])}
        r = desk[role].post(f"/work-orders/{order}/{command}", given)
        types.append(event)
        events = check_step(desk, "work-orders", order, r, state=state, types=types,
                            role=role, occurred_at=at[i])  # fmt: skip

    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["Assigned"] == {"technician_id": "tech-1"}
    assert by_type["Arrived"]["minutes_late"] == 7
    assert by_type["Arrived"]["lateness_notified"] is True
    assert by_type["Rejected"] == {"reasons": ["still leaking"], "rejection_count": 1}
    assert by_type["FeedbackReceived"]["feedback"]["csat"] == 4
    assert events[7]["data"]["parts_used"] == [{"name": "valve", "quantity": 1, "unit_price": 12.5}]
    final = desk["client_app"].get(f"/work-orders/{order}").json()
    assert (final["completions"], final["rejections"]) == (2, 1)
    assert final["technician_id"] == "tech-1"
    assert final["feedback"]["praise"] is True


def test_complaint_lifecycle(api: Api) -> None:
    desk = Desk(api)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    at = [start + timedelta(hours=2 * i) for i in range(11)]
    order = desk.work_order_in("accepted")

    r = desk["client_app"].post("/complaints", lodging(
        work_order_id=order, staff_ids=["tech-1"], occurred_at=iso(at[0])))  # fmt: skip
    complaint = r.json()["id"]
    assert r.status_code == 201 and r.headers["Location"] == f"/complaints/{complaint}"
    types = ["Lodged"]
    events = check_step(desk, "complaints", complaint, r, state="lodged", types=types,
                        role="client_app", occurred_at=at[0])  # fmt: skip
    assert events[0]["data"]["work_order_id"] == order
    assert events[0]["data"]["staff_ids"] == ["tech-1"]

    steps: list[tuple[str, str, dict[str, Any], str, str]] = [
        ("dispatcher", "acknowledge", {}, "acknowledged", "Acknowledged"),
        ("dispatcher", "assign", {"department": "service", "owner_id": "sup-1"},
         "assigned", "Assigned"),
        ("supervisor", "record-findings", {"root_cause": "rushed visit",
         "evidence": ["call recording"], "responsible_staff_id": "tech-1",
         "company_at_fault": True}, "investigated", "InvestigationRecorded"),
        ("supervisor", "plan", {"measures": "apology and revisit", "owner_id": "sup-1",
         "due": iso(at[10] + timedelta(days=3))}, "planned", "ResolutionPlanned"),
        ("dispatcher", "update-progress", {"note": "revisit booked"}, "planned",
         "ProgressUpdated"),
        ("dispatcher", "resolve", {"outcome": "revisited"}, "resolved", "Resolved"),
        ("client_app", "confirm", {"satisfied": False, "csat": 2}, "reopened", "Reopened"),
        ("dispatcher", "resolve", {"outcome": "refund given"}, "resolved", "Resolved"),
        ("client_app", "confirm", {"satisfied": True, "csat": 5}, "closed", "Closed"),
    ]  # fmt: skip
    for i, (role, command, body, state, event) in enumerate(steps, start=1):
        r = desk[role].post(f"/complaints/{complaint}/{command}",
                            {**body, "occurred_at": iso(at[i])})  # fmt: skip
        types.append(event)
        events = check_step(desk, "complaints", complaint, r, state=state, types=types,
                            role=role, occurred_at=at[i])  # fmt: skip

    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["InvestigationRecorded"]["responsible_staff_ids"] == ["tech-1"]
    assert by_type["InvestigationRecorded"]["company_at_fault"] is True
    assert by_type["Reopened"] == {"csat": 2, "reopen_count": 1}
    assert by_type["Closed"] == {"csat": 5}
    final = desk["supervisor"].get(f"/complaints/{complaint}").json()
    assert (final["resolutions"], final["reopens"], final["csat"]) == (2, 1, 5)
    assert final["owner_id"] == "sup-1"


def test_a_critical_complaint_is_escalated_to_level_3_in_the_same_write(api: Api) -> None:
    desk = Desk(api)
    before = api.event_count()
    r = desk["dispatcher"].post("/complaints", lodging(severity="critical"))
    assert r.status_code == 201, r.text
    assert (r.json()["version"], r.headers["ETag"]) == (2, '"2"')
    assert api.event_count() == before + 2
    assert int(r.headers["X-Position"]) == api.head()
    complaint = r.json()["id"]
    events = desk["dispatcher"].get(f"/complaints/{complaint}/history").json()["events"]
    assert [e["type"] for e in events] == ["Lodged", "Escalated"]
    assert events[1]["data"]["level"] == 3
    # The service escalates it, not whoever lodged it (issue 10).
    assert (events[0]["actor"], events[0]["role"]) == ("disp-1", "dispatcher")
    assert (events[1]["actor"], events[1]["role"]) == ("system", "system")
    assert events[1]["occurred_at"] == events[0]["occurred_at"]
    assert desk["dispatcher"].get(f"/complaints/{complaint}").json()["escalation_level"] == 3
