"""Seeded random histories, made of real commands through the ledger.

Orders, complaints and conduct records advance a step or a few at a time,
interleaved, while the clock runs on across month boundaries: arrivals early and
late, with and without notice, rework, remote fixes, holds, surveys with and
without praise, callbacks weeks apart, findings recorded and revised, repeated
conduct. Each order keeps its own field time (`occurred_at`, when things happen
on site), running behind the server's clock (`recorded_at`) as phones that sync
later do.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from fieldledger.domain.complaints import Complaint, ComplaintState
from fieldledger.domain.facts import Role
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import Feedback, WorkOrder, WorkOrderState

from tests.integration.field import CLIENT, DISPATCHER, Caller, Field
from tests.procedure import CHECKLIST, ON_SITE_CHECKS

STAFF = ("tech-1", "tech-2", "tech-3", "tech-4")
SERVICE_TYPES = ("repair", "install", "inspection")
#: Kinds recorded most, so that repeats in a month reach the ladder.
COMMON_KINDS = ("personal_call", "chatting", "grooming")
S = WorkOrderState
C = ComplaintState


class History:
    def __init__(self, field: Field, seed: int, start: datetime) -> None:
        self.f = field
        self.rng = random.Random(seed)
        self.now = start
        self.orders: list[UUID] = []
        self.field_time: dict[UUID, datetime] = {}
        self.complaints: list[UUID] = []

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.now += timedelta(minutes=self.rng.randint(1, 300))
            roll = self.rng.random()
            if roll < 0.15 or not self.orders:
                self.book()
            elif roll < 0.78:
                order = self.rng.choice(self.orders[-15:])
                for _burst in range(self.rng.randint(1, 4)):
                    self.advance_order(order)
            elif roll < 0.88:
                self.advance_complaint()
            else:
                self.conduct()

    def later(self, order: UUID, low: int, high: int, *, at: datetime | None = None) -> datetime:
        """The order's next field time, `low`..`high` minutes on (or `at`): never
        before its last event, nor after the server's clock."""
        last = self.field_time[order]
        wanted = at if at is not None else last + timedelta(minutes=self.rng.randint(low, high))
        when = min(max(wanted, last), self.now)
        self.field_time[order] = when
        return when

    # -- work orders ---------------------------------------------------------

    def book(self) -> None:
        with_appointment = self.rng.random() < 0.8
        start = self.now + timedelta(minutes=self.rng.randint(30, 300))
        order = self.f.book(
            self.now,
            appointment_start=start if with_appointment else None,
            service_type=self.rng.choice(SERVICE_TYPES),
            technician=None,
        )
        self.orders.append(order)
        self.field_time[order] = self.now

    def advance_order(self, order: UUID) -> None:
        wo = self.f.ledger.get(WorkOrder, order)
        rng = self.rng
        tech = Caller(wo.technician_id or "", Role.TECHNICIAN)
        state = wo.state

        def do(caller: Caller, command: str, when: datetime, **args: Any) -> None:
            self.f.wo(caller, order, command, self.now, occurred_at=when, **args)

        def soon() -> datetime:
            return self.later(order, 1, 20)

        if state in (S.BOOKED, S.ASSIGNED) and rng.random() < 0.08:
            do(DISPATCHER, "resolve-remotely", soon(), summary="fixed by phone",
               authorized_by="customer")  # fmt: skip
        elif state is S.BOOKED or (state is S.ASSIGNED and rng.random() < 0.1):
            do(DISPATCHER, "assign", soon(), technician_id=rng.choice(STAFF))
        elif state is S.ASSIGNED:
            do(tech, "confirm", soon())
        elif state is S.CONFIRMED and rng.random() < 0.05:
            do(DISPATCHER, "hold", soon(), reason="customer away")
        elif state is S.ON_HOLD:
            do(DISPATCHER, "resume", soon())
        elif state in (S.CONFIRMED, S.EN_ROUTE) and not wo.lateness_notified and rng.random() < 0.2:
            when = soon()
            do(tech, "notify-late", when, expected_arrival=when, reason="traffic")
        elif state is S.CONFIRMED:
            do(tech, "depart", soon())
        elif state is S.EN_ROUTE:
            arrival = None
            if wo.appointment is not None:
                arrival = wo.appointment.start + timedelta(minutes=rng.randint(-15, 25))
            do(tech, "arrive", self.later(order, 10, 60, at=arrival))
        elif state is S.ON_SITE:
            do(tech, "start", soon(), identity_shown=True, **ON_SITE_CHECKS, risk_assessment="ok")
        elif state is S.IN_SERVICE:
            do(tech, "complete", self.later(order, 20, 120), summary="done", parts_used=[],
               checklist=CHECKLIST)  # fmt: skip
        elif state is S.COMPLETED and rng.random() < 0.25:
            do(CLIENT, "reject", soon(), reasons=["not fixed"])
        elif state is S.COMPLETED:
            do(CLIENT, "accept", soon(), signed_by="customer")
        elif state in (S.ACCEPTED, S.RESOLVED_REMOTELY):
            if wo.feedback is None and rng.random() < 0.75:
                feedback = Feedback(
                    rng.randint(1, 5), rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4),
                    rng.randint(1, 4), rng.random() < 0.3, "",
                )
                do(CLIENT, "feedback", self.later(order, 60, 3000), **dataclasses.asdict(feedback))
            else:
                when = self.later(order, 20 * 24 * 60, 40 * 24 * 60)
                outcome = rng.choice(["happy", "no answer"])
                do(DISPATCHER, "log-callback", when, outcome=outcome, note="")

    # -- complaints ----------------------------------------------------------

    def advance_complaint(self) -> None:
        rng, now = self.rng, self.now
        if not self.complaints or rng.random() < 0.3:
            order = rng.choice(self.orders) if rng.random() < 0.7 else None
            severity = rng.choice(["minor", "major", "critical"])
            named = rng.sample(STAFF, rng.randint(0, 2))
            self.complaints.append(
                self.f.complaint(now, severity=severity, work_order_id=order, staff_ids=named)
            )
            return
        complaint = rng.choice(self.complaints[-8:])
        c = self.f.ledger.get(Complaint, complaint)
        if c.state in (C.ASSIGNED, C.REOPENED) or (
            c.state is C.INVESTIGATED and rng.random() < 0.3
        ):
            self.f.findings(
                complaint, now, rng.sample(STAFF, rng.randint(0, 3)), at_fault=rng.random() < 0.7
            )
        elif c.state is C.INVESTIGATED:
            self.f.resolve(complaint, now)
        elif c.state is C.RESOLVED:
            self.f.cc(
                complaint, "confirm", now, satisfied=rng.random() < 0.7, csat=rng.randint(1, 5)
            )

    # -- conduct -------------------------------------------------------------

    def conduct(self) -> None:
        roll = self.rng.random()
        staff = self.rng.choice(STAFF)
        if roll < 0.15:
            self.f.staff(staff, "quality-checks", self.now, passed=self.rng.random() < 0.5,
                         notes="")  # fmt: skip
            return
        if roll < 0.2:
            self.f.staff(staff, self.rng.choice(["retrained", "reassigned"]), self.now,
                         note="after three faults")
            return
        if roll < 0.3:
            passed = self.rng.choice([None, True, False, False])
            attended = self.rng.random() < 0.9 or passed is not None
            self.f.staff(
                staff, "training", self.now, kind=self.rng.choice(
                    ["induction", "monthly", "fire_safety"]
                ), held_on=self.now.date(), attended=attended,
                disciplined=not attended or self.rng.random() < 0.8,
                form_completed=not attended or self.rng.random() < 0.8, test_passed=passed,
            )  # fmt: skip
            return
        kinds = builtin_policy().conduct.kinds
        kind = self.rng.choice(COMMON_KINDS if self.rng.random() < 0.7 else sorted(kinds))
        spec = kinds[kind]
        if spec.minutes_bands:
            self.f.conduct(staff, kind, self.now, minutes=self.rng.randint(0, 15))
            return
        if spec.discipline_chosen:
            self.f.conduct(staff, kind, self.now,
                           discipline=self.rng.choice(["warning", "demerit", "dismissal"]))
            return
        allowed = self.rng.choice(spec.points)
        points = self.rng.choice([allowed.min, allowed.max, (allowed.min + allowed.max) / 2])
        self.f.conduct(staff, kind, self.now, points=str(Decimal(points).normalize()))
