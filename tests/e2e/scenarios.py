"""Bodies and walks shared by the end-to-end tests: one actor per role, and the
commands that bring a work order or a complaint to a given state over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.e2e.conftest import Actor, Api
from tests.procedure import CHECKLIST_JSON as CHECKLIST
from tests.procedure import ON_SITE_CHECKS

ROLES = ("client_app", "dispatcher", "technician", "supervisor", "analyst", "system")
#: The actor id each role's token speaks for; the technician is the one assigned.
ACTOR_OF = {
    "client_app": "client-app-1",
    "dispatcher": "disp-1",
    "technician": "tech-1",
    "supervisor": "sup-1",
    "analyst": "analyst-1",
    "system": "system",
}
PROBLEM_JSON = "application/problem+json"


def booking(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"name": "张三", "phone": "13800000000", "address": "北京市朝阳区 1 号"},
        "service_type": "boiler repair",
        "priority": "routine",
        "zone": "urban",
        "channel": "phone",
        "billing": "paid",
        "description": "漏水",
    }
    body.update(overrides)
    return body


def lodging(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"name": "李四", "phone": "13900000000"},
        "channel": "phone",
        "category": "attitude",
        "severity": "major",
        "description": "the technician was rude",
    }
    body.update(overrides)
    return body


def iso(t: datetime) -> str:
    return t.isoformat()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


#: (state reached, role, command, body): the main path of a work order.
WORK_ORDER_PATH: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("assigned", "dispatcher", "assign", {"technician_id": "tech-1"}),
    ("confirmed", "technician", "confirm", None),
    ("en_route", "technician", "depart", None),
    ("on_site", "technician", "arrive", None),
    ("in_service", "technician", "start",
     {"identity_shown": True, **ON_SITE_CHECKS, "risk_assessment": "none"}),
    ("completed", "technician", "complete",
     {"summary": "replaced the valve", "parts_used": [], "checklist": CHECKLIST}),
    ("accepted", "client_app", "accept", {"signed_by": "张三"}),
]

#: The main path of a complaint.
COMPLAINT_PATH: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("acknowledged", "dispatcher", "acknowledge", None),
    ("assigned", "dispatcher", "assign", {"department": "service", "owner_id": "sup-1"}),
    # 003 第二十二條: the customer is visited (a major complaint closes only after one).
    ("assigned", "dispatcher", "visit", {"visited_by": "sup-1", "note": "apologised"}),
    ("investigated", "supervisor", "record-findings",
     {"root_cause": "rushed visit", "evidence": ["call log"], "company_at_fault": False}),
    ("planned", "supervisor", "plan",
     {"measures": "revisit", "owner_id": "sup-1", "due": "2030-01-01T00:00:00+00:00"}),
    ("resolved", "dispatcher", "resolve",
     {"outcome": "revisited, fixed", "customer_informed_via": "phone"}),
]  # fmt: skip


class Desk:
    """One token per role (actor ids in ACTOR_OF), and walks to a state."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.actors = {role: api.actor(ACTOR_OF[role], role) for role in ROLES}

    def __getitem__(self, role: str) -> Actor:
        return self.actors[role]

    def ok(self, role: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = self.actors[role].post(path, body)
        assert r.status_code in (200, 201), f"{role} POST {path}: {r.status_code} {r.text}"
        answer: dict[str, Any] = r.json()
        return answer

    def book(self, **overrides: Any) -> str:
        return str(self.ok("dispatcher", "/work-orders", booking(**overrides))["id"])

    def lodge(self, **overrides: Any) -> str:
        return str(self.ok("client_app", "/complaints", lodging(**overrides))["id"])

    def work_order_in(self, state: str) -> str:
        """A new work order (assigned to tech-1 once past booked) in `state`."""
        order = self.book()
        if state == "booked":
            return order
        if state == "on_hold":
            self.ok("dispatcher", f"/work-orders/{order}/assign", {"technician_id": "tech-1"})
            self.ok("dispatcher", f"/work-orders/{order}/hold", {"reason": "parts on order"})
            return order
        for reached, role, command, body in WORK_ORDER_PATH:
            self.ok(role, f"/work-orders/{order}/{command}", body)
            if reached == state:
                return order
        raise AssertionError(f"no walk to work order state {state}")

    def complaint_in(self, state: str) -> str:
        complaint = self.lodge()
        if state == "lodged":
            return complaint
        for reached, role, command, body in COMPLAINT_PATH:
            self.ok(role, f"/complaints/{complaint}/{command}", body)
            if reached == state:
                return complaint
        raise AssertionError(f"no walk to complaint state {state}")


def assert_problem(r: Any, status: int, type_: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer: the content type, the four members, no stack trace."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    if type_ is not None:
        assert body["type"] == type_, body
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body


def field_errors(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}
