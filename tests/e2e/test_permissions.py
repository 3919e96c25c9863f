"""Who may give which command, role by role, checked against the contract.

The tables below are the contract's "who" columns written out by hand (§4 for
work orders, §6 for conduct) and, where the contract is silent (§5, complaints),
the decision of docs/api.md ("Who may do what"). They are deliberately not
imported from src: the test checks src against the contract.

For each command, every forbidden role gets 403 problem+json and writes
nothing, on a record in a state where the command would be allowed; then every
allowed role succeeds on a fresh record, and the event says who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import Api
from tests.e2e.scenarios import ACTOR_OF, ROLES, Desk, assert_problem, booking, lodging

# Contract §4, "who".
WORK_ORDER_WHO: dict[str, set[str]] = {
    "book": {"client_app", "dispatcher"},
    "assign": {"dispatcher", "supervisor"},
    "confirm": {"technician"},
    "depart": {"technician"},
    "notify-late": {"technician"},
    "arrive": {"technician"},
    "start": {"technician"},
    "change-scope": {"technician"},
    "complete": {"technician"},
    "accept": {"client_app", "technician"},
    "reject": {"client_app", "technician"},
    "resolve-remotely": {"dispatcher", "technician"},
    "hold": {"dispatcher", "technician"},
    "resume": {"dispatcher", "technician"},
    "feedback": {"client_app"},
    "escalate": {"supervisor", "dispatcher", "system"},
    "cancel": {"client_app", "dispatcher"},
    "log-callback": {"dispatcher", "supervisor"},
}

# Contract §5 has no "who" column: docs/api.md decides it.
COMPLAINT_WHO: dict[str, set[str]] = {
    "lodge": {"client_app", "dispatcher", "supervisor"},
    "acknowledge": {"dispatcher", "supervisor"},
    "assign": {"dispatcher", "supervisor"},
    "record-findings": {"supervisor"},
    "plan": {"dispatcher", "supervisor"},
    "update-progress": {"dispatcher", "supervisor"},
    "resolve": {"dispatcher", "supervisor"},
    "confirm": {"client_app", "dispatcher", "supervisor"},
    "escalate": {"supervisor", "dispatcher", "system"},
}

# Contract §6: "conduct recorded by a supervisor".
CONDUCT_WHO = {"supervisor"}  # and every staff command of §11.1, §11.7

# Contract §11.5: "POST /maintenance-contracts … (dispatcher, supervisor), renew, end".
CONTRACT_WHO: dict[str, set[str]] = {
    "sign": {"dispatcher", "supervisor"},
    "renew": {"dispatcher", "supervisor"},
    "end": {"dispatcher", "supervisor"},
}
CONTRACT = {
    "customer": {"name": "王五", "phone": "13900000000", "address": "上海"},
    "starts_on": "2026-01-01", "ends_on": "2026-12-31", "visits_per_year": 4,
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    resource: str  # "work-orders", "complaints", "staff" or "maintenance-contracts"
    command: str
    #: The state a record must be in for the command to be allowed (None: a create).
    state: str | None
    body: dict[str, Any] | None

    def __str__(self) -> str:
        return f"{self.resource}:{self.command}"


WORK_ORDER_CASES = [
    Case("work-orders", "book", None, booking()),
    Case("work-orders", "assign", "booked", {"technician_id": "tech-1"}),
    Case("work-orders", "confirm", "assigned", None),
    Case("work-orders", "depart", "confirmed", None),
    Case("work-orders", "notify-late", "en_route",
         {"expected_arrival": "2030-01-01T10:00:00+08:00", "reason": "traffic"}),
    Case("work-orders", "arrive", "en_route", None),
    Case("work-orders", "start", "on_site", {"identity_shown": True, "risk_assessment": "ok"}),
    Case("work-orders", "change-scope", "in_service",
         {"description": "also the radiator", "new_eta": "2030-01-01T12:00:00+00:00"}),
    Case("work-orders", "complete", "in_service",
         {"summary": "done", "parts_used": [{"name": "valve", "quantity": 2}]}),
    Case("work-orders", "accept", "completed", {"signed_by": "张三"}),
    Case("work-orders", "reject", "completed", {"reasons": ["still leaking"]}),
    Case("work-orders", "resolve-remotely", "assigned", {"summary": "reset by phone"}),
    Case("work-orders", "hold", "assigned", {"reason": "parts on order"}),
    Case("work-orders", "resume", "on_hold", {}),
    Case("work-orders", "feedback", "accepted", {"csat": 5, "attitude": 4, "skill": 4,
         "punctuality": 4, "promise": 4, "praise": False, "comment": ""}),
    Case("work-orders", "escalate", "assigned", {"level": 2, "reason": "customer angry"}),
    Case("work-orders", "cancel", "assigned", {"reason": "customer away"}),
    Case("work-orders", "log-callback", "accepted", {"outcome": "reached", "note": "all fine"}),
]  # fmt: skip

COMPLAINT_CASES = [
    Case("complaints", "lodge", None, lodging()),
    Case("complaints", "acknowledge", "lodged", None),
    Case("complaints", "assign", "acknowledged", {"department": "service", "owner_id": "sup-1"}),
    Case("complaints", "record-findings", "assigned", {"root_cause": "late",
         "evidence": [], "responsible_staff_id": "tech-1", "company_at_fault": True}),
    Case("complaints", "plan", "investigated",
         {"measures": "coaching", "owner_id": "sup-1", "due": "2030-01-01T00:00:00Z"}),
    Case("complaints", "update-progress", "assigned", {"note": "called the customer"}),
    Case("complaints", "resolve", "investigated", {"outcome": "apologised"}),
    Case("complaints", "confirm", "resolved", {"satisfied": True, "csat": 4}),
    Case("complaints", "escalate", "lodged", {"level": 1, "reason": "no answer in a day"}),
]  # fmt: skip

STAFF_CASES = [
    Case("staff", "conduct", None, {"kind": "grooming", "points": -1, "note": "hair"}),
    Case("staff", "quality-checks", None, {"passed": False, "notes": "dusty floor"}),
    Case("staff", "retrained", None, {"note": "course done"}),
    Case("staff", "reassigned", None, {"note": "to installs"}),
    Case("staff", "joined", None, {"on": "2026-10-08"}),
    Case("staff", "training", None, {"kind": "monthly", "held_on": "2026-10-20",
                                      "attended": True, "test_passed": True}),
]  # fmt: skip

CONTRACT_CASES = [
    Case("maintenance-contracts", "sign", None, CONTRACT),
    Case("maintenance-contracts", "renew", "active", {"ends_on": "2027-12-31"}),
    Case("maintenance-contracts", "end", "active", {"reason": "moved away"}),
]

ALL_CASES = [*WORK_ORDER_CASES, *COMPLAINT_CASES, *STAFF_CASES, *CONTRACT_CASES]


def who(case: Case) -> set[str]:
    if case.resource == "work-orders":
        return WORK_ORDER_WHO[case.command]
    if case.resource == "complaints":
        return COMPLAINT_WHO[case.command]
    if case.resource == "maintenance-contracts":
        return CONTRACT_WHO[case.command]
    return CONDUCT_WHO


def test_the_cases_cover_every_command_route(api: Api) -> None:
    """Every POST route of the API is a case here, and every case a route (but
    `/what-if`, a replay that writes no event: its roles are tested with it,
    tests/e2e/test_what_if.py)."""
    spec = api.client.get("/openapi.json").json()
    posted = {path for path, ops in spec["paths"].items() if "post" in ops} - {"/what-if"}
    cased = set()
    for case in ALL_CASES:
        if case.resource == "staff":
            cased.add(f"/staff/{{staff_id}}/{case.command}")
        elif case.state is None:
            cased.add(f"/{case.resource}")
        else:
            cased.add(f"/{case.resource}/{{id}}/{case.command}")
    # The customers' routes (supervisors only) are checked role by role in
    # test_privacy_api.py.
    assert posted == cased | {"/customers/lookup", "/customers/{id}/erase"}
    assert set(WORK_ORDER_WHO) == {c.command for c in WORK_ORDER_CASES}
    assert set(COMPLAINT_WHO) == {c.command for c in COMPLAINT_CASES}
    assert set(CONTRACT_WHO) == {c.command for c in CONTRACT_CASES}


def prepare(desk: Desk, case: Case) -> str:
    """The path to post to, on a fresh record in the case's state."""
    if case.resource == "staff":
        return f"/staff/tech-1/{case.command}"
    if case.state is None:
        return f"/{case.resource}"
    if case.resource == "work-orders":
        return f"/work-orders/{desk.work_order_in(case.state)}/{case.command}"
    if case.resource == "maintenance-contracts":
        contract = desk.ok("dispatcher", "/maintenance-contracts", CONTRACT)["id"]
        return f"/maintenance-contracts/{contract}/{case.command}"
    return f"/complaints/{desk.complaint_in(case.state)}/{case.command}"


@pytest.mark.parametrize("case", ALL_CASES, ids=str)
def test_roles_allowed_and_forbidden(api: Api, case: Case) -> None:
    desk = Desk(api)
    allowed = who(case)
    path = prepare(desk, case)
    for role in ROLES:
        if role in allowed:
            continue
        before = api.event_count()
        r = desk[role].post(path, case.body)
        body = assert_problem(r, 403, "/problems/forbidden")
        assert role in body["detail"]
        assert api.event_count() == before, f"{role} {case} wrote events"

    for i, role in enumerate(sorted(allowed)):
        if i > 0:
            path = prepare(desk, case)
        before = api.event_count()
        r = desk[role].post(path, case.body)
        assert r.status_code in (200, 201), f"{role} {case}: {r.status_code} {r.text}"
        assert api.event_count() > before
        if case.resource == "staff":
            continue
        id_ = r.json()["id"]
        events = desk["analyst"].get(f"/{case.resource}/{id_}/history").json()["events"]
        assert (events[-1]["actor"], events[-1]["role"]) == (ACTOR_OF[role], role)


def test_a_technician_acts_only_on_work_orders_assigned_to_them(api: Api) -> None:
    desk = Desk(api)
    other = api.actor("tech-2", "technician")
    order = desk.work_order_in("assigned")  # assigned to tech-1
    unassigned = desk.work_order_in("booked")
    before = api.event_count()
    for path, body in [
        (f"/work-orders/{order}/confirm", None),
        (f"/work-orders/{order}/hold", {"reason": "not mine"}),
        (f"/work-orders/{unassigned}/resolve-remotely", {"summary": "fixed by phone"}),
    ]:
        r = other.post(path, body)
        problem = assert_problem(r, 403, "/problems/forbidden")
        assert "tech-2" in problem["detail"]
    r = desk["technician"].post(f"/work-orders/{unassigned}/hold", {"reason": "not assigned"})
    assert_problem(r, 403, "/problems/forbidden")
    assert api.event_count() == before
    # Reassigned to tech-2, the order is theirs and no longer tech-1's.
    desk.ok("dispatcher", f"/work-orders/{order}/assign", {"technician_id": "tech-2"})
    assert other.post(f"/work-orders/{order}/confirm").status_code == 200
    assert_problem(desk["technician"].post(f"/work-orders/{order}/depart"), 403)


def test_every_role_may_read(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("assigned")
    complaint = desk.complaint_in("lodged")
    for role in ROLES:
        for path in (f"/work-orders/{order}", f"/work-orders/{order}/history",
                     f"/complaints/{complaint}", f"/complaints/{complaint}/history"):  # fmt: skip
            r = desk[role].get(path)
            assert r.status_code == 200, f"{role} GET {path}: {r.text}"


def test_a_forbidden_role_is_told_so_before_its_body_is_checked(api: Api) -> None:
    desk = Desk(api)
    order = desk.work_order_in("booked")
    r = desk["analyst"].post(f"/work-orders/{order}/assign", {"no_such_field": 1})
    assert_problem(r, 403, "/problems/forbidden")
    r = desk["technician"].post("/work-orders", {})
    assert_problem(r, 403, "/problems/forbidden")
