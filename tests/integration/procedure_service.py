"""A ledger with the service's read models, wired as `serve` wires them (repeat
calls found by the satisfaction view), a test-driven clock, and a policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fieldledger.api.background import wire
from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import Policy, builtin_policy_text, parse_policy
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

from tests.integration.field import Clock, Field

SH = ZoneInfo("Asia/Shanghai")
DISPATCHER = Caller("disp-1", Role.DISPATCHER)
#: The built-in policy with two coordinators on level 1.
ROSTER = parse_policy(
    builtin_policy_text()
    .replace('name = "builtin"', 'name = "two-coordinators"')
    .replace('1 = ["duty-dispatcher"]', '1 = ["coord-a", "coord-b"]')
)


def sh(mo: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(2026, mo, d, hh, mm, tzinfo=SH)


@dataclass
class Service:
    field: Field
    projections: Projections

    @property
    def ledger(self) -> FieldLedger:
        return self.field.ledger

    def sweep(self, at: datetime) -> Any:
        return self.field.sweep(self.projections, at)

    def book(
        self, at: datetime, *, phone: str = "13800000000", service_type: str = "repair",
        previous: UUID | None = None,
    ) -> UUID:  # fmt: skip
        self.field.at(at)
        self.projections.catch_up("satisfaction")  # as the background projector does
        return self.ledger.book_work_order(
            DISPATCHER, customer=Customer("张三", phone, "北京"), service_type=service_type,
            priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
            billing=Billing.PAID, description="漏水", previous_work_order_id=previous,
        ).id  # fmt: skip

    def events(self, order: UUID, kind: str) -> list[Any]:
        return [e for e in self.ledger.history(WorkOrder, order) if e.type == kind]


def open_service(url: str, policy: Policy) -> Service:
    clock = Clock(sh(10, 1))
    ledger = FieldLedger(url, clock=clock, policy=policy)
    projections = Projections(ledger, READ_MODELS, ProjectionSettings(policy, "Asia/Shanghai"))
    wire(projections)
    return Service(Field(ledger, clock), projections)


