"""Maintenance contracts over HTTP, on both databases (contract §11.5): sign,
renew, end, the conventions of every resource, renewal notices recorded once by
the sweep one month before the end (003 第十五條), `renewals-due`, and contract
orders naming their contract (003 第一條 合同服務)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fieldledger.application.sla_sweep import SweepReport, sweep
from fieldledger.domain.periods import local_date
from fieldledger.projections.maintenance_contracts import ContractRenewals
from fieldledger.projections.sla import SlaRedTargets

from tests.e2e.conftest import Actor, Api

CUSTOMER = {"name": "王五", "phone": "13900000000", "address": "上海市浦东新区1号"}


def today() -> date:
    return local_date(datetime.now(UTC), "Asia/Shanghai")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def sign(desk: Actor, *, starts_on: date, ends_on: date, visits: int = 4, **headers: str) -> Any:
    return desk.post("/maintenance-contracts", {
        "customer": CUSTOMER, "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(), "visits_per_year": visits,
    }, **headers)  # fmt: skip


def run_sweep(api: Api, at: datetime | None = None) -> SweepReport:
    projections = api.app.state.projections
    return sweep(
        api.app.state.ledger, SlaRedTargets(projections), at,
        renewals=ContractRenewals(projections),
    )  # fmt: skip


def test_a_contract_is_signed_read_renewed_and_ended(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    response = sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    signed = ok(response, 201)
    assert response.headers["Location"] == f"/maintenance-contracts/{signed['id']}"
    assert (signed["version"], signed["state"]) == (1, "active")

    far = ok(desk.get(f"/maintenance-contracts/{signed['id']}", as_of="9999-12-31T23:59:59Z"))
    assert far["in_force"] is False and far["as_of"] is not None
    read = desk.get(f"/maintenance-contracts/{signed['id']}")
    body = ok(read)
    assert read.headers["ETag"] == '"1"'
    assert {k: body["customer"][k] for k in CUSTOMER} == CUSTOMER
    assert body["customer"]["customer_id"]  # sealed under the customer's key
    assert (body["starts_on"], body["ends_on"], body["visits_per_year"]) == (
        "2026-01-01", "2026-12-31", 4,
    )  # fmt: skip
    assert body["renewal_notice_on"] == "2026-11-30"

    supervisor = api.actor("sup-1", "supervisor")
    renewed = ok(supervisor.post(f"/maintenance-contracts/{signed['id']}/renew",
                                 {"ends_on": "2027-12-31"}, **{"If-Match": '"1"'}))  # fmt: skip
    assert renewed["version"] == 2
    ended = ok(desk.post(f"/maintenance-contracts/{signed['id']}/end", {"reason": "moved"}))
    assert ended["state"] == "ended"

    history = ok(desk.get(f"/maintenance-contracts/{signed['id']}/history"))["events"]
    assert [e["type"] for e in history] == ["Signed", "Renewed", "Ended"]
    assert history[1]["data"] == {"previous_ends_on": "2026-12-31", "ends_on": "2027-12-31"}
    assert history[1]["actor"] == "sup-1"
    api.catch_up()
    audited = ok(supervisor.get("/audit", kind="maintenance_contract"))["events"]
    assert sorted((e["version"], e["type"], e["aggregate_id"]) for e in audited) == [
        (e["version"], e["type"], signed["id"]) for e in history
    ]


def test_a_renewal_earlier_than_the_current_end_is_refused_with_a_clear_detail(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    contract = ok(sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)), 201)
    before = api.event_count()
    refused = desk.post(f"/maintenance-contracts/{contract['id']}/renew", {"ends_on": "2026-06-30"})
    assert refused.status_code == 422
    problem = refused.json()
    assert "after the current end (2026-12-31)" in problem["detail"]
    assert problem["errors"][0]["field"] == "ends_on"
    assert api.event_count() == before

    ok(desk.post(f"/maintenance-contracts/{contract['id']}/end"))
    after_end = desk.post(f"/maintenance-contracts/{contract['id']}/renew", {"ends_on": "2027-12-31"})
    assert after_end.status_code == 409
    assert "ended" in after_end.json()["detail"]


def test_bad_contracts_are_refused_naming_the_field_and_writing_nothing(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    before = api.event_count()
    for body, field in [
        ({"starts_on": "2026-01-01", "ends_on": "2025-12-31", "visits_per_year": 4}, "ends_on"),
        ({"starts_on": "2026-01-01", "ends_on": "2026-12-31", "visits_per_year": 0},
         "visits_per_year"),
        ({"starts_on": "2026-01-01", "ends_on": "2026-12-31", "visits_per_year": "4"},
         "visits_per_year"),
        ({"starts_on": "soon", "ends_on": "2026-12-31", "visits_per_year": 4}, "starts_on"),
        ({"ends_on": "2026-12-31", "visits_per_year": 4}, "starts_on"),
    ]:  # fmt: skip
        refused = desk.post("/maintenance-contracts", {"customer": CUSTOMER, **body})
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.text, (body, refused.text)
    no_phone = desk.post("/maintenance-contracts", {
        "customer": {"name": "王五", "address": "上海"}, "starts_on": "2026-01-01",
        "ends_on": "2026-12-31", "visits_per_year": 4,
    })  # fmt: skip
    assert no_phone.status_code == 422 and "customer.phone" in no_phone.text
    assert api.event_count() == before


def test_only_dispatchers_and_supervisors_sign_renew_and_end(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    contract = ok(sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)), 201)
    for role in ("technician", "client_app", "analyst"):
        other = api.actor(f"{role}-1", role)
        assert sign(other, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)).status_code \
            == 403  # fmt: skip
        renew = other.post(f"/maintenance-contracts/{contract['id']}/renew",
                           {"ends_on": "2027-12-31"})  # fmt: skip
        assert renew.status_code == 403
        assert other.post(f"/maintenance-contracts/{contract['id']}/end").status_code == 403
        assert other.get(f"/maintenance-contracts/{contract['id']}").status_code == 200


def test_if_match_and_idempotency_keys_work_as_on_every_resource(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    first = sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31),
                 **{"Idempotency-Key": "c-1"})  # fmt: skip
    again = sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31),
                 **{"Idempotency-Key": "c-1"})  # fmt: skip
    assert ok(first, 201)["id"] == ok(again, 201)["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2027, 12, 31),
                 **{"Idempotency-Key": "c-1"})  # fmt: skip
    assert other.status_code == 422
    contract = first.json()["id"]
    ok(desk.post(f"/maintenance-contracts/{contract}/renew", {"ends_on": "2027-06-30"}))
    stale = desk.post(f"/maintenance-contracts/{contract}/renew", {"ends_on": "2027-12-31"},
                      **{"If-Match": '"1"'})  # fmt: skip
    assert stale.status_code == 412
    assert desk.get(f"/maintenance-contracts/{contract}").json()["ends_on"] == "2027-06-30"
    assert desk.get("/maintenance-contracts/00000000-0000-0000-0000-000000000000").status_code \
        == 404  # fmt: skip


def test_the_sweep_records_the_renewal_notice_once_a_month_before_the_end_003_15(
    api: Api,
) -> None:
    desk = api.actor("disp-1", "dispatcher")
    day = today()
    due = ok(sign(desk, starts_on=day - timedelta(days=300), ends_on=day + timedelta(days=20)), 201)
    later = ok(sign(desk, starts_on=day - timedelta(days=300), ends_on=day + timedelta(days=45)),
               201)  # fmt: skip

    first = run_sweep(api)
    assert [n.contract_id for n in first.renewal_notices] == [__import__("uuid").UUID(due["id"])]
    assert run_sweep(api).renewal_notices == []  # once

    history = ok(desk.get(f"/maintenance-contracts/{due['id']}/history"))["events"]
    notices = [e for e in history if e["type"] == "RenewalNoticeDue"]
    assert len(notices) == 1
    assert (notices[0]["actor"], notices[0]["role"]) == ("system", "system")
    assert notices[0]["data"]["ends_on"] == (day + timedelta(days=20)).isoformat()
    read = ok(desk.get(f"/maintenance-contracts/{due['id']}"))
    assert read["renewal_notice_recorded"] is True
    assert ok(desk.get(f"/maintenance-contracts/{later['id']}"))["renewal_notice_recorded"] is False

    # A renewal moves the notice to a month before the new end.
    ok(desk.post(f"/maintenance-contracts/{due['id']}/renew",
                 {"ends_on": (day + timedelta(days=400)).isoformat()}))  # fmt: skip
    assert run_sweep(api).renewal_notices == []
    assert ok(desk.get(f"/maintenance-contracts/{due['id']}"))["renewal_notice_recorded"] is False


def test_renewals_due_lists_active_contracts_from_their_notice_date_003_15(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    soon = ok(sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)), 201)
    ok(sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2027, 6, 30)), 201)
    ended = ok(sign(desk, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 15)), 201)
    ok(desk.post(f"/maintenance-contracts/{ended['id']}/end"))
    api.catch_up()

    assert ok(desk.get("/maintenance-contracts/renewals-due", on="2026-11-29"))["items"] == []
    listed = ok(desk.get("/maintenance-contracts/renewals-due", on="2026-11-30"))
    assert listed["on"] == "2026-11-30"
    (item,) = listed["items"]
    assert item["contract_id"] == soon["id"]
    assert (item["ends_on"], item["notice_on"], item["days_left"], item["lapsed"]) == (
        "2026-12-31", "2026-11-30", 31, False,
    )  # fmt: skip
    assert item["notice_recorded"] is False
    lapsed = ok(desk.get("/maintenance-contracts/renewals-due", on="2027-01-05"))["items"]
    assert [(i["contract_id"], i["lapsed"], i["days_left"]) for i in lapsed] == [
        (soon["id"], True, -5)
    ]

    bad = desk.get("/maintenance-contracts/renewals-due", on="2026-13-01")
    assert bad.status_code == 422
    technician = api.actor("tech-1", "technician")
    assert technician.get("/maintenance-contracts/renewals-due").status_code == 403


def book(actor: Actor, billing: str, contract_id: str | None) -> Any:
    body: dict[str, Any] = {
        "customer": CUSTOMER, "service_type": "保養", "priority": "routine", "zone": "urban",
        "channel": "phone", "billing": billing, "description": "年度保養",
    }  # fmt: skip
    if contract_id is not None:
        body["contract_id"] = contract_id
    return actor.post("/work-orders", body)


def test_a_contract_order_names_an_existing_contract_003_1(api: Api) -> None:
    desk = api.actor("disp-1", "dispatcher")
    day = today()
    contract = ok(sign(desk, starts_on=day - timedelta(days=10), ends_on=day + timedelta(days=300)),
                  201)  # fmt: skip
    order = ok(book(desk, "contract", contract["id"]), 201)
    assert ok(desk.get(f"/work-orders/{order['id']}"))["contract_id"] == contract["id"]
    assert ok(book(desk, "contract", None), 201)  # naming it is optional

    api.catch_up()
    (item,) = ok(desk.get("/maintenance-contracts/renewals-due",
                          on=(day + timedelta(days=299)).isoformat()))["items"]  # fmt: skip
    assert item["orders"] == 1

    before = api.event_count()
    unknown = book(desk, "contract", "00000000-0000-0000-0000-000000000000")
    assert unknown.status_code == 422
    assert "no maintenance contract" in unknown.json()["detail"]
    paid = book(desk, "paid", contract["id"])
    assert paid.status_code == 422 and "contract_id" in paid.text
    future = ok(sign(desk, starts_on=day + timedelta(days=30), ends_on=day + timedelta(days=300)),
                201)  # fmt: skip
    not_yet = book(desk, "contract", future["id"])
    assert not_yet.status_code == 422 and "runs from" in not_yet.json()["detail"]
    ok(desk.post(f"/maintenance-contracts/{contract['id']}/end"))
    assert book(desk, "contract", contract["id"]).status_code == 422
    assert api.event_count() == before + 2  # the second contract and its end only
