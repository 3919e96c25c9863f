"""Satisfaction, appraisal and callbacks over HTTP, on both databases, including
`as_of` (the answer as it was at an instant) and `min_position` (read your writes).

The field happened in October 2026 (`occurred_at`); the server records it now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import Actor, Api

APPOINTMENT = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def iso(when: datetime) -> str:
    return when.isoformat()


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response


def visit(
    api: Api, technician: str, *, day: int = 0, minutes_late: int = 0, rejections: int = 0,
    service_type: str = "repair",
) -> tuple[str, Any]:  # fmt: skip
    """An order booked, assigned, visited (arrived `minutes_late`) and accepted in
    October; returns its id and the last response."""
    start = APPOINTMENT + timedelta(days=day)
    dispatcher = api.actor("disp-1", "dispatcher")
    tech = api.actor(technician, "technician")
    booked = ok(dispatcher.post("/work-orders", {
        "customer": {"name": "张三", "phone": "13800000000", "address": "北京"},
        "service_type": service_type, "priority": "routine", "zone": "urban",
        "channel": "phone", "billing": "paid", "description": "漏水",
        "appointment": {"start": iso(start), "end": iso(start + timedelta(hours=2))},
        "occurred_at": iso(start - timedelta(days=1)),
    }), 201).json()  # fmt: skip
    order = booked["id"]
    at = start - timedelta(hours=1)

    def command(actor: Actor, name: str, when: datetime, **body: Any) -> Any:
        return ok(actor.post(f"/work-orders/{order}/{name}", {**body, "occurred_at": iso(when)}))

    command(dispatcher, "assign", at - timedelta(hours=1), technician_id=technician)
    command(tech, "confirm", at)
    command(tech, "depart", at)
    arrived = start + timedelta(minutes=minutes_late)
    command(tech, "arrive", arrived)
    command(tech, "start", arrived, identity_shown=True, risk_assessment="dry floor")
    command(tech, "complete", arrived + timedelta(hours=1), summary="fixed", parts_used=[])
    for _ in range(rejections):
        command(tech, "reject", arrived + timedelta(hours=1), reasons=["still leaking"])
        command(tech, "complete", arrived + timedelta(hours=2), summary="fixed", parts_used=[])
    last = command(tech, "accept", arrived + timedelta(hours=2), signed_by="张三")
    return order, last


def feedback(api: Api, order: str, when: datetime, csat: int, *, praise: bool = False) -> Any:
    client = api.actor("app-1", "client_app")
    return ok(client.post(f"/work-orders/{order}/feedback", {
        "csat": csat, "attitude": 4, "skill": 3, "punctuality": 4, "promise": 3,
        "praise": praise, "comment": "谢谢", "occurred_at": iso(when),
    }))  # fmt: skip


def conduct(api: Api, staff: str, kind: str, when: datetime) -> Any:
    supervisor = api.actor("sup-1", "supervisor")
    return ok(supervisor.post(f"/staff/{staff}/conduct", {"kind": kind, "occurred_at": iso(when)}))


def a_moment_passes() -> datetime:
    """An instant strictly between what was recorded before and what comes after."""
    mark = datetime.now(UTC)
    while datetime.now(UTC) <= mark:
        pass
    return mark


def test_appraisal_and_ranking(api: Api) -> None:
    order, _ = visit(api, "tech-1", minutes_late=12)  # -10
    praised, _ = visit(api, "tech-2", day=1)
    # +5 praise, +2 ratings: mean 3.5 of the four dimensions (003 第十七條)
    feedback(api, praised, APPOINTMENT + timedelta(days=2), 5, praise=True)
    before_conduct = a_moment_passes()
    for day in (5, 6, 7):  # the third personal call: warning and a further -10
        last = conduct(api, "tech-1", "personal_call", datetime(2026, 10, day, 2, tzinfo=UTC))

    supervisor = api.actor("sup-1", "supervisor")
    # Read your writes: no catch-up, the query waits for the command's position.
    got = ok(supervisor.get("/appraisal/tech-1", period="2026-10",
                            min_position=last.headers["X-Position"])).json()  # fmt: skip
    assert got["staff_id"] == "tech-1" and got["period"] == "2026-10"
    assert got["points"] == 100 - 10 - 5 * 3 - 10
    assert [(i["rule"], i["points"], i["event_type"]) for i in got["items"]] == [
        ("conduct", -5, "ConductRecorded"),
        ("conduct", -5, "ConductRecorded"),
        ("conduct", -5, "ConductRecorded"),
        ("discipline_step", -10, "ConductRecorded"),
        ("late_arrival", -10, "Arrived"),
    ]
    late = got["items"][-1]
    assert late["aggregate_id"] == order
    assert late["occurred_at"].startswith("2026-10-14T02:12:00")
    history = ok(supervisor.get(f"/work-orders/{order}/history")).json()["events"]
    (arrived,) = [e for e in history if e["version"] == late["version"]]
    assert arrived["type"] == "Arrived" and arrived["data"]["minutes_late"] == 12
    assert got["discipline"] == {"personal_call": "warning"}
    indicators = got["indicators"]
    assert (indicators["on_time_arrival_pct"], indicators["late_arrivals"]) == (0, 1)
    assert indicators["first_time_fix_pct"] == 100
    assert (indicators["complaints_against"], indicators["complaints_resolved"]) == (0, 0)

    # As it was before the conduct records were made (they occurred in October
    # but were recorded later): only the late arrival.
    then = ok(supervisor.get("/appraisal/tech-1", period="2026-10", as_of=iso(before_conduct)))
    assert then.json()["points"] == 90
    assert then.json()["as_of"] is not None
    assert ok(supervisor.get("/appraisal/tech-1", period="2026-10")).json()["points"] == 65

    expected = [
        {"staff_id": "tech-2", "points": 107, "rank": 1},
        {"staff_id": "tech-1", "points": 65, "rank": 2},
    ]
    assert ok(supervisor.get("/appraisal", period="2026-10")).json()["ranking"] == expected
    assert ok(supervisor.get("/appraisal", period="2026-Q4")).json() == {
        "period": "2026-Q4", "ranking": expected, "as_of": None,
    }  # fmt: skip
    old = ok(supervisor.get("/appraisal", period="2026-10", as_of=iso(before_conduct))).json()
    assert [e["points"] for e in old["ranking"]] == [107, 90]

    # A technician reads their own appraisal and their own line of the ranking only.
    tech1 = api.actor("tech-1", "technician")
    assert ok(tech1.get("/appraisal/tech-1", period="2026-10")).json()["points"] == 65
    assert tech1.get("/appraisal/tech-2", period="2026-10").status_code == 403
    assert ok(tech1.get("/appraisal", period="2026-10")).json()["ranking"] == [expected[1]]
    analyst = api.actor("ana-1", "analyst")
    assert ok(analyst.get("/appraisal/tech-2", period="2026-10")).json()["points"] == 107


def test_appraisal_answers_clear_errors(api: Api) -> None:
    visit(api, "tech-1")
    api.catch_up()
    supervisor = api.actor("sup-1", "supervisor")
    missing = supervisor.get("/appraisal/nobody", period="2026-10")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    for bad in ("2026-13", "October", "2026-Q5"):
        r = supervisor.get("/appraisal/tech-1", period=bad)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "period"
    naive = supervisor.get("/appraisal/tech-1", period="2026-10", as_of="2026-10-01T00:00:00")
    assert naive.status_code == 422
    assert api.client.get("/appraisal", params={"period": "2026-10"}).status_code == 401
    # Before anything was recorded, nobody was known.
    early = supervisor.get("/appraisal/tech-1", period="2026-10", as_of="2020-01-01T00:00:00Z")
    assert early.status_code == 404


def test_satisfaction_summary(api: Api) -> None:
    first, _ = visit(api, "tech-1", service_type="repair")
    second, _ = visit(api, "tech-1", day=1, rejections=1, service_type="install")
    visit(api, "tech-2", day=2, service_type="repair")
    feedback(api, first, APPOINTMENT + timedelta(days=3), 5)
    before_second = a_moment_passes()
    feedback(api, second, APPOINTMENT + timedelta(days=3), 3)
    dispatcher = api.actor("disp-1", "dispatcher")
    ok(dispatcher.post("/complaints", {
        "customer": {"name": "李四", "phone": "13900000000"}, "channel": "phone",
        "category": "service", "severity": "minor", "description": "rude",
        "work_order_id": second, "occurred_at": iso(APPOINTMENT + timedelta(days=4)),
    }), 201)  # fmt: skip
    api.catch_up()

    analyst = api.actor("ana-1", "analyst")
    body = ok(analyst.get("/satisfaction/summary", **{
        "from": "2026-10-01", "to": "2026-10-31", "group_by": "technician"
    })).json()  # fmt: skip
    assert body["from"].startswith("2026-09-30T16:00:00")  # local midnight, Shanghai
    assert body["thresholds"] == {"good_csat": 4, "csat_pct": 85, "first_time_fix_pct": 90}
    groups = {g["key"]: g for g in body["groups"]}
    one = groups["tech-1"]
    assert (one["csat_pct"], one["first_time_fix_pct"]) == (50, 50)
    assert one["dimensions"] == {"attitude": 4, "skill": 3, "punctuality": 4, "promise": 3}
    assert (one["surveys_expected"], one["surveys_received"], one["complaints"]) == (2, 2, 1)
    assert one["below_threshold"] == ["csat_pct", "first_time_fix_pct"]
    two = groups["tech-2"]
    assert (two["surveys_expected"], two["surveys_received"], two["csat_pct"]) == (1, 0, None)
    assert two["first_time_fix_pct"] == 100 and two["below_threshold"] == []

    by_type = ok(analyst.get("/satisfaction/summary", group_by="service_type")).json()
    assert [(g["key"], g["surveys_expected"], g["complaints"]) for g in by_type["groups"]] == [
        ("install", 1, 1), ("repair", 2, 0)
    ]
    then = ok(analyst.get("/satisfaction/summary", as_of=iso(before_second))).json()
    then_one = {g["key"]: g for g in then["groups"]}["tech-1"]
    assert (then_one["surveys_received"], then_one["csat_pct"], then_one["complaints"]) == (
        1, 100, 0
    )
    november = ok(analyst.get("/satisfaction/summary", **{"from": "2026-11-01"})).json()
    assert november["groups"] == []

    bad = analyst.get("/satisfaction/summary", **{"from": "yesterday"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "from"
    backwards = analyst.get("/satisfaction/summary", **{"from": "2026-10-02", "to": "2026-10-01"})
    assert backwards.status_code == 422
    assert analyst.get("/satisfaction/summary", group_by="zone").status_code == 422


def test_callbacks_due(api: Api) -> None:
    order, _ = visit(api, "tech-1")  # accepted on 14 October (Shanghai)
    api.catch_up()
    dispatcher = api.actor("disp-1", "dispatcher")
    assert ok(dispatcher.get("/callbacks/due", on="2026-11-13")).json() == {
        "on": "2026-11-13", "items": []
    }  # fmt: skip
    (item,) = ok(dispatcher.get("/callbacks/due", on="2026-11-14")).json()["items"]
    assert (item["work_order_id"], item["due_on"], item["overdue"]) == (order, "2026-11-14", False)
    (item,) = ok(dispatcher.get("/callbacks/due", on="2026-11-20")).json()["items"]
    assert (item["due_on"], item["overdue"], item["days_overdue"]) == ("2026-11-14", True, 6)

    logged = ok(dispatcher.post(f"/work-orders/{order}/log-callback", {
        "outcome": "happy", "note": "all good",
        "occurred_at": "2026-11-20T03:00:00+00:00",
    }))  # fmt: skip
    after = ok(dispatcher.get("/callbacks/due", on="2026-12-20",
                              min_position=logged.headers["X-Position"])).json()  # fmt: skip
    (item,) = after["items"]
    assert (item["due_on"], item["overdue"], item["callbacks"]) == ("2026-12-20", False, 1)
    assert item["last_callback_on"] == "2026-11-20"
    assert ok(dispatcher.get("/callbacks/due", on="2026-12-19")).json()["items"] == []
    assert dispatcher.get("/callbacks/due", on="20-12-2026").status_code == 422
    openapi = api.client.get("/openapi.json").json()["paths"]
    for path in ("/satisfaction/summary", "/appraisal/{staff_id}", "/appraisal", "/callbacks/due"):
        assert "get" in openapi[path]
