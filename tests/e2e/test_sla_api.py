"""SLA over HTTP on both databases: targets on the record, the board, compliance,
bad parameters, and what /healthz says of the calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.application.settings import Settings
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.sla import calendar_report

from tests.e2e.conftest import Actor, Api
from tests.views import wait_until

ORDER = {
    "customer": {"name": "王芳", "phone": "13800000000", "address": "上海"},
    "service_type": "repair", "zone": "urban", "channel": "phone", "billing": "paid",
    "description": "不制冷",
}  # fmt: skip


def book(actor: Actor, occurred_at: str, priority: str = "priority") -> Any:
    r = actor.post("/work-orders", {**ORDER, "priority": priority, "occurred_at": occurred_at})
    assert r.status_code == 201, r.text
    return r


def assign(actor: Actor, order_id: str, occurred_at: str, technician_id: str = "tech-1") -> Any:
    r = actor.post(
        f"/work-orders/{order_id}/assign",
        {"technician_id": technician_id, "occurred_at": occurred_at},
    )
    assert r.status_code == 200, r.text
    return r


def test_a_work_order_shows_its_targets_computed_now_and_as_of(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    # Thu 2026-10-08 09:00 Shanghai, priority: response due 11:00, arrival 15:00,
    # resolution Fri 10-09 16:00 (8.5 working h Thu + 7.5 Fri).
    order = book(dispatcher, "2026-10-08T09:00:00+08:00").json()["id"]
    assign(dispatcher, order, "2026-10-08T10:50:00+08:00")
    body = dispatcher.get(f"/work-orders/{order}").json()
    sla = {row["target"]: row for row in body["sla"]}
    assert set(sla) == {"response", "arrival", "resolution"}
    response = sla["response"]
    assert {k: response[k] for k in ("due_at", "met_at", "status", "paused_seconds",
                                     "policy_version")} == {
        "due_at": "2026-10-08T03:00:00+00:00",
        "met_at": "2026-10-08T02:50:00+00:00",
        "status": "met",
        "paused_seconds": 0,
        "policy_version": builtin_policy().version,
    }  # fmt: skip
    assert response["breached"] is False
    assert sla["arrival"]["due_at"] == "2026-10-08T07:00:00+00:00"
    assert sla["arrival"]["status"] == "red"  # long past due by now, never met
    assert sla["resolution"]["due_at"] == "2026-10-09T08:00:00+00:00"

    then = dispatcher.get(f"/work-orders/{order}", as_of="2026-10-08T10:40:00+08:00").json()
    statuses = {row["target"]: row["status"] for row in then["sla"]}
    assert statuses == {"response": "yellow", "arrival": "blue", "resolution": "blue"}


def test_a_complaint_shows_its_targets(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    r = dispatcher.post("/complaints", {
        "customer": {"name": "李雷", "phone": "139"}, "channel": "phone",
        "category": "attitude", "severity": "critical", "description": "rude",
        "occurred_at": "2026-10-02T10:00:00+08:00",
    })  # fmt: skip
    assert r.status_code == 201, r.text
    body = dispatcher.get(f"/complaints/{r.json()['id']}").json()
    sla = {row["target"]: row for row in body["sla"]}
    assert set(sla) == {"acknowledgement", "resolution", "closure"}
    assert sla["acknowledgement"]["due_at"] == "2026-10-02T03:00:00+00:00"  # 1 h, calendar
    # 63 working h from a holiday: the clock starts Thu 10-08 08:30; 9 h a day on 10-08,
    # 10-09, 10-10 (make-up Saturday), 10-12 .. 10-15 = 63 h -> Thu 10-15 17:30.
    assert sla["resolution"]["due_at"] == "2026-10-15T09:30:00+00:00"
    assert body["escalation_level"] == 3


def test_the_board_at_an_instant(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    supervisor = api.actor("sup-1", "supervisor")
    late = book(dispatcher, "2026-10-08T09:00:00+08:00").json()["id"]
    routine = book(dispatcher, "2026-10-08T10:00:00+08:00", "routine").json()["id"]
    position = assign(dispatcher, late, "2026-10-08T12:00:00+08:00").headers["X-Position"]

    # Read your writes: no catch-up by hand, the board waits for the position.
    r = supervisor.get("/sla/board", at="2026-10-08T11:30:00+08:00", status="red,yellow",
                       min_position=position)  # fmt: skip
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["at"] == "2026-10-08T03:30:00+00:00"
    assert board["items"] == [{
        "aggregate_id": late, "kind": "work_order", "target": "response",
        "due_at": "2026-10-08T03:00:00+00:00", "status": "red", "escalation_level": 0,
        "owner_id": None, "coordinator_id": None, "started_at": "2026-10-08T01:00:00+00:00",
        "policy_version": builtin_policy().version, "calendar_warning": None,
    }]  # fmt: skip

    everything = supervisor.get("/sla/board", at="2026-10-08T13:30:00+08:00").json()["items"]
    keys = {(i["aggregate_id"], i["target"]): i for i in everything}
    assert (late, "response") not in keys  # met at 12:00
    assert keys[(late, "arrival")]["owner_id"] == "tech-1"
    # routine response: 10:00 + 4 h = 14:00, yellow from 13:12.
    assert keys[(routine, "response")]["status"] == "yellow"
    assert [i["status"] for i in everything] == sorted(
        (i["status"] for i in everything), key=["red", "yellow", "blue"].index
    )
    assert supervisor.get("/sla/board", kind="complaint", at="2026-10-08T13:30:00+08:00").json()[
        "items"
    ] == []
    # An instant written with an unencoded "+" arrives as a space and is read right.
    spaced = api.client.get(
        "/sla/board?at=2026-10-08T11:30:00+08:00&status=red", headers=supervisor.headers
    )
    assert [i["aggregate_id"] for i in spaced.json()["items"]] == [late]
    # The first and last instants the calendar holds: an answer, not a 500.
    first = supervisor.get("/sla/board", at="0001-01-01T00:00:00+00:00", min_position=position)
    assert (first.status_code, first.json()["items"]) == (200, [])
    last = supervisor.get("/sla/board", at="9999-12-31T23:59:59+00:00").json()["items"]
    assert {(i["aggregate_id"], i["target"]) for i in last} == {
        (late, "arrival"), (late, "resolution"), (routine, "response"), (routine, "arrival"),
        (routine, "resolution"),
    }  # fmt: skip


def test_compliance_per_group(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    analyst = api.actor("ana-1", "analyst")
    on_time = book(dispatcher, "2026-10-08T09:00:00+08:00").json()["id"]
    assign(dispatcher, on_time, "2026-10-08T10:00:00+08:00", "tech-1")
    late = book(dispatcher, "2026-10-08T09:00:00+08:00", "routine").json()["id"]
    assign(dispatcher, late, "2026-10-08T15:00:00+08:00", "tech-2")
    outside = book(dispatcher, "2026-10-20T09:00:00+08:00")  # outside the period
    position = outside.headers["X-Position"]

    r = analyst.get("/sla/compliance", **{"from": "2026-10-08", "to": "2026-10-08",
                                          "group_by": "priority", "min_position": position})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == ("2026-10-07T16:00:00+00:00", "2026-10-08T16:00:00+00:00")
    groups = {g["key"]: g for g in body["groups"]}
    # All six targets' due times are long past now: unmet ones are breached.
    assert groups["priority"] == {"key": "priority", "met": 1, "breached": 2, "open": 0,
                                  "rate": 33.33}  # fmt: skip
    assert groups["routine"] == {"key": "routine", "met": 0, "breached": 3, "open": 0,
                                 "rate": 0.0}  # fmt: skip

    by_tech = analyst.get("/sla/compliance", group_by="technician", to="2026-10-09").json()
    assert [g["key"] for g in by_tech["groups"]] == ["tech-1", "tech-2"]
    overall = analyst.get("/sla/compliance").json()["groups"]
    assert [(g["key"], g["met"] + g["breached"] + g["open"]) for g in overall] == [("all", 9)]


def a_moment_passes() -> datetime:
    """An instant strictly between what was recorded before and what comes after."""
    mark = datetime.now(UTC)
    while datetime.now(UTC) <= mark:
        pass
    return mark


def test_board_and_compliance_as_of_what_was_recorded_then(api: Api) -> None:
    dispatcher = api.actor("disp-1", "dispatcher")
    analyst = api.actor("ana-1", "analyst")
    first = book(dispatcher, "2026-10-08T09:00:00+08:00").json()["id"]
    before = a_moment_passes()
    assign(dispatcher, first, "2026-10-08T10:00:00+08:00", "tech-1")  # meets the response
    book(dispatcher, "2026-10-08T09:30:00+08:00", "routine")
    api.catch_up()
    at = "2026-10-08T11:30:00+08:00"

    # Then: only the first order, its response target (due 11:00) not yet met.
    then = analyst.get("/sla/board", at=at, as_of=before.isoformat())
    assert then.status_code == 200, then.text
    items = then.json()["items"]
    assert {i["aggregate_id"] for i in items} == {first}
    assert ("response", "red", None) in [(i["target"], i["status"], i["owner_id"]) for i in items]
    now = analyst.get("/sla/board", at=at).json()["items"]
    assert "response" not in {i["target"] for i in now if i["aggregate_id"] == first}
    assert len({i["aggregate_id"] for i in now}) == 2

    # Compliance as of then: past due counted at that instant, the target not yet met.
    old = analyst.get("/sla/compliance", as_of=before.isoformat(), group_by="priority").json()
    assert old["at"] == before.astimezone(UTC).isoformat()
    assert [(g["key"], g["met"]) for g in old["groups"]] == [("priority", 0)]
    current = analyst.get("/sla/compliance", group_by="priority").json()
    assert {g["key"]: g["met"] for g in current["groups"]} == {"priority": 1, "routine": 0}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/sla/board", {"at": "yesterday"}, "at"),
        ("/sla/board", {"at": "2026-10-08T10:00:00"}, "at"),
        ("/sla/board", {"status": "red,purple"}, "status"),
        ("/sla/board", {"kind": "invoice"}, "kind"),
        ("/sla/board", {"min_position": "-1"}, "min_position"),
        ("/sla/compliance", {"group_by": "colour"}, "group_by"),
        ("/sla/compliance", {"from": "2026-13-01"}, "from"),
        ("/sla/compliance", {"from": "2026-10-09", "to": "2026-10-01"}, "to"),
        ("/sla/compliance", {"group_by": "severity", "kind": "work_order"}, "group_by"),
        ("/sla/compliance", {"as_of": "2026-10-08T10:00:00"}, "as_of"),
        ("/sla/board", {"as_of": "yesterday"}, "as_of"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    r = api.actor("sup-1", "supervisor").get(path, **params)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]


def test_sla_queries_need_a_token(api: Api) -> None:
    assert api.client.get("/sla/board").status_code == 401
    assert api.client.get("/sla/compliance").status_code == 401


def test_health_reports_years_without_make_up_data(api: Api) -> None:
    calendar = api.client.get("/healthz").json()["calendar"]
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    expected = calendar_report(builtin_policy(), "Asia/Shanghai", (year, year + 1))
    assert calendar == expected
    assert calendar["country"] == "CN"
    # The data as shipped: 2026 has its make-up days, 2027 not yet.
    assert calendar_report(builtin_policy(), "Asia/Shanghai", (2026, 2027))[
        "years_without_makeup_data"
    ] == [2027]


def test_serve_sweeps_in_the_background_when_asked(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, background=True, sweep_interval=0.05, poll_interval=0.05,
        max_backdate="none",  # books in October 2026, as history
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert app.state.sweeper is not None
        api = Api(client, app)
        dispatcher = api.actor("disp-1", "dispatcher")
        order = book(dispatcher, "2026-10-08T09:00:00+08:00").json()["id"]

        def escalated() -> list[str]:
            history = dispatcher.get(f"/work-orders/{order}/history").json()["events"]
            return [e["data"]["target"] for e in history if e["type"] == "Escalated"]

        wait_until(lambda: len(escalated()) == 3, timeout=30)
        assert escalated() == ["response", "arrival", "resolution"]


def test_no_background_sweep_without_background(api: Api) -> None:
    assert api.app.state.sweeper is None
