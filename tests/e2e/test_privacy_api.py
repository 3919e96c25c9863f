"""Customers' personal data over HTTP (docs/privacy.md, docs/api.md "Customers'
contact details"), on SQLite and PostgreSQL: who sees what, access and copy,
erasure, and that nothing personal reaches the logs."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.scenarios import ROLES, Desk, assert_problem, booking, lodging
from tests.store_dump import dump_database, found_in

ZHANG = booking()["customer"]
LI = lodging()["customer"]
FULL = {"name": "张三", "phone": "13800000000", "address": "北京市朝阳区 1 号"}
MASKED = {"name": "张*", "phone": "138****0000", "address": None}
ERASED = {"name": "[erased]", "phone": "[erased]", "address": "[erased]"}


def contact(shown: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in shown.items() if k != "customer_id"}


def test_who_sees_a_customers_contact_details(api: Api) -> None:
    desk = Desk(api)
    mine = desk.work_order_in("assigned")  # assigned to tech-1
    theirs = desk.book()
    desk.ok("dispatcher", f"/work-orders/{theirs}/assign", {"technician_id": "tech-2"})
    complaint = desk.lodge()
    tech2 = api.actor("tech-2", "technician")

    def seen(actor: Any, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        got = actor.get(path)
        assert got.status_code == 200, got.text
        history = actor.get(f"{path}/history")
        assert history.status_code == 200, history.text
        return got.json()["customer"], history.json()["events"][0]["data"]["customer"]

    expected = {
        "client_app": FULL, "dispatcher": FULL, "supervisor": FULL,
        "technician": FULL,  # tech-1, on the order assigned to them
        "analyst": MASKED, "system": MASKED,
    }  # fmt: skip
    for role in ROLES:
        view, event = seen(desk[role], f"/work-orders/{mine}")
        assert contact(view) == contact(event) == expected[role], role
        assert view["customer_id"] == event["customer_id"]
    # Assigned to them now: also in a view of the order as it was before.
    booked_at = desk["supervisor"].get(f"/work-orders/{mine}/history").json()["events"][0]
    past = desk["technician"].get(f"/work-orders/{mine}", as_of=booked_at["occurred_at"]).json()
    assert past["technician_id"] is None and contact(past["customer"]) == FULL
    # Another technician's order: masked, as for analysts.
    view, event = seen(desk["technician"], f"/work-orders/{theirs}")
    assert contact(view) == contact(event) == MASKED
    view, _ = seen(tech2, f"/work-orders/{theirs}")
    assert contact(view) == FULL
    # Complaints: technicians and analysts see the complainant masked.
    for role, shown in (("dispatcher", {"name": "李四", "phone": "13900000000"}),
                        ("technician", {"name": "李*", "phone": "139****0000"}),
                        ("analyst", {"name": "李*", "phone": "139****0000"})):  # fmt: skip
        view, event = seen(desk[role], f"/complaints/{complaint}")
        assert contact(view) == contact(event) == shown, role

    # The audit search: in full for supervisors, masked for analysts and the system.
    api.catch_up()
    for role, shown in (("supervisor", FULL), ("analyst", MASKED), ("system", MASKED)):
        page = desk[role].get("/audit", type="Booked", aggregate_id=mine).json()
        assert contact(page["events"][0]["data"]["customer"]) == shown, role


def test_lookup_access_and_erasure(api: Api, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    desk = Desk(api)
    order = desk.work_order_in("accepted")
    desk.ok("client_app", f"/work-orders/{order}/feedback", {"csat": 5, "attitude": 4,
            "skill": 4, "punctuality": 4, "promise": 4, "praise": True, "comment": ""})  # fmt: skip
    other = desk.book(customer={"name": "王五", "phone": "13700000000", "address": "上海"})
    complaint = desk.lodge(customer={"name": "张三", "phone": "+86 138 0000 0000"},
                           work_order_id=order)  # fmt: skip
    supervisor = desk["supervisor"]
    # A booking with an Idempotency-Key: its receipt is stored too (and holds no contact).
    keyed = desk["dispatcher"].post("/work-orders", booking(), **{"Idempotency-Key": "b-1"})
    assert keyed.status_code == 201, keyed.text

    # Only supervisors look customers up, read their data or erase it.
    for role in ROLES:
        if role == "supervisor":
            continue
        assert_problem(desk[role].post("/customers/lookup", {"phone": ZHANG["phone"]}), 403)
        assert_problem(desk[role].post(f"/customers/{order}/erase", {"reason": "x"}), 403)
        assert_problem(desk[role].get(f"/customers/{order}/data"), 403)
    found = supervisor.post("/customers/lookup", {"phone": "138-0000-0000"})
    assert found.status_code == 200, found.text
    customer_id = found.json()["customer_id"]
    assert desk["dispatcher"].get(f"/work-orders/{order}").json()["customer"]["customer_id"] == (
        customer_id
    )
    assert_problem(supervisor.get(f"/customers/{uuid.uuid4()}/data"), 404)
    assert_problem(supervisor.post(f"/customers/{customer_id}/erase", {}), 422)
    assert_problem(supervisor.post(f"/customers/{customer_id}/erase", {"reason": " "}), 422)

    # Access and copy: everything held, decrypted.
    data = supervisor.get(f"/customers/{customer_id}/data")
    assert data.status_code == 200, data.text
    held = data.json()
    assert held["erased"] is False and held["erasures"] == []
    assert {c["phone"] for c in held["contacts"]} == {"13800000000", "+86 138 0000 0000"}
    assert {r["id"] for r in held["records"]} == {order, complaint, keyed.json()["id"]}
    assert sorted(r["kind"] for r in held["records"]) == ["complaint", "work_order", "work_order"]
    booked = next(r for r in held["records"] if r["id"] == order)["events"]
    assert booked[0]["type"] == "Booked" and contact(booked[0]["data"]["customer"]) == FULL
    assert booked[-1]["type"] == "FeedbackReceived" and booked[-1]["data"]["feedback"]["csat"] == 5

    api.catch_up()
    reports = {
        path: supervisor.get(path, **params).json()
        for path, params in (
            ("/satisfaction/summary", {"from": "2000-01-01", "to": "2100-01-01"}),
            ("/appraisal", {"period": booked[0]["occurred_at"][:7]}),
            ("/sla/compliance", {"from": "2000-01-01", "to": "2100-01-01"}),
        )
    }
    before = supervisor.get("/audit", limit=500).json()["events"]

    erased = supervisor.post(f"/customers/{customer_id}/erase",
                             {"reason": "consent withdrawn (ticket 4411)"})  # fmt: skip
    assert erased.status_code == 200, erased.text
    assert erased.json() == {"id": customer_id, "version": 1, "state": "erased"}
    position = int(erased.headers["X-Position"])

    # Every answer reads [erased] now; the other customer is untouched.
    assert contact(supervisor.get(f"/work-orders/{order}").json()["customer"]) == ERASED
    assert contact(desk["analyst"].get(f"/work-orders/{order}").json()["customer"]) == {
        **ERASED, "address": None}  # an analyst sees no address at all
    history = desk["dispatcher"].get(f"/work-orders/{order}/history").json()["events"]
    assert contact(history[0]["data"]["customer"]) == ERASED
    assert supervisor.get(f"/complaints/{complaint}").json()["customer"]["name"] == "[erased]"
    assert supervisor.get(f"/work-orders/{other}").json()["customer"]["name"] == "王五"
    held = supervisor.get(f"/customers/{customer_id}/data").json()
    assert held["erased"] is True
    assert [(e["actor"], e["reason"]) for e in held["erasures"]] == [
        ("sup-1", "consent withdrawn (ticket 4411)")]  # fmt: skip
    assert {c["name"] for c in held["contacts"]} == {"[erased]"}

    # The audit search: the same events, the erased contact read [erased], plus Erased.
    after = supervisor.get("/audit", limit=500, min_position=position).json()["events"]
    assert after[0]["type"] == "Erased" and after[0]["kind"] == "customer"
    assert after[0]["data"] == {"reason": "consent withdrawn (ticket 4411)", "keys_destroyed": 1}
    assert len(after) == len(before) + 1
    for then, now in zip(before, after[1:], strict=True):
        assert then["hash"] == now["hash"]
        if "customer" in then["data"]:
            if then["data"]["customer"]["customer_id"] == customer_id:
                assert set(now["data"]["customer"].values()) - {customer_id} == {"[erased]"}
            else:
                assert now["data"]["customer"] == then["data"]["customer"]
            then["data"].pop("customer")
            now["data"].pop("customer")
        if "signed_by" in then["data"]:  # the signature is the customer's too
            assert (then["data"].pop("signed_by"), now["data"].pop("signed_by")) == (
                "张三", "[erased]")
        assert then == now

    # Figures: unchanged.
    for path, params in (
        ("/satisfaction/summary", {"from": "2000-01-01", "to": "2100-01-01"}),
        ("/appraisal", {"period": booked[0]["occurred_at"][:7]}),
        ("/sla/compliance", {"from": "2000-01-01", "to": "2100-01-01"}),
    ):
        now = supervisor.get(path, **params, min_position=position).json()
        now.pop("at", None), reports[path].pop("at", None)  # when it was asked
        assert now == reports[path], path

    # Erasing again with nothing new writes nothing.
    again = supervisor.post(f"/customers/{customer_id}/erase", {"reason": "again"})
    assert again.status_code == 200 and "X-Position" not in again.headers
    assert api.head() == position

    # No table holds Zhang's details; no log line either.
    assert found_in(dump_database(database_url), [*FULL.values(), "+86 138 0000 0000"]) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "the service logged nothing at all?"
    leaked = [r for r in caplog.records if found_in(r.getMessage(), list(FULL.values()))]
    assert leaked == [], [(r.name, r.getMessage()[:300]) for r in leaked]
    assert found_in(logged, [*FULL.values(), LI["phone"], "13700000000"]) == []
