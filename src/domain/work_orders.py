"""The work order: one visit to a customer, from booking to signed acceptance.

States: booked → assigned → confirmed → en_route → on_site → in_service →
completed → accepted, plus on_hold, cancelled and resolved_remotely; `reject`
sends a completed order back to in_service (rework) and is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from fieldledger.domain.appraisal import notice_in_advance
from fieldledger.domain.customers import SealedPersonalData, Signature
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import (
    Context,
    LedgerAggregate,
    require_aware,
    require_between,
    require_text,
)


class Priority(Enum):
    URGENT = "urgent"
    PRIORITY = "priority"
    ROUTINE = "routine"


class Zone(Enum):
    URBAN = "urban"
    SUBURBAN = "suburban"


class Channel(Enum):
    PHONE = "phone"
    ONLINE = "online"
    WALK_IN = "walk_in"


class Billing(Enum):
    PAID = "paid"
    CONTRACT = "contract"
    WARRANTY = "warranty"


class WorkOrderState(Enum):
    BOOKED = "booked"
    ASSIGNED = "assigned"
    CONFIRMED = "confirmed"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"
    RESOLVED_REMOTELY = "resolved_remotely"


S = WorkOrderState
#: States in which the order is finished with; no field work may follow.
CLOSED_STATES = frozenset({S.ACCEPTED, S.CANCELLED, S.RESOLVED_REMOTELY})


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str
    address: str = ""


@dataclass(frozen=True)
class Appointment:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Part:
    name: str
    quantity: int
    unit_price: Decimal | None = None


@dataclass(frozen=True)
class Feedback:
    csat: int
    attitude: int
    skill: int
    punctuality: int
    promise: int
    praise: bool
    comment: str


class WorkOrder(LedgerAggregate):
    kind = "work order"

    class Event(LedgerAggregate.Event):
        pass

    class Booked(Event, Aggregate.Created):
        #: Sealed in the store (docs/privacy.md): loaded events hold SealedPersonalData.
        customer: Customer | SealedPersonalData
        service_type: str
        priority: Priority
        zone: Zone
        appointment: Appointment | None
        channel: Channel
        billing: Billing
        description: str
        policy_version: str
        #: The maintenance contract a `billing: contract` order is done under (003 第一條).
        contract_id: UUID | None = None

        def happen(self, wo: WorkOrder) -> None:
            wo.customer = self.customer
            wo.service_type = self.service_type
            wo.priority = self.priority
            wo.zone = self.zone
            wo.appointment = self.appointment
            wo.channel = self.channel
            wo.billing = self.billing
            wo.description = self.description
            wo.policy_version = self.policy_version
            wo.booked_at = self.occurred_at
            wo.contract_id = getattr(self, "contract_id", None)

    class Assigned(Event):
        technician_id: str

        def happen(self, wo: WorkOrder) -> None:
            wo.technician_id = self.technician_id
            wo.state = S.ASSIGNED

    class Confirmed(Event):
        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.CONFIRMED

    class Departed(Event):
        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.EN_ROUTE

    class LatenessNotified(Event):
        expected_arrival: datetime
        reason: str

        def happen(self, wo: WorkOrder) -> None:
            # Advance notice only if given before the appointment start (contract
            # §11.2; 000 二(三)1 需提前與客戶溝通); a later one is kept on record.
            start = None if wo.appointment is None else wo.appointment.start
            if notice_in_advance(self.occurred_at, start):
                wo.lateness_notified = True
            wo.expected_arrival = self.expected_arrival

    class Arrived(Event):
        #: Whole minutes after the appointment start, rounded up; None without appointment.
        minutes_late: int | None
        #: Whole minutes before the appointment start, rounded down.
        minutes_early: int | None
        #: Whether the customer was warned (LatenessNotified) before the
        #: appointment start (§11.2; before it: before arrival).
        lateness_notified: bool

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.ON_SITE
            wo.arrived_at = self.occurred_at

    class ServiceStarted(Event):
        identity_shown: bool
        risk_assessment: str

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.IN_SERVICE

    class ScopeChanged(Event):
        description: str
        new_eta: datetime | None

        def happen(self, wo: WorkOrder) -> None:
            wo.description = self.description

    class ServiceCompleted(Event):
        summary: str
        parts_used: list[Part]

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.COMPLETED
            wo.completions += 1

    class Accepted(Event):
        #: Sealed in the store (docs/privacy.md); a plain str in events before sealing.
        signed_by: Signature | SealedPersonalData | str

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.ACCEPTED
            wo.accepted_at = self.occurred_at

    class Rejected(Event):
        reasons: list[str]
        #: How many times the customer has now rejected the work (1 = first rework).
        rejection_count: int

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.IN_SERVICE
            wo.rejections = self.rejection_count

    class ResolvedRemotely(Event):
        summary: str

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.RESOLVED_REMOTELY
            wo.accepted_at = self.occurred_at

    class PutOnHold(Event):
        reason: str

        def happen(self, wo: WorkOrder) -> None:
            wo.state_before_hold = wo.state
            wo.state = S.ON_HOLD

    class Resumed(Event):
        def happen(self, wo: WorkOrder) -> None:
            assert wo.state_before_hold is not None
            wo.state = wo.state_before_hold
            wo.state_before_hold = None

    class FeedbackReceived(Event):
        feedback: Feedback

        def happen(self, wo: WorkOrder) -> None:
            wo.feedback = self.feedback

    class Escalated(Event):
        level: int
        reason: str
        #: The SLA target that went red, when the escalation is the sweep's.
        target: str | None

        def happen(self, wo: WorkOrder) -> None:
            wo.escalation_level = self.level
            if self.target is not None:
                wo.escalated_targets = [*wo.escalated_targets, self.target]

    class Cancelled(Event):
        reason: str

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.CANCELLED

    class CallbackLogged(Event):
        outcome: str
        note: str

        def happen(self, wo: WorkOrder) -> None:
            wo.callbacks += 1

    def __init__(self) -> None:
        super().__init__()
        self.state = S.BOOKED
        self.customer: Customer | SealedPersonalData
        self.service_type: str
        self.priority: Priority
        self.zone: Zone
        self.appointment: Appointment | None
        self.channel: Channel
        self.billing: Billing
        self.description: str
        self.policy_version: str
        self.booked_at: datetime
        self.contract_id: UUID | None = None
        self.technician_id: str | None = None
        self.lateness_notified = False
        self.expected_arrival: datetime | None = None
        self.arrived_at: datetime | None = None
        self.accepted_at: datetime | None = None
        self.completions = 0
        self.rejections = 0
        self.state_before_hold: WorkOrderState | None = None
        self.feedback: Feedback | None = None
        self.escalation_level = 0
        self.escalated_targets: list[str] = []
        self.callbacks = 0

    # -- commands -----------------------------------------------------------

    @classmethod
    def book(
        cls,
        ctx: Context,
        *,
        id: UUID,
        customer: Customer,
        service_type: str,
        priority: Priority,
        zone: Zone,
        channel: Channel,
        billing: Billing,
        description: str,
        policy_version: str,
        appointment: Appointment | None = None,
        contract_id: UUID | None = None,
    ) -> WorkOrder:
        customer = Customer(
            name=require_text("customer.name", customer.name, max_length=200),
            phone=require_text("customer.phone", customer.phone, max_length=50),
            address=customer.address.strip(),
        )
        if appointment is not None:
            require_aware("appointment.start", appointment.start)
            require_aware("appointment.end", appointment.end)
            if appointment.end <= appointment.start:
                raise InvalidCommand("appointment.end", "must be after appointment.start")
        if contract_id is not None and billing is not Billing.CONTRACT:
            raise InvalidCommand(
                "contract_id",
                f"only a billing: contract order names a contract, not {billing.value}",
            )
        return cls._begin(
            cls.Booked,
            ctx,
            id=id,
            customer=customer,
            service_type=require_text("service_type", service_type, max_length=200),
            priority=priority,
            zone=zone,
            appointment=appointment,
            channel=channel,
            billing=billing,
            description=description.strip(),
            policy_version=policy_version,
            contract_id=contract_id,
        )

    def assign(self, ctx: Context, technician_id: str) -> None:
        if self.state not in (S.BOOKED, S.ASSIGNED, S.CONFIRMED):
            raise self.refuse("assign")
        self._record(self.Assigned, ctx, technician_id=require_text("technician_id", technician_id))

    def confirm(self, ctx: Context) -> None:
        if self.state is not S.ASSIGNED:
            raise self.refuse("confirm")
        self._record(self.Confirmed, ctx)

    def depart(self, ctx: Context) -> None:
        if self.state is not S.CONFIRMED:
            raise self.refuse("depart")
        self._record(self.Departed, ctx)

    def notify_late(self, ctx: Context, expected_arrival: datetime, reason: str) -> None:
        if self.state not in (S.CONFIRMED, S.EN_ROUTE):
            raise self.refuse("notify-late")
        require_aware("expected_arrival", expected_arrival)
        self._record(
            self.LatenessNotified,
            ctx,
            expected_arrival=expected_arrival,
            reason=require_text("reason", reason),
        )

    def arrive(self, ctx: Context) -> None:
        if self.state is not S.EN_ROUTE:
            raise self.refuse("arrive")
        minutes_late: int | None = None
        minutes_early: int | None = None
        if self.appointment is not None:
            seconds = (ctx.when - self.appointment.start).total_seconds()
            # Rounding up is exact for the appraisal bands: 5 min 1 s is "over 5".
            minutes_late = max(0, math.ceil(seconds / 60))
            minutes_early = max(0, math.floor(-seconds / 60))
        self._record(
            self.Arrived,
            ctx,
            minutes_late=minutes_late,
            minutes_early=minutes_early,
            lateness_notified=self.lateness_notified,
        )

    def start(self, ctx: Context, identity_shown: bool, risk_assessment: str) -> None:
        if self.state is not S.ON_SITE:
            raise self.refuse("start")
        if not identity_shown:
            raise InvalidCommand("identity_shown", "the technician must show ID before starting")
        self._record(
            self.ServiceStarted,
            ctx,
            identity_shown=True,
            risk_assessment=require_text("risk_assessment", risk_assessment),
        )

    def change_scope(self, ctx: Context, description: str, new_eta: datetime | None) -> None:
        if self.state is not S.IN_SERVICE:
            raise self.refuse("change-scope")
        if new_eta is not None:
            require_aware("new_eta", new_eta)
        self._record(
            self.ScopeChanged,
            ctx,
            description=require_text("description", description),
            new_eta=new_eta,
        )

    def complete(self, ctx: Context, summary: str, parts_used: list[Part]) -> None:
        if self.state is not S.IN_SERVICE:
            raise self.refuse("complete")
        for i, part in enumerate(parts_used):
            require_text(f"parts_used[{i}].name", part.name, max_length=200)
            if part.quantity < 1:
                raise InvalidCommand(f"parts_used[{i}].quantity", "must be at least 1")
            if part.unit_price is not None and part.unit_price < 0:
                raise InvalidCommand(f"parts_used[{i}].unit_price", "must not be negative")
        self._record(
            self.ServiceCompleted,
            ctx,
            summary=require_text("summary", summary),
            parts_used=list(parts_used),
        )

    def accept(self, ctx: Context, signed_by: str) -> None:
        if self.state is not S.COMPLETED:
            raise self.refuse("accept", "the work must be completed first")
        signer = require_text("signed_by", signed_by)
        self._record(self.Accepted, ctx, signed_by=Signature.of(signer, self.customer))

    def reject(self, ctx: Context, reasons: list[str]) -> None:
        if self.state is not S.COMPLETED:
            raise self.refuse("reject")
        if not reasons:
            raise InvalidCommand("reasons", "give at least one reason")
        cleaned = [require_text(f"reasons[{i}]", r) for i, r in enumerate(reasons)]
        self._record(self.Rejected, ctx, reasons=cleaned, rejection_count=self.rejections + 1)

    def resolve_remotely(self, ctx: Context, summary: str) -> None:
        if self.state not in (S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE):
            raise self.refuse("resolve-remotely")
        self._record(self.ResolvedRemotely, ctx, summary=require_text("summary", summary))

    def hold(self, ctx: Context, reason: str) -> None:
        if self.state in CLOSED_STATES or self.state in (S.ON_HOLD, S.COMPLETED):
            raise self.refuse("hold")
        self._record(self.PutOnHold, ctx, reason=require_text("reason", reason))

    def resume(self, ctx: Context) -> None:
        if self.state is not S.ON_HOLD:
            raise self.refuse("resume")
        self._record(self.Resumed, ctx)

    def give_feedback(self, ctx: Context, feedback: Feedback) -> None:
        if self.state not in (S.ACCEPTED, S.RESOLVED_REMOTELY):
            raise self.refuse("feedback", "feedback follows acceptance")
        if self.feedback is not None:
            raise self.refuse("feedback", "feedback was already received")
        checked = Feedback(
            csat=require_between("csat", feedback.csat, 1, 5),
            attitude=require_between("attitude", feedback.attitude, 1, 4),
            skill=require_between("skill", feedback.skill, 1, 4),
            punctuality=require_between("punctuality", feedback.punctuality, 1, 4),
            promise=require_between("promise", feedback.promise, 1, 4),
            praise=bool(feedback.praise),
            comment=feedback.comment.strip(),
        )
        self._record(self.FeedbackReceived, ctx, feedback=checked)

    def escalate(self, ctx: Context, level: int, reason: str, target: str | None = None) -> None:
        if self.state in CLOSED_STATES:
            raise self.refuse("escalate")
        check_escalation(self, level, target)
        self._record(
            self.Escalated, ctx, level=level, reason=require_text("reason", reason), target=target
        )

    def cancel(self, ctx: Context, reason: str) -> None:
        if self.state in CLOSED_STATES or self.state in (S.IN_SERVICE, S.COMPLETED):
            raise self.refuse("cancel")
        self._record(self.Cancelled, ctx, reason=require_text("reason", reason))

    def log_callback(self, ctx: Context, outcome: str, note: str) -> None:
        if self.state not in (S.ACCEPTED, S.RESOLVED_REMOTELY):
            raise self.refuse("log-callback", "callbacks follow acceptance")
        self._record(
            self.CallbackLogged,
            ctx,
            outcome=require_text("outcome", outcome, max_length=200),
            note=note.strip(),
        )


def check_escalation(aggregate: Any, level: int, target: str | None) -> None:
    """Escalation only goes up (or stays at the top), 1 to 3; a target once."""
    require_between("level", level, 1, 3)
    if level < aggregate.escalation_level:
        raise aggregate.refuse("escalate", f"it is already at level {aggregate.escalation_level}")
    if target is not None and target in aggregate.escalated_targets:
        raise aggregate.refuse("escalate", f"target {target} was already escalated")
