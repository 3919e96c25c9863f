"""Every command, defined once.

A command is one typed value (`Command`): its name (the last segment of its
path), its body model, the roles that may give it, the aggregate it targets and
a typed call into that aggregate's method. The routes (`add_command_route`,
the staff routes), the authorizer (`Permission.check`, the `permits` route
dependency), the ledger (`FieldLedger.execute`) and the console all read these
values: adding a command is one entry in a `CommandSet` below (and its domain
method). Because `call` is typed by the aggregate and the body, mypy checks the
route → domain call.

Creates (book, lodge, sign) and the customer data rights are `Permission`s
with their bodies: their ledger methods do more than call one method (checks
across records, erasing keys).

Bodies use the field types of `fieldledger.application.fields`, so every body
says in /openapi.json exactly what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Generic, Literal, NotRequired, TypedDict, TypeVar
from uuid import UUID

from fieldledger.application.fields import (
    Code,
    Csat,
    Day,
    Flag,
    Instant,
    Level,
    Minutes,
    Name,
    Note,
    Phone,
    Points,
    Price,
    Quantity,
    QueryDate,
    RecordId,
    Score4,
    StaffId,
    Text,
    VisitsPerYear,
)
from fieldledger.domain.complaints import (
    Complainant,
    Complaint,
    ComplaintChannel,
    InformedVia,
    Severity,
)
from fieldledger.domain.facts import Context, LedgerAggregate, Role
from fieldledger.domain.maintenance_contracts import MaintenanceContract
from fieldledger.domain.permissions import authorize
from fieldledger.domain.policy import Policy
from fieldledger.domain.staff import StaffMember
from fieldledger.domain.work_orders import (
    Appointment,
    Billing,
    Channel,
    ChecklistItem,
    Customer,
    Feedback,
    Part,
    Priority,
    WorkOrder,
    Zone,
)
from pydantic import BaseModel, ConfigDict, Field


def N_(message: str) -> str:
    """Marks a console label for extraction (babel.cfg); translated where shown."""
    return message


_CLIENT, _DISPATCH, _TECH, _SUPER, _SYSTEM = (
    Role.CLIENT_APP,
    Role.DISPATCHER,
    Role.TECHNICIAN,
    Role.SUPERVISOR,
    Role.SYSTEM,
)


def roles(*given: Role) -> frozenset[Role]:
    return frozenset(given)


# -- what a command is ---------------------------------------------------------


class CommandBody(BaseModel):
    """Every command may say when it happened in the field."""

    model_config = ConfigDict(extra="forbid")

    occurred_at: Instant | None = None


A = TypeVar("A", bound=LedgerAggregate)
B = TypeVar("B", bound=CommandBody)


@dataclass(frozen=True)
class Rules:
    """What of the service's configuration a command is checked against."""

    policy: Policy
    timezone: str


@dataclass(frozen=True)
class Permission:
    """Something only some roles may do: its name and who may."""

    name: str
    roles: frozenset[Role]

    @property
    def who(self) -> str:
        """The roles, as the docs and /openapi.json list them."""
        return ", ".join(sorted(r.value for r in self.roles))

    def check(self, role: Role) -> None:
        """Raises NotPermitted unless `role` may do this at all."""
        authorize(self.name, self.roles, role)


@dataclass(frozen=True)
class Creation(Permission):
    """A command that creates a record (book, lodge, sign)."""

    summary: str = ""


@dataclass(frozen=True)
class Command(Permission, Generic[A, B]):
    """A command on an existing record: `call(aggregate, ctx, body, rules)`."""

    aggregate: type[A]
    body: type[B]
    call: Callable[[A, Context, B, Rules], None]
    summary: str = ""
    #: More to say in the docs than the summary (staff commands).
    description: str = ""
    #: False: the service's own (the sweep's), given in-process, never over HTTP.
    routed: bool = True
    #: The console's label for its form (None: not offered in the console).
    label: str | None = None
    #: The staff member the body names, who must be known (hand-overs).
    names_staff: Callable[[B], str] | None = None


class CommandSet(Generic[A]):
    """The commands on one kind of record, in the order the docs list them."""

    def __init__(self, aggregate: type[A], *commands: Permission) -> None:
        # The entries are typed `Permission` on purpose: with a `Command[A, Any]`
        # context mypy would infer each body type as Any and not check the calls.
        self.aggregate = aggregate
        checked: list[Command[A, Any]] = []
        for command in commands:
            assert isinstance(command, Command) and command.aggregate is aggregate, command
            checked.append(command)
        self.commands = tuple(checked)
        self._by_name = {c.name: c for c in self.commands}
        assert len(self._by_name) == len(self.commands), "two commands of one name"

    def __getitem__(self, name: str) -> Command[A, Any]:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Command[A, Any]]:
        return iter(self.commands)

    @property
    def routed(self) -> tuple[Command[A, Any], ...]:
        return tuple(c for c in self.commands if c.routed)


# -- bodies shared by several commands --------------------------------------------


class NoData(CommandBody):
    pass


class Reason(CommandBody):
    reason: Text


class Escalate(CommandBody):
    level: Level
    reason: Text


class HandOver(CommandBody):
    """First responder (002 篇三 首問負責制): pass the record on, with a note."""

    to_staff_id: StaffId
    note: Text


class Remind(CommandBody):
    """The sweep reminds the handler of a target turning yellow."""

    target: str
    owner_id: str | None = None


class SweepEscalation(Escalate):
    """The sweep escalates a target past due, naming the coordinator on duty."""

    target: str
    coordinator_id: str | None = None


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    phone: Phone
    #: Where the technician goes: required (contract §4 lists it, not as optional).
    address: Text

    def value(self) -> Customer:
        return Customer(name=self.name, phone=self.phone, address=self.address)


# -- work orders (contract §4) ----------------------------------------------------


class AppointmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: Instant
    end: Instant


class Book(CommandBody):
    customer: CustomerIn
    service_type: Name
    priority: Priority
    zone: Zone
    appointment: AppointmentIn | None = None
    channel: Channel
    billing: Billing
    #: What the customer needs done: required (contract §4 lists it, not as optional).
    description: Text
    #: The product serviced (002 篇二, 003 第三條).
    model: Name | None = None
    purchase_date: QueryDate | None = None
    #: The earlier order this call is about again (a repeat call, contract §11.4).
    previous_work_order_id: RecordId | None = None
    #: The maintenance contract of a `billing: contract` order (must exist and cover the day).
    contract_id: UUID | None = None

    def to_args(self) -> BookFields:
        """The booking's fields, as `FieldLedger.book_work_order` takes them."""
        return {
            "model": self.model,
            "purchase_date": self.purchase_date,
            "previous_work_order_id": self.previous_work_order_id,
            "customer": self.customer.value(),
            "service_type": self.service_type,
            "priority": self.priority,
            "zone": self.zone,
            "appointment": (
                Appointment(start=self.appointment.start, end=self.appointment.end)
                if self.appointment
                else None
            ),
            "channel": self.channel,
            "billing": self.billing,
            "description": self.description,
            "contract_id": self.contract_id,
        }


class BookFields(TypedDict):
    """What `FieldLedger.book_work_order` passes on to `WorkOrder.book` (mypy checks it)."""

    customer: Customer
    service_type: str
    priority: Priority
    zone: Zone
    channel: Channel
    billing: Billing
    description: str
    appointment: NotRequired[Appointment | None]
    model: NotRequired[str | None]
    purchase_date: NotRequired[date | None]
    previous_work_order_id: NotRequired[UUID | None]
    contract_id: NotRequired[UUID | None]


class AssignTechnician(CommandBody):
    technician_id: StaffId


class NotifyLate(CommandBody):
    expected_arrival: Instant
    reason: Text


class Start(CommandBody):
    """The on-site checklist of 004 二(一)2: every line true."""

    identity_shown: Flag
    risk_assessment: Text
    customer_identity_verified: Flag
    site_safe: Flag
    tools_complete: Flag


class ChangeScope(CommandBody):
    description: Text
    #: 000 二(三)5: the customer is told the new expected completion time.
    new_eta: Instant


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    quantity: Quantity = 1
    unit_price: Price | None = None
    #: Serial numbers of the units this part replaced (002 篇二, 003 第三條).
    replaced_serial_numbers: Annotated[list[Name], Field(max_length=200)] = []


class ChecklistItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Name
    done: Flag


class Complete(CommandBody):
    summary: Text
    parts_used: Annotated[list[PartIn], Field(max_length=200)] = []
    #: The item checklist of 004 二(一)2, checked one by one: every item done.
    checklist: Annotated[list[ChecklistItemIn], Field(min_length=1, max_length=200)]


class Accept(CommandBody):
    signed_by: Name


class Reject(CommandBody):
    reasons: Annotated[list[Text], Field(min_length=1, max_length=50)]


class ResolveRemotely(CommandBody):
    summary: Text
    #: Who on the customer's side allowed the remote access (002 10.2.2).
    authorized_by: Name
    #: false: the remote fix was tried and failed; the order goes on to a visit.
    resolved: Flag = True


class FeedbackIn(CommandBody):
    csat: Csat
    attitude: Score4
    skill: Score4
    punctuality: Score4
    promise: Score4
    praise: Flag = False
    comment: Note = ""


class LogCallback(CommandBody):
    outcome: Name
    note: Note = ""


def _complete(order: WorkOrder, ctx: Context, b: Complete, _: Rules) -> None:
    # Attribute by attribute: in-process callers may give the domain's own values.
    parts = [
        Part(name=p.name, quantity=p.quantity, unit_price=p.unit_price,
             replaced_serial_numbers=list(p.replaced_serial_numbers))
        for p in b.parts_used
    ]  # fmt: skip
    checklist = [ChecklistItem(item=c.item, done=c.done) for c in b.checklist]
    order.complete(ctx, b.summary, parts, checklist)


def _feedback(order: WorkOrder, ctx: Context, b: FeedbackIn, _: Rules) -> None:
    order.give_feedback(
        ctx,
        Feedback(csat=b.csat, attitude=b.attitude, skill=b.skill, punctuality=b.punctuality,
                 promise=b.promise, praise=b.praise, comment=b.comment),
    )  # fmt: skip


def _start(order: WorkOrder, ctx: Context, b: Start, _: Rules) -> None:
    order.start(ctx, b.identity_shown, b.risk_assessment, b.customer_identity_verified,
                b.site_safe, b.tools_complete)  # fmt: skip


BOOK = Creation("book", roles(_CLIENT, _DISPATCH), summary="Book a work order")

WORK_ORDER_ESCALATE = Command(
    "escalate", roles(_SUPER, _DISPATCH, _SYSTEM), WorkOrder, Escalate,
    lambda o, ctx, b, _: o.escalate(ctx, b.level, b.reason), "Escalate", label=N_("Escalate"),
)  # fmt: skip
WORK_ORDER_REMIND = Command(
    "remind", roles(_SYSTEM), WorkOrder, Remind,
    lambda o, ctx, b, _: o.remind(ctx, b.target, b.owner_id), "Remind the handler", routed=False,
)  # fmt: skip
WORK_ORDER_SEND_SURVEY = Command(
    "send-survey", roles(_SYSTEM), WorkOrder, NoData,
    lambda o, ctx, b, _: o.send_survey(ctx), "Send the survey card", routed=False,
)  # fmt: skip
#: The sweep's escalation of a target past due (as "escalate": same name, its own body).
WORK_ORDER_SWEEP_ESCALATE = Command(
    "escalate", roles(_SYSTEM), WorkOrder, SweepEscalation,
    lambda o, ctx, b, _: o.escalate(ctx, b.level, b.reason, b.target, b.coordinator_id),
    "Escalate a target past due", routed=False,
)  # fmt: skip

WORK_ORDER = CommandSet(
    WorkOrder,
    Command("assign", roles(_DISPATCH, _SUPER), WorkOrder, AssignTechnician,
            lambda o, ctx, b, _: o.assign(ctx, b.technician_id), "Assign a technician",
            label=N_("Assign")),
    Command("confirm", roles(_TECH), WorkOrder, NoData, lambda o, ctx, b, _: o.confirm(ctx),
            "Technician re-confirms time and place with the customer"),
    Command("depart", roles(_TECH), WorkOrder, NoData, lambda o, ctx, b, _: o.depart(ctx),
            "Technician departs for the site"),
    Command("notify-late", roles(_TECH), WorkOrder, NotifyLate,
            lambda o, ctx, b, _: o.notify_late(ctx, b.expected_arrival, b.reason),
            "Warn the customer of a late arrival"),
    Command("arrive", roles(_TECH), WorkOrder, NoData, lambda o, ctx, b, _: o.arrive(ctx),
            "Technician arrives on site"),
    Command("start", roles(_TECH), WorkOrder, Start, _start,
            "Start the service (ID shown, risks checked)"),
    Command("change-scope", roles(_TECH), WorkOrder, ChangeScope,
            lambda o, ctx, b, _: o.change_scope(ctx, b.description, b.new_eta),
            "Change the scope of the work"),
    Command("complete", roles(_TECH), WorkOrder, Complete, _complete, "Complete the service"),
    Command("accept", roles(_CLIENT, _TECH), WorkOrder, Accept,
            lambda o, ctx, b, _: o.accept(ctx, b.signed_by), "Customer accepts the work (signed)"),
    Command("reject", roles(_CLIENT, _TECH), WorkOrder, Reject,
            lambda o, ctx, b, _: o.reject(ctx, list(b.reasons)),
            "Customer rejects the work: back to in service for rework"),
    Command("resolve-remotely", roles(_DISPATCH, _TECH), WorkOrder, ResolveRemotely,
            lambda o, ctx, b, _: o.resolve_remotely(ctx, b.summary, b.authorized_by, b.resolved),
            "Resolve without a visit (hotline or remote fix), with the customer's "
            "authorization; or record that it failed"),
    Command("hold", roles(_DISPATCH, _TECH), WorkOrder, Reason,
            lambda o, ctx, b, _: o.hold(ctx, b.reason), "Put on hold (SLA clocks paused)",
            label=N_("Put on hold")),
    Command("resume", roles(_DISPATCH, _TECH), WorkOrder, NoData,
            lambda o, ctx, b, _: o.resume(ctx), "Resume from hold", label=N_("Resume")),
    Command("feedback", roles(_CLIENT), WorkOrder, FeedbackIn, _feedback,
            "Customer feedback (survey)"),
    WORK_ORDER_ESCALATE,
    Command("cancel", roles(_CLIENT, _DISPATCH), WorkOrder, Reason,
            lambda o, ctx, b, _: o.cancel(ctx, b.reason), "Cancel", label=N_("Cancel")),
    Command("log-callback", roles(_DISPATCH, _SUPER), WorkOrder, LogCallback,
            lambda o, ctx, b, _: o.log_callback(ctx, b.outcome, b.note),
            "Log a callback to the customer", label=N_("Log a callback")),
    # 002 篇三 首問負責制: the service desk passes an order on; the sweep reminds
    # and sends survey cards.
    Command("hand-over", roles(_DISPATCH, _SUPER), WorkOrder, HandOver,
            lambda o, ctx, b, _: o.hand_over(ctx, b.to_staff_id, b.note),
            "Hand the order over to another staff member",
            names_staff=lambda b: b.to_staff_id),
    WORK_ORDER_REMIND,
    WORK_ORDER_SEND_SURVEY,
)  # fmt: skip


# -- complaints (contract §5) ---------------------------------------------------------
# The contract names no "who" for complaints beyond client apps booking and
# following them for customers; this is the split a complaints desk works by
# (docs/api.md, "Who may do what"): client apps lodge and confirm for the
# customer, the service desk (dispatchers) and supervisors handle, supervisors
# and the system escalate. Findings may hold staff at fault, which costs them
# appraisal points: like conduct, that judgement is a supervisor's alone.
_DESK = roles(_DISPATCH, _SUPER)


class ComplainantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    phone: Phone


class LodgeFields(TypedDict):
    """What `FieldLedger.lodge_complaint` passes on to `Complaint.lodge`."""

    customer: Complainant
    channel: ComplaintChannel
    category: str
    severity: Severity
    description: str
    work_order_id: NotRequired[UUID | None]
    staff_ids: NotRequired[list[str] | None]


class Lodge(CommandBody):
    customer: ComplainantIn
    channel: ComplaintChannel
    category: Name
    severity: Severity
    description: Text
    work_order_id: UUID | None = None
    staff_ids: Annotated[list[StaffId], Field(max_length=50)] = []

    def to_args(self) -> LodgeFields:
        """The complaint's fields, as `FieldLedger.lodge_complaint` takes them."""
        return {
            "customer": Complainant(name=self.customer.name, phone=self.customer.phone),
            "channel": self.channel,
            "category": self.category,
            "severity": self.severity,
            "description": self.description,
            "work_order_id": self.work_order_id,
            "staff_ids": list(self.staff_ids),
        }


class AssignOwner(CommandBody):
    department: Name
    owner_id: StaffId


class RecordFindings(CommandBody):
    root_cause: Text
    evidence: Annotated[list[Text], Field(max_length=100)] = []
    responsible_staff_id: StaffId | None = None
    #: Several responsible staff (an extension of the contract's single id).
    responsible_staff_ids: Annotated[list[StaffId], Field(max_length=50)] = []
    company_at_fault: Flag


class Plan(CommandBody):
    measures: Text
    owner_id: StaffId
    due: Instant


class UpdateProgress(CommandBody):
    note: Text


class Resolve(CommandBody):
    outcome: Text
    #: How the customer was told the outcome (003 第二十條).
    customer_informed_via: InformedVia


class Visit(CommandBody):
    """The in-person visit to the complaining customer (003 第二十二條)."""

    visited_by: StaffId
    note: Note = ""


class Confirm(CommandBody):
    satisfied: Flag
    csat: Csat


def _record_findings(complaint: Complaint, ctx: Context, b: RecordFindings, _: Rules) -> None:
    named = list(b.responsible_staff_ids)
    if b.responsible_staff_id is not None:
        named.insert(0, b.responsible_staff_id)
    complaint.record_findings(ctx, b.root_cause, list(b.evidence), named, b.company_at_fault)


LODGE = Creation(
    "lodge", roles(_CLIENT, _DISPATCH, _SUPER),
    summary="Lodge a complaint (a critical one is escalated to level 3 at once)",
)  # fmt: skip

COMPLAINT_ESCALATE = Command(
    "escalate", roles(_SUPER, _DISPATCH, _SYSTEM), Complaint, Escalate,
    lambda c, ctx, b, _: c.escalate(ctx, b.level, b.reason), "Escalate", label=N_("Escalate"),
)  # fmt: skip
COMPLAINT_REMIND = Command(
    "remind", roles(_SYSTEM), Complaint, Remind,
    lambda c, ctx, b, _: c.remind(ctx, b.target, b.owner_id), "Remind the handler", routed=False,
)  # fmt: skip
COMPLAINT_SWEEP_ESCALATE = Command(
    "escalate", roles(_SYSTEM), Complaint, SweepEscalation,
    lambda c, ctx, b, _: c.escalate(ctx, b.level, b.reason, b.target, b.coordinator_id),
    "Escalate a target past due", routed=False,
)  # fmt: skip

COMPLAINT = CommandSet(
    Complaint,
    Command("acknowledge", _DESK, Complaint, NoData, lambda c, ctx, b, _: c.acknowledge(ctx),
            "Acknowledge the complaint", label=N_("Acknowledge")),
    Command("assign", _DESK, Complaint, AssignOwner,
            lambda c, ctx, b, _: c.assign(ctx, b.department, b.owner_id),
            "Assign a department and owner", label=N_("Assign")),
    Command("record-findings", roles(_SUPER), Complaint, RecordFindings, _record_findings,
            "Record the investigation's findings"),
    Command("plan", _DESK, Complaint, Plan,
            lambda c, ctx, b, _: c.plan(ctx, b.measures, b.owner_id, b.due),
            "Plan the resolution"),
    Command("update-progress", _DESK, Complaint, UpdateProgress,
            lambda c, ctx, b, _: c.update_progress(ctx, b.note), "Note progress",
            label=N_("Note progress")),
    Command("resolve", _DESK, Complaint, Resolve,
            lambda c, ctx, b, _: c.resolve(ctx, b.outcome, b.customer_informed_via),
            "Resolve (a plan first; say how the customer was told)"),
    Command("visit", _DESK, Complaint, Visit,
            lambda c, ctx, b, _: c.visit(ctx, b.visited_by, b.note),
            "Record the visit to the complaining customer"),
    Command("hand-over", _DESK, Complaint, HandOver,
            lambda c, ctx, b, _: c.hand_over(ctx, b.to_staff_id, b.note),
            "Hand the complaint over to another staff member",
            names_staff=lambda b: b.to_staff_id),
    Command("confirm", roles(_CLIENT, _DISPATCH, _SUPER), Complaint, Confirm,
            lambda c, ctx, b, _: c.confirm(ctx, b.satisfied, b.csat),
            "Customer confirms: closed when satisfied, else reopened"),
    COMPLAINT_ESCALATE,
    COMPLAINT_REMIND,
)  # fmt: skip


# -- maintenance contracts (contract §11.5) -----------------------------------------
# Dispatchers and supervisors sign, renew and end them; the renewal notice
# (003 第十五條) is the sweep's alone.


class SignFields(TypedDict):
    """What `FieldLedger.sign_maintenance_contract` passes on to `MaintenanceContract.sign`."""

    customer: Customer
    starts_on: date
    ends_on: date
    visits_per_year: int


class Sign(CommandBody):
    customer: CustomerIn
    starts_on: QueryDate = Field(description="first day covered (local date)")
    ends_on: QueryDate = Field(description="last day covered (local date), after starts_on")
    visits_per_year: VisitsPerYear

    def to_args(self) -> SignFields:
        """The contract's fields, as `FieldLedger.sign_maintenance_contract` takes them."""
        return {
            "customer": self.customer.value(),
            "starts_on": self.starts_on,
            "ends_on": self.ends_on,
            "visits_per_year": self.visits_per_year,
        }


class Renew(CommandBody):
    ends_on: QueryDate = Field(description="the new last day covered: after the current one")


class End(CommandBody):
    reason: Note = ""


class RecordRenewalNotice(CommandBody):
    today: date


SIGN = Creation("sign", _DESK, summary="Sign a maintenance contract")

RECORD_RENEWAL_NOTICE = Command(
    "record-renewal-notice", roles(_SYSTEM), MaintenanceContract, RecordRenewalNotice,
    lambda c, ctx, b, _: c.record_renewal_notice(ctx, b.today), "Record the renewal notice",
    routed=False,
)  # fmt: skip

MAINTENANCE_CONTRACT = CommandSet(
    MaintenanceContract,
    Command("renew", _DESK, MaintenanceContract, Renew,
            lambda c, ctx, b, _: c.renew(ctx, b.ends_on),
            "Renew: the contract ends later (a new renewal notice before the new end)"),
    Command("end", _DESK, MaintenanceContract, End, lambda c, ctx, b, _: c.end(ctx, b.reason),
            "End the contract"),
    RECORD_RENEWAL_NOTICE,
)  # fmt: skip


# -- staff (contract §11.1, §11.7) ------------------------------------------------------
# A supervisor records conduct, spot checks, their outcome (retrained,
# reassigned), joining and training.


class Conduct(CommandBody):
    kind: Annotated[Code, Field(examples=["personal_call"])]
    #: Within the kind's range; may be left out for a kind with a single value.
    points: Points | None = Field(
        default=None, description="within the kind's range; computed for late_for_shift"
    )
    minutes: Minutes | None = Field(
        default=None, description="late_for_shift only: minutes late (over 10: an absence)"
    )
    discipline: Literal["warning", "demerit", "dismissal"] | None = Field(
        default=None, description="quarrel only: the discipline the supervisor decides"
    )
    extra_points: Points | None = Field(
        default=None,
        description="the 3rd/4th record of a laddered kind in a month: the further points, "
        "within the step's range (default the mildest)",
    )
    note: Note = ""


class QualityCheck(CommandBody):
    passed: Flag
    notes: Note = ""


class Retrained(CommandBody):
    note: Text = Field(description="what retraining was done")


class Reassigned(CommandBody):
    note: Text = Field(description="the new post, and why")


class Joined(CommandBody):
    on: Day = Field(description="the day the staff member took up the post (local date)")


class Training(CommandBody):
    kind: Literal["induction", "monthly", "fire_safety"]
    held_on: Day
    attended: Flag
    disciplined: Flag = Field(default=True, description="false: broke class discipline")
    form_completed: Flag = Field(default=True, description="false: feedback form not done")
    test_passed: Flag | None = Field(default=None, description="null: no test held")
    deadline: Day | None = Field(
        default=None,
        description="the 3rd failed test of a kind: the day by which it must be passed "
        "(default: the policy's retest_within_days after the test)",
    )


def _conduct(staff: StaffMember, ctx: Context, b: Conduct, rules: Rules) -> None:
    staff.record_conduct(
        ctx, rules.policy.conduct, b.kind, b.points, b.note, minutes=b.minutes,
        discipline=b.discipline, extra_points=b.extra_points, timezone=rules.timezone,
    )  # fmt: skip


def _training(staff: StaffMember, ctx: Context, b: Training, rules: Rules) -> None:
    staff.record_training(
        ctx, rules.policy.training, b.kind, b.held_on, b.attended, b.disciplined,
        b.form_completed, b.test_passed, b.deadline,
    )  # fmt: skip


_SUPERVISOR = roles(_SUPER)
CONDUCT = Command(
    "conduct", _SUPERVISOR, StaffMember, Conduct, _conduct,
    "Record conduct (points within the kind's range)",
    "Record a staff member's conduct (contract §11.1). `kind` is one of the policy's "
    "conduct kinds; `points` must lie within the kind's range and may be left out for a "
    "kind with a single value; `minutes` for `late_for_shift` (over 10: recorded as an "
    "`absence`); `discipline` for `quarrel`; `extra_points` for the 3rd/4th record of a "
    "laddered kind in a month.",
)  # fmt: skip

STAFF = CommandSet(
    StaffMember,
    CONDUCT,
    Command("quality-checks", _SUPERVISOR, StaffMember, QualityCheck,
            lambda s, ctx, b, _: s.check_quality(ctx, b.passed, b.notes),
            "Record a quality spot check",
            "A monthly random check of the staff member's work (004 4.1.1); a failed one is a "
            "service fault (004 4.1.3)."),
    Command("retrained", _SUPERVISOR, StaffMember, Retrained,
            lambda s, ctx, b, _: s.retrain(ctx, b.note),
            "Record retraining: the service-fault count starts again",
            "Clears `retraining_required` (004 4.1.3)."),
    Command("reassigned", _SUPERVISOR, StaffMember, Reassigned,
            lambda s, ctx, b, _: s.reassign(ctx, b.note),
            "Record a reassignment: the service-fault count starts again",
            "Clears `retraining_required` (004 4.1.3: 調崗)."),
    Command("joined", _SUPERVISOR, StaffMember, Joined, lambda s, ctx, b, _: s.join(ctx, b.on),
            "Record the day the staff member joined",
            "Training deadlines run from it (001 第3篇); recorded once."),
    Command("training", _SUPERVISOR, StaffMember, Training, _training,
            "Record a training session: attendance, discipline, form, test",
            "Points in the month held (001 第3篇 6.0); a failed test counts per kind since the "
            "last pass, and the 3rd sets a deadline."),
)  # fmt: skip


# -- a customer's personal data (docs/privacy.md) ---------------------------------------
# Finding the customer by phone, reading a copy of everything held (PIPL art.
# 45) and erasing it (art. 47) are decisions about a person, taken by supervisors.

CUSTOMER_LOOKUP = Permission("lookup", _SUPERVISOR)
CUSTOMER_DATA = Permission("data", _SUPERVISOR)
CUSTOMER_ERASE = Permission("erase", _SUPERVISOR)
