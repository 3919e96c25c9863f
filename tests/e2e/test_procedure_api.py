"""The service procedure over HTTP (contract §11.3, §11.4, §11.6), on SQLite and
PostgreSQL: what a client sends and sees, and every refusal writing nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from fieldledger.api.app import create_app
from fieldledger.application.settings import Settings

from tests.e2e.conftest import Api
from tests.e2e.scenarios import Desk, assert_problem, booking, field_errors
from tests.e2e.test_console import sign_in
from tests.procedure import CHECKLIST_JSON, ON_SITE_CHECKS
from tests.webhook_receiver import Receiver


def invalid(r: Any, field: str) -> dict[str, Any]:
    body = assert_problem(r, 422)
    assert field in field_errors(body), body
    return body


def test_bad_procedure_input_is_refused_naming_the_field_and_writes_nothing(api: Api) -> None:
    desk = Desk(api)
    on_site = desk.work_order_in("on_site")
    in_service = desk.work_order_in("in_service")
    booked = desk.work_order_in("booked")
    tech, disp = desk["technician"], desk["dispatcher"]
    before = api.event_count()
    start = f"/work-orders/{on_site}/start"
    # 004 二(一)2: five lines on the on-site checklist, all true.
    invalid(tech.post(start, {"identity_shown": True, "risk_assessment": "ok"}),
            "customer_identity_verified")  # fmt: skip
    invalid(tech.post(start, {"identity_shown": True, "risk_assessment": "ok",
                              **ON_SITE_CHECKS, "site_safe": False}), "site_safe")  # fmt: skip
    # 004 二(一)2: the item checklist, every item done.
    complete = f"/work-orders/{in_service}/complete"
    invalid(tech.post(complete, {"summary": "done"}), "checklist")
    invalid(tech.post(complete, {"summary": "done", "checklist": []}), "checklist")
    invalid(tech.post(complete, {"summary": "done", "checklist": [
        {"item": "pressure", "done": True}, {"item": "leak test", "done": False}]}),
        "checklist[1].done")  # fmt: skip
    # 000 二(三)5: the new expected completion time.
    invalid(tech.post(f"/work-orders/{in_service}/change-scope", {"description": "pump too"}),
            "new_eta")  # fmt: skip
    # 002 10.2.2: the customer's authorization.
    invalid(disp.post(f"/work-orders/{booked}/resolve-remotely", {"summary": "reset"}),
            "authorized_by")  # fmt: skip
    # 002 篇三: a hand-over to someone known, and someone else.
    hand_over = f"/work-orders/{booked}/hand-over"
    invalid(disp.post(hand_over, {"to_staff_id": "nobody-we-know", "note": "yours"}),
            "to_staff_id")  # fmt: skip
    invalid(disp.post(hand_over, {"to_staff_id": "disp-1", "note": "mine"}), "to_staff_id")
    api.actor("left-the-company", "dispatcher")
    api.app.state.tokens.revoke_actor("left-the-company", datetime.now(UTC))
    invalid(disp.post(hand_over, {"to_staff_id": "left-the-company", "note": "yours"}),
            "to_staff_id")  # a revoked token: no longer staff  # fmt: skip
    invalid(disp.post(hand_over, {"to_staff_id": "sup-1"}), "note")
    # Repeat calls name an existing order.
    invalid(disp.post("/work-orders", booking(
        previous_work_order_id="00000000-0000-4000-8000-000000000000")),
        "previous_work_order_id")  # fmt: skip
    invalid(disp.post("/work-orders", booking(purchase_date="2999-01-01")), "purchase_date")
    assert api.event_count() == before


def test_complaint_procedure_refusals_000_003(api: Api) -> None:
    desk = Desk(api)
    investigated = desk.complaint_in("investigated")
    planned = desk.complaint_in("planned")
    disp, client = desk["dispatcher"], desk["client_app"]
    unvisited = desk.lodge()
    for command, body in [
        ("acknowledge", None), ("assign", {"department": "service", "owner_id": "sup-1"}),
    ]:
        desk.ok("dispatcher", f"/complaints/{unvisited}/{command}", body)
    desk.ok("supervisor", f"/complaints/{unvisited}/record-findings",
            {"root_cause": "rushed", "company_at_fault": False})  # fmt: skip
    desk.ok("supervisor", f"/complaints/{unvisited}/plan",
            {"measures": "apology", "owner_id": "sup-1", "due": "2030-01-01T00:00:00Z"})
    desk.ok("dispatcher", f"/complaints/{unvisited}/resolve",
            {"outcome": "apologised", "customer_informed_via": "phone"})  # fmt: skip
    before = api.event_count()
    # 000 五(三)1: a plan before the resolution.
    body = assert_problem(disp.post(f"/complaints/{investigated}/resolve", {
        "outcome": "apologised", "customer_informed_via": "phone"}), 409)  # fmt: skip
    assert "investigated" in body["detail"] and "plan" in body["detail"]
    # 003 第二十條: how the customer was told.
    invalid(disp.post(f"/complaints/{planned}/resolve", {"outcome": "apologised"}),
            "customer_informed_via")  # fmt: skip
    invalid(disp.post(f"/complaints/{planned}/resolve", {
        "outcome": "apologised", "customer_informed_via": "pigeon"}), "customer_informed_via")
    # 003 第二十二條: a major complaint is not closed without a visit.
    body = assert_problem(client.post(f"/complaints/{unvisited}/confirm",
                                      {"satisfied": True, "csat": 5}), 409)  # fmt: skip
    assert "visit" in body["detail"]
    invalid(disp.post(f"/complaints/{unvisited}/visit", {"note": "no one"}), "visited_by")
    assert api.event_count() == before
    desk.ok("dispatcher", f"/complaints/{unvisited}/visit", {"visited_by": "sup-1"})
    desk.ok("client_app", f"/complaints/{unvisited}/confirm", {"satisfied": True, "csat": 5})
    closed = desk["analyst"].get(f"/complaints/{unvisited}").json()
    assert (closed["state"], closed["visits"], closed["customer_informed_via"]) == (
        "closed", 1, "phone"
    )
    before = api.event_count()
    body = assert_problem(disp.post(f"/complaints/{unvisited}/visit", {"visited_by": "sup-1"}),
                          409)  # fmt: skip
    assert "closed" in body["detail"]
    assert api.event_count() == before


def test_first_responder_hand_over_and_the_remote_path_in_the_history_002(api: Api) -> None:
    desk = Desk(api)
    order = desk.book(model="WB-2000", purchase_date="2024-05-01")
    view = desk["analyst"].get(f"/work-orders/{order}").json()
    assert (view["first_responder_id"], view["accountable_id"]) == ("disp-1", "disp-1")
    assert (view["model"], view["purchase_date"]) == ("WB-2000", "2024-05-01")
    desk.ok("dispatcher", f"/work-orders/{order}/hand-over",
            {"to_staff_id": "sup-1", "note": "needs a decision"})  # fmt: skip
    # Hotline → remote (failed) → on site: one order, both in its history (002 10.2.2).
    desk.ok("dispatcher", f"/work-orders/{order}/resolve-remotely",
            {"summary": "remote reset did not help", "authorized_by": "张三", "resolved": False})
    for role, command, body in [
        ("dispatcher", "assign", {"technician_id": "tech-1"}), ("technician", "confirm", None),
        ("technician", "depart", None), ("technician", "arrive", None),
        ("technician", "start", {"identity_shown": True, "risk_assessment": "ok",
                                 **ON_SITE_CHECKS}),
        ("technician", "complete", {"summary": "fixed", "checklist": CHECKLIST_JSON}),
    ]:  # fmt: skip
        desk.ok(role, f"/work-orders/{order}/{command}", body)
    view = desk["analyst"].get(f"/work-orders/{order}").json()
    assert (view["first_responder_id"], view["accountable_id"]) == ("disp-1", "sup-1")
    assert (view["state"], view["remote_attempts"]) == ("completed", 1)
    history = desk["analyst"].get(f"/work-orders/{order}/history").json()["events"]
    types = [e["type"] for e in history]
    assert types[:4] == ["Booked", "HandedOver", "RemoteFixFailed", "Assigned"]
    assert "Arrived" in types
    assert history[1]["data"] == {"from_staff_id": "disp-1", "to_staff_id": "sup-1",
                                  "note": "needs a decision"}  # fmt: skip
    assert history[2]["data"]["authorized_by"] == "张三"


def test_notifications_for_a_staff_member_with_a_cursor_11_6(api: Api) -> None:
    desk = Desk(api)
    desk.book(occurred_at="2026-10-08T09:00:00+08:00")  # routine, nobody assigned
    api.catch_up()
    report = api.sweep(datetime.fromisoformat("2026-10-08T12:30:00+08:00"))
    assert [(r.target, r.owner_id) for r in report.reminded] == [("response", "disp-1")]
    api.sweep(datetime.fromisoformat("2026-10-08T13:30:00+08:00"))
    disp = desk["dispatcher"]
    first = disp.get("/notifications", **{"for": "disp-1", "limit": 1, "min_position": api.head()})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [n["kind"] for n in page["items"]] == ["reminder"]
    rest = disp.get("/notifications", **{"for": "disp-1", "cursor": page["next_cursor"]}).json()
    assert [n["kind"] for n in rest["items"]] == ["escalation"]
    assert rest["items"][0]["delivered_at"] is None  # no webhook here
    done = disp.get("/notifications", **{"for": "disp-1", "cursor": rest["next_cursor"]}).json()
    assert done == {"items": [], "next_cursor": rest["next_cursor"]}
    # The board names the coordinator the escalation appointed (004 二(二)).
    board = desk["supervisor"].get("/sla/board", at="2026-10-08T13:40:00+08:00", status="red",
                                   min_position=api.head()).json()["items"]  # fmt: skip
    assert {i["coordinator_id"] for i in board} == {"duty-dispatcher"}
    # So does the console's board, in a column of its own.
    sign_in(api, "sup-1", "supervisor")
    rows = api.client.get("/console/board/rows", params={"min_position": api.head()})
    assert rows.status_code == 200, rows.text
    assert "<td>duty-dispatcher</td>" in rows.text
    # A technician reads only their own.
    assert_problem(desk["technician"].get("/notifications", **{"for": "disp-1"}), 403)
    assert desk["technician"].get("/notifications", **{"for": "tech-1"}).json()["items"] == []
    invalid(disp.get("/notifications"), "for")


def test_serve_delivers_notifications_to_the_webhook_of_its_settings_11_6(
    database_url: str,
) -> None:
    receiver = Receiver(failures=1)
    settings = Settings(database_url=database_url, background=True, sweep_interval=0,
                        poll_interval=0.05, webhook_url=receiver.url,
                        max_backdate="none")  # books in October 2026, as history  # fmt: skip
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = Api(client, client.app)  # type: ignore[arg-type]
            assert api.app.state.delivery is not None
            Desk(api).book(occurred_at="2026-10-08T09:00:00+08:00")
            api.catch_up()
            api.sweep(datetime.fromisoformat("2026-10-08T12:30:00+08:00"))
            deadline = time.monotonic() + 60
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
            (notice,) = receiver.received  # delivered after one failed answer
            assert (notice["kind"], notice["recipient_id"]) == ("reminder", "disp-1")
    finally:
        receiver.close()
