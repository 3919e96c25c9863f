"""The work order: one visit to a customer, from booking to signed acceptance.

States: booked → assigned → confirmed → en_route → on_site → in_service →
completed → accepted, plus on_hold, cancelled and resolved_remotely; `reject`
sends a completed order back to in_service (rework) and is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import resolve_topic
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
    #: Serial numbers of the units this part replaced (002 篇二, 003 第三條).
    replaced_serial_numbers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChecklistItem:
    """One line of the item checklist at completion (004 二(一)2), checked one by one."""

    item: str
    done: bool


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
        #: The product serviced (002 篇二, 003 第三條), when the customer says.
        model: str | None
        purchase_date: date | None
        #: The earlier order this booking names as the same problem (explicit link).
        previous_work_order_id: UUID | None
        #: The earlier order this booking is a repeat call of: the one named, or
        #: the one found by customer and service type within the policy's window.
        repeat_of: UUID | None
        #: Who took the call (002 篇三 首問負責制): accountable until a hand-over.
        first_responder_id: str

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state.update(model=None, purchase_date=None, previous_work_order_id=None,
                         repeat_of=None, first_responder_id=state["actor"])  # fmt: skip
        #: The maintenance contract a `billing: contract` order is done under (003 第一條).
        contract_id: UUID | None = None

        def mutate(self, aggregate: Any) -> Any:
            """The library's `CanInitAggregate.mutate`, without sorting the
            event's twenty fields into `__base_init__`'s and `__init__`'s
            arguments (two dict comprehensions, per booking and per work order
            read from the store): a `WorkOrder`'s `__init__` takes none, its
            `__base_init__` the id, version and timestamp. Another class under
            the topic (a subclass) is left to the library."""
            kind = resolve_topic(self.originator_topic)
            if kind is not WorkOrder or aggregate is not None:
                return super().mutate(aggregate)
            wo = WorkOrder.__new__(WorkOrder)
            wo.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            wo.__init__()  # type: ignore[misc]
            self.apply(wo)
            return wo

        def happen(self, wo: WorkOrder) -> None:
            wo.model = self.model
            wo.purchase_date = self.purchase_date
            wo.previous_work_order_id = self.previous_work_order_id
            wo.repeat_of = self.repeat_of
            wo.first_responder_id = wo.accountable_id = self.first_responder_id
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
        #: The rest of the on-site checklist of 004 二(一)2 (all true when recorded).
        customer_identity_verified: bool
        site_safe: bool
        tools_complete: bool

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            # Recorded before the checklist had these lines: not checked then.
            state.update(customer_identity_verified=False, site_safe=False, tools_complete=False)

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
        #: The item checklist (004 二(一)2), every item done.
        checklist: list[ChecklistItem]

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["checklist"] = []

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
        #: Who on the customer's side allowed the remote access (002 10.2.2).
        authorized_by: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["authorized_by"] = None

        def happen(self, wo: WorkOrder) -> None:
            wo.state = S.RESOLVED_REMOTELY
            wo.accepted_at = self.occurred_at

    class RemoteFixFailed(Event):
        """A hotline or remote fix was tried and did not solve it: the order goes on
        to a visit (002 10.2.2; the path hotline → remote → on-site)."""

        summary: str
        authorized_by: str

        def happen(self, wo: WorkOrder) -> None:
            wo.remote_attempts += 1

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
        #: Appointed from the policy's roster for the level (004 二(二): 立即派專人協調).
        coordinator_id: str | None

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["coordinator_id"] = None

        def happen(self, wo: WorkOrder) -> None:
            if self.coordinator_id is not None:
                wo.coordinator_id = self.coordinator_id
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

    class HandedOver(Event):
        """The accountable person hands the order over (002 篇三 首問負責制)."""

        from_staff_id: str
        to_staff_id: str
        note: str

        def happen(self, wo: WorkOrder) -> None:
            wo.accountable_id = self.to_staff_id

    class ReminderIssued(Event):
        """A target turned yellow: its handler is reminded (004 二(二): 主動提醒處理人)."""

        target: str
        owner_id: str | None

        def happen(self, wo: WorkOrder) -> None:
            wo.reminded_targets = [*wo.reminded_targets, self.target]

    class SurveySent(Event):
        """The survey card went out, for every ended call (003 第十八條)."""

        def happen(self, wo: WorkOrder) -> None:
            wo.survey_sent_at = self.occurred_at

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
        self.model: str | None = None
        self.purchase_date: date | None = None
        self.previous_work_order_id: UUID | None = None
        self.repeat_of: UUID | None = None
        self.first_responder_id: str | None = None
        #: The first responder, or whom it was last handed over to.
        self.accountable_id: str | None = None
        self.coordinator_id: str | None = None
        self.reminded_targets: list[str] = []
        self.remote_attempts = 0
        self.survey_sent_at: datetime | None = None

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
        model: str | None = None,
        purchase_date: date | None = None,
        previous_work_order_id: UUID | None = None,
        repeat_of: UUID | None = None,
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
            model=None if model is None else require_text("model", model, max_length=200),
            purchase_date=_purchase_date(purchase_date, ctx),
            previous_work_order_id=previous_work_order_id,
            repeat_of=previous_work_order_id or repeat_of,
            first_responder_id=ctx.actor,
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

    def start(
        self,
        ctx: Context,
        identity_shown: bool,
        risk_assessment: str,
        customer_identity_verified: bool = False,
        site_safe: bool = False,
        tools_complete: bool = False,
    ) -> None:
        """The on-site checklist of 004 二(一)2: every line true before work starts."""
        if self.state is not S.ON_SITE:
            raise self.refuse("start")
        checklist = {
            "identity_shown": (identity_shown, "the technician must show ID before starting"),
            "customer_identity_verified": (
                customer_identity_verified, "the customer's identity must be verified"),
            "site_safe": (site_safe, "the site must be checked safe before starting"),
            "tools_complete": (tools_complete, "the tools must be checked complete"),
        }  # fmt: skip
        for name, (checked, why) in checklist.items():
            if checked is not True:
                raise InvalidCommand(name, why)
        self._record(
            self.ServiceStarted,
            ctx,
            identity_shown=True,
            risk_assessment=require_text("risk_assessment", risk_assessment),
            customer_identity_verified=True,
            site_safe=True,
            tools_complete=True,
        )

    def change_scope(self, ctx: Context, description: str, new_eta: datetime | None) -> None:
        """000 二(三)5: the customer is told the new expected completion time."""
        if self.state is not S.IN_SERVICE:
            raise self.refuse("change-scope")
        if new_eta is None:
            raise InvalidCommand("new_eta", "tell the customer when the work will now be done")
        require_aware("new_eta", new_eta)
        if new_eta <= ctx.when:
            raise InvalidCommand("new_eta", "must lie after the change of scope")
        self._record(
            self.ScopeChanged,
            ctx,
            description=require_text("description", description),
            new_eta=new_eta,
        )

    def complete(
        self,
        ctx: Context,
        summary: str,
        parts_used: list[Part],
        checklist: list[ChecklistItem] | None = None,
    ) -> None:
        """004 二(一)2: the items are checked one by one, every one done."""
        if self.state is not S.IN_SERVICE:
            raise self.refuse("complete")
        for i, part in enumerate(parts_used):
            require_text(f"parts_used[{i}].name", part.name, max_length=200)
            if part.quantity < 1:
                raise InvalidCommand(f"parts_used[{i}].quantity", "must be at least 1")
            if part.unit_price is not None and part.unit_price < 0:
                raise InvalidCommand(f"parts_used[{i}].unit_price", "must not be negative")
            for j, serial in enumerate(part.replaced_serial_numbers):
                require_text(f"parts_used[{i}].replaced_serial_numbers[{j}]", serial,
                             max_length=200)  # fmt: skip
        if not checklist:
            raise InvalidCommand("checklist", "check the items one by one: give at least one")
        items: list[ChecklistItem] = []
        for i, line in enumerate(checklist):
            name = require_text(f"checklist[{i}].item", line.item, max_length=200)
            if line.done is not True:
                raise InvalidCommand(f"checklist[{i}].done", f"item {name!r} is not done")
            items.append(ChecklistItem(name, True))
        self._record(
            self.ServiceCompleted,
            ctx,
            summary=require_text("summary", summary),
            parts_used=[
                Part(p.name.strip(), p.quantity, p.unit_price,
                     [s.strip() for s in p.replaced_serial_numbers])
                for p in parts_used
            ],
            checklist=items,
        )  # fmt: skip

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

    def resolve_remotely(
        self, ctx: Context, summary: str, authorized_by: str = "", resolved: bool = True
    ) -> None:
        """A hotline or remote fix, with the customer's authorization (002 10.2.2).
        `resolved=False` records a failed attempt: the order goes on to a visit."""
        if self.state not in (S.BOOKED, S.ASSIGNED, S.CONFIRMED, S.EN_ROUTE):
            raise self.refuse("resolve-remotely")
        authorized = require_text("authorized_by", authorized_by, max_length=200)
        event = self.ResolvedRemotely if resolved else self.RemoteFixFailed
        self._record(event, ctx, summary=require_text("summary", summary),
                     authorized_by=authorized)  # fmt: skip

    def hold(self, ctx: Context, reason: str) -> None:
        if self.state in CLOSED_STATES or self.state in (S.ON_HOLD, S.COMPLETED):
            raise self.refuse("hold")
        self._record(self.PutOnHold, ctx, reason=require_text("reason", reason))

    def resume(self, ctx: Context) -> None:
        if self.state is not S.ON_HOLD:
            raise self.refuse("resume")
        self._record(self.Resumed, ctx)

    @property
    def ended(self) -> bool:
        """The call is over and is surveyed (003 第十八條): accepted, resolved
        remotely, or cancelled after the technician was on site."""
        return self.state in (S.ACCEPTED, S.RESOLVED_REMOTELY) or (
            self.state is S.CANCELLED and self.arrived_at is not None
        )

    def give_feedback(self, ctx: Context, feedback: Feedback) -> None:
        if not self.ended:
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

    def escalate(
        self,
        ctx: Context,
        level: int,
        reason: str,
        target: str | None = None,
        coordinator_id: str | None = None,
    ) -> None:
        if self.state in CLOSED_STATES:
            raise self.refuse("escalate")
        check_escalation(self, level, target)
        self._record(
            self.Escalated, ctx, level=level, reason=require_text("reason", reason),
            target=target, coordinator_id=coordinator_id,
        )  # fmt: skip

    def hand_over(self, ctx: Context, to_staff_id: str, note: str) -> None:
        hand_over(self, ctx, to_staff_id, note)

    def remind(self, ctx: Context, target: str, owner_id: str | None) -> None:
        if self.state in CLOSED_STATES:
            raise self.refuse("remind")
        check_reminder(self, target)
        self._record(self.ReminderIssued, ctx, target=target, owner_id=owner_id)

    def send_survey(self, ctx: Context) -> None:
        if not self.ended:
            raise self.refuse("send-survey", "a survey card follows the end of the call")
        if self.survey_sent_at is not None:
            raise self.refuse("send-survey", "the survey card was already sent")
        self._record(self.SurveySent, ctx)

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


def _purchase_date(value: date | None, ctx: Context) -> date | None:
    # A day's grace: the customer's date is local, the server's UTC.
    if value is not None and value > (ctx.when + timedelta(days=1)).date():
        raise InvalidCommand("purchase_date", "lies in the future")
    return value


def hand_over(aggregate: Any, ctx: Context, to_staff_id: str, note: str) -> None:
    """First responder (002 篇三 1-7): accountable until handed over, to someone else."""
    if aggregate.state in getattr(aggregate, "closed_states", CLOSED_STATES):
        raise aggregate.refuse("hand-over")
    to = require_text("to_staff_id", to_staff_id, max_length=200)
    if to == aggregate.accountable_id:
        raise InvalidCommand("to_staff_id", f"{to} is already accountable for it")
    aggregate._record(
        aggregate.HandedOver, ctx, from_staff_id=aggregate.accountable_id, to_staff_id=to,
        note=require_text("note", note),
    )  # fmt: skip


def check_reminder(aggregate: Any, target: str) -> None:
    if target in aggregate.reminded_targets:
        raise aggregate.refuse("remind", f"target {target} was already reminded")
