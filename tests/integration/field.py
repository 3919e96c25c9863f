"""A working day driven through the ledger at chosen instants, for read-model tests.

`Field` sets the ledger's clock before each command, so every event is recorded
(and occurred) exactly when the test says; the read models then see the events
the real commands make, through the store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from fieldledger.application.ledger import Caller, FieldLedger
from fieldledger.application.sla_sweep import SweepReport, sweep
from fieldledger.domain.complaints import Complainant, ComplaintChannel, InformedVia, Severity
from fieldledger.domain.facts import Role
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    Customer,
    Feedback,
    Priority,
    WorkOrder,
    Zone,
)
from fieldledger.projections.projector import Projections
from fieldledger.projections.satisfaction import SatisfactionSources
from fieldledger.projections.sla import SlaRedTargets

from tests.procedure import CHECKLIST, ON_SITE_CHECKS

DISPATCHER = Caller("disp-1", Role.DISPATCHER)
SUPERVISOR = Caller("sup-1", Role.SUPERVISOR)
CLIENT = Caller("app-1", Role.CLIENT_APP)


def utc(text: str) -> datetime:
    """`2026-10-14T10:00` (UTC) → an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Field:
    def __init__(self, ledger: FieldLedger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock

    def at(self, when: datetime) -> Field:
        self.clock.now = when
        return self

    # -- work orders ---------------------------------------------------------

    def book(
        self,
        at: datetime,
        *,
        appointment_start: datetime | None = None,
        service_type: str = "repair",
        technician: str | None = "tech-1",
    ) -> UUID:
        self.at(at)
        appointment = (
            None
            if appointment_start is None
            else Appointment(appointment_start, appointment_start + timedelta(hours=2))
        )
        r = self.ledger.book_work_order(
            DISPATCHER, customer=Customer("张三", "13800000000", "北京"),
            service_type=service_type, priority=Priority.ROUTINE, zone=Zone.URBAN,
            channel=Channel.PHONE, billing=Billing.PAID, description="漏水",
            appointment=appointment,
        )  # fmt: skip
        if technician is not None:
            self.ledger.work_order_command(
                DISPATCHER, r.id, "assign", {"technician_id": technician}
            )
        return r.id

    def tech(self, order: UUID) -> Caller:
        technician = self.ledger.get(WorkOrder, order).technician_id
        assert technician is not None
        return Caller(technician, Role.TECHNICIAN)

    def wo(
        self, caller: Caller, order: UUID, command: str, at: datetime,
        occurred_at: datetime | None = None, **args: Any,
    ) -> int:  # fmt: skip
        self.at(at)
        result = self.ledger.work_order_command(
            caller, order, command, args, occurred_at=occurred_at
        )
        assert result.position is not None
        return result.version

    def arrive(
        self, order: UUID, at: datetime, *, notice: str | None = None
    ) -> int:
        """Confirm, depart, (warn the customer), arrive at `at`; the Arrived version."""
        tech = self.tech(order)
        before = at - timedelta(minutes=30)
        self.wo(tech, order, "confirm", before)
        self.wo(tech, order, "depart", before)
        if notice is not None:
            self.wo(tech, order, "notify-late", before, expected_arrival=at, reason=notice)
        return self.wo(tech, order, "arrive", at)

    def finish(self, order: UUID, at: datetime, *, rejections: int = 0) -> int:
        """Start, complete (reworked `rejections` times), accepted at `at`."""
        tech = self.tech(order)
        self.wo(tech, order, "start", at, identity_shown=True, **ON_SITE_CHECKS,
                risk_assessment="ok")  # fmt: skip
        self.wo(tech, order, "complete", at, summary="fixed", parts_used=[], checklist=CHECKLIST)
        for _ in range(rejections):
            self.wo(CLIENT, order, "reject", at, reasons=["still leaking"])
            self.wo(tech, order, "complete", at, summary="fixed again", parts_used=[],
                    checklist=CHECKLIST)  # fmt: skip
        return self.wo(CLIENT, order, "accept", at, signed_by="张三")

    def resolve_remotely(self, order: UUID, at: datetime) -> int:
        return self.wo(DISPATCHER, order, "resolve-remotely", at, summary="reset by phone",
                       authorized_by="王芳")  # fmt: skip

    def feedback(
        self,
        order: UUID,
        at: datetime,
        *,
        csat: int = 5,
        dims: tuple[int, int, int, int] = (4, 4, 4, 4),
        praise: bool = False,
    ) -> int:
        attitude, skill, punctuality, promise = dims
        feedback = Feedback(csat, attitude, skill, punctuality, promise, praise, "")
        return self.wo(CLIENT, order, "feedback", at, **dataclasses.asdict(feedback))

    def callback(self, order: UUID, at: datetime, outcome: str = "happy") -> int:
        return self.wo(DISPATCHER, order, "log-callback", at, outcome=outcome, note="")

    # -- complaints ----------------------------------------------------------

    def complaint(
        self,
        at: datetime,
        *,
        severity: str = "minor",
        work_order_id: UUID | None = None,
        staff_ids: list[str] | None = None,
    ) -> UUID:
        self.at(at)
        r = self.ledger.lodge_complaint(
            DISPATCHER, customer=Complainant("李四", "13900000000"),
            channel=ComplaintChannel.PHONE, category="service", severity=Severity(severity),
            description="rude", work_order_id=work_order_id, staff_ids=staff_ids or [],
        )  # fmt: skip
        self.cc(r.id, "acknowledge", at)
        self.cc(r.id, "assign", at, department="quality", owner_id="sup-1")
        return r.id

    def cc(
        self, complaint: UUID, command: str, at: datetime, *, by: Caller = DISPATCHER, **args: Any
    ) -> int:
        self.at(at)
        return self.ledger.complaint_command(by, complaint, command, args).version

    def findings(
        self, complaint: UUID, at: datetime, responsible: list[str], *, at_fault: bool = True
    ) -> int:
        # Findings that may hold staff at fault are a supervisor's (docs/api.md).
        return self.cc(
            complaint, "record-findings", at, by=SUPERVISOR, root_cause="late and rude",
            evidence=[], responsible_staff_ids=responsible, company_at_fault=at_fault,
        )  # fmt: skip

    def resolve(self, complaint: UUID, at: datetime) -> int:
        """Plan (000 五(三)1), visit (003 第二十二條) and resolve, telling the customer."""
        self.cc(complaint, "plan", at, measures="apologise", owner_id="sup-1",
                due=at + timedelta(days=3))  # fmt: skip
        self.cc(complaint, "visit", at, visited_by="sup-1", note="apologised in person")
        return self.cc(complaint, "resolve", at, outcome="apologised",
                       customer_informed_via=InformedVia.VISIT)  # fmt: skip

    # -- the sweep -------------------------------------------------------------

    def sweep(self, projections: Projections, at: datetime) -> SweepReport:
        """The sweep at `at` (the clock moved there): escalations, reminders, survey cards."""
        self.at(at)
        return sweep(self.ledger, SlaRedTargets(projections), at,
                     surveys=SatisfactionSources(projections))  # fmt: skip

    # -- staff ---------------------------------------------------------------

    def conduct(
        self, staff_id: str, kind: str, at: datetime, points: str | None = None, **more: Any
    ) -> int:
        self.at(at)
        r = self.ledger.record_conduct(
            SUPERVISOR, staff_id, kind=kind,
            points=None if points is None else Decimal(points), note="", **more,
        )  # fmt: skip
        return r.version

    def staff(self, staff_id: str, command: str, at: datetime, **args: Any) -> int:
        """Any staff command (quality-checks, retrained, training, ...), as a supervisor."""
        self.at(at)
        return self.ledger.staff_command(SUPERVISOR, staff_id, command, args).version


def days(start: datetime, n: int) -> Iterator[datetime]:
    for i in range(n):
        yield start + timedelta(days=i)


def read(projections: Projections, name: str, query: str, *args: Any, **kwargs: Any) -> Any:
    """Catch the read model up and run one of its queries on the live view."""
    projections.catch_up(name)
    model = projections.models[name]
    with projections.reading(name) as (tx, t):
        return getattr(model, query)(tx, t, *args, **kwargs)
