"""The customer complaint: lodged, acknowledged, investigated, resolved, confirmed.

States: lodged → acknowledged → assigned → investigated → planned → resolved →
closed; an unsatisfied confirmation reopens it (reopened), from where it can be
investigated, planned and resolved again. A critical complaint is escalated to
level 3 in the same save as it is lodged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from uuid import UUID

from eventsourcing.domain import Aggregate
from fieldledger.domain.customers import SealedPersonalData
from fieldledger.domain.facts import (
    Context,
    LedgerAggregate,
    Role,
    require_aware,
    require_between,
    require_text,
)
from fieldledger.domain.work_orders import check_escalation


class ComplaintChannel(Enum):
    PHONE = "phone"
    EMAIL = "email"
    ONLINE = "online"
    VISIT = "visit"


class Severity(Enum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class ComplaintState(Enum):
    LODGED = "lodged"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    INVESTIGATED = "investigated"
    PLANNED = "planned"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"


C = ComplaintState
#: States in which work on the complaint goes on after assignment.
WORKING_STATES = frozenset({C.ASSIGNED, C.INVESTIGATED, C.PLANNED, C.REOPENED})


@dataclass(frozen=True)
class Complainant:
    name: str
    phone: str


class Complaint(LedgerAggregate):
    kind = "complaint"

    class Event(LedgerAggregate.Event):
        pass

    class Lodged(Event, Aggregate.Created):
        #: Sealed in the store (docs/privacy.md): loaded events hold SealedPersonalData.
        customer: Complainant | SealedPersonalData
        channel: ComplaintChannel
        category: str
        severity: Severity
        description: str
        work_order_id: UUID | None
        staff_ids: list[str]
        policy_version: str

        def happen(self, c: Complaint) -> None:
            c.customer = self.customer
            c.channel = self.channel
            c.category = self.category
            c.severity = self.severity
            c.description = self.description
            c.work_order_id = self.work_order_id
            c.staff_ids = list(self.staff_ids)
            c.policy_version = self.policy_version
            c.lodged_at = self.occurred_at

    class Acknowledged(Event):
        def happen(self, c: Complaint) -> None:
            c.state = C.ACKNOWLEDGED

    class Assigned(Event):
        department: str
        owner_id: str

        def happen(self, c: Complaint) -> None:
            c.department = self.department
            c.owner_id = self.owner_id
            if c.state is C.ACKNOWLEDGED:
                c.state = C.ASSIGNED

    class InvestigationRecorded(Event):
        root_cause: str
        evidence: list[str]
        #: Staff the findings hold responsible (the contract's responsible_staff_id, or several).
        responsible_staff_ids: list[str]
        company_at_fault: bool

        def happen(self, c: Complaint) -> None:
            c.state = C.INVESTIGATED
            c.responsible_staff_ids = list(self.responsible_staff_ids)
            c.company_at_fault = self.company_at_fault

    class ResolutionPlanned(Event):
        measures: str
        owner_id: str
        due: datetime

        def happen(self, c: Complaint) -> None:
            c.state = C.PLANNED

    class ProgressUpdated(Event):
        note: str

    class Resolved(Event):
        outcome: str

        def happen(self, c: Complaint) -> None:
            c.state = C.RESOLVED
            c.resolutions += 1

    class Closed(Event):
        csat: int

        def happen(self, c: Complaint) -> None:
            c.state = C.CLOSED
            c.csat = self.csat

    class Reopened(Event):
        csat: int
        #: How many times the customer has now been unsatisfied.
        reopen_count: int

        def happen(self, c: Complaint) -> None:
            c.state = C.REOPENED
            c.csat = self.csat
            c.reopens = self.reopen_count

    class Escalated(Event):
        level: int
        reason: str
        target: str | None

        def happen(self, c: Complaint) -> None:
            c.escalation_level = self.level
            if self.target is not None:
                c.escalated_targets = [*c.escalated_targets, self.target]

    def __init__(self) -> None:
        super().__init__()
        self.state = C.LODGED
        self.customer: Complainant | SealedPersonalData
        self.channel: ComplaintChannel
        self.category: str
        self.severity: Severity
        self.description: str
        self.work_order_id: UUID | None
        self.staff_ids: list[str]
        self.policy_version: str
        self.lodged_at: datetime
        self.department: str | None = None
        self.owner_id: str | None = None
        self.responsible_staff_ids: list[str] = []
        self.company_at_fault = False
        self.resolutions = 0
        self.reopens = 0
        self.csat: int | None = None
        self.escalation_level = 0
        self.escalated_targets: list[str] = []

    # -- commands -----------------------------------------------------------

    @classmethod
    def lodge(
        cls,
        ctx: Context,
        *,
        id: UUID,
        customer: Complainant,
        channel: ComplaintChannel,
        category: str,
        severity: Severity,
        description: str,
        policy_version: str,
        work_order_id: UUID | None = None,
        staff_ids: list[str] | None = None,
    ) -> Complaint:
        complaint = cls._begin(
            cls.Lodged,
            ctx,
            id=id,
            customer=Complainant(
                name=require_text("customer.name", customer.name, max_length=200),
                phone=require_text("customer.phone", customer.phone, max_length=50),
            ),
            channel=channel,
            category=require_text("category", category, max_length=200),
            severity=severity,
            description=require_text("description", description),
            work_order_id=work_order_id,
            staff_ids=[require_text("staff_ids", s, max_length=200) for s in staff_ids or []],
            policy_version=policy_version,
        )
        if severity is Severity.CRITICAL:
            # The service escalates it, not whoever lodged it: recorded as `system`.
            complaint._record(
                cls.Escalated,
                replace(ctx, actor=Role.SYSTEM.value, role=Role.SYSTEM, occurred_at=ctx.when),
                level=3,
                reason="critical complaint: escalated to level 3 on lodging",
                target=None,
            )
        return complaint

    def acknowledge(self, ctx: Context) -> None:
        if self.state is not C.LODGED:
            raise self.refuse("acknowledge")
        self._record(self.Acknowledged, ctx)

    def assign(self, ctx: Context, department: str, owner_id: str) -> None:
        if self.state is not C.ACKNOWLEDGED and self.state not in WORKING_STATES:
            raise self.refuse("assign", "acknowledge it first" if self.state is C.LODGED else "")
        self._record(
            self.Assigned,
            ctx,
            department=require_text("department", department, max_length=200),
            owner_id=require_text("owner_id", owner_id, max_length=200),
        )

    def record_findings(
        self,
        ctx: Context,
        root_cause: str,
        evidence: list[str],
        responsible_staff_ids: list[str],
        company_at_fault: bool,
    ) -> None:
        if self.state not in WORKING_STATES:
            raise self.refuse("record-findings")
        self._record(
            self.InvestigationRecorded,
            ctx,
            root_cause=require_text("root_cause", root_cause),
            evidence=[require_text(f"evidence[{i}]", e) for i, e in enumerate(evidence)],
            responsible_staff_ids=[
                require_text("responsible_staff_id", s, max_length=200)
                for s in dict.fromkeys(responsible_staff_ids)
            ],
            company_at_fault=bool(company_at_fault),
        )

    def plan(self, ctx: Context, measures: str, owner_id: str, due: datetime) -> None:
        if self.state not in (C.INVESTIGATED, C.PLANNED, C.REOPENED):
            raise self.refuse("plan", "record the findings first")
        require_aware("due", due)
        self._record(
            self.ResolutionPlanned,
            ctx,
            measures=require_text("measures", measures),
            owner_id=require_text("owner_id", owner_id, max_length=200),
            due=due,
        )

    def update_progress(self, ctx: Context, note: str) -> None:
        if self.state not in WORKING_STATES:
            raise self.refuse("update-progress")
        self._record(self.ProgressUpdated, ctx, note=require_text("note", note))

    def resolve(self, ctx: Context, outcome: str) -> None:
        if self.state not in (C.INVESTIGATED, C.PLANNED, C.REOPENED):
            raise self.refuse("resolve")
        self._record(self.Resolved, ctx, outcome=require_text("outcome", outcome))

    def confirm(self, ctx: Context, satisfied: bool, csat: int) -> None:
        if self.state is not C.RESOLVED:
            raise self.refuse("confirm", "it must be resolved first")
        require_between("csat", csat, 1, 5)
        if satisfied:
            self._record(self.Closed, ctx, csat=csat)
        else:
            self._record(self.Reopened, ctx, csat=csat, reopen_count=self.reopens + 1)

    def escalate(self, ctx: Context, level: int, reason: str, target: str | None = None) -> None:
        if self.state is C.CLOSED:
            raise self.refuse("escalate")
        check_escalation(self, level, target)
        self._record(
            self.Escalated, ctx, level=level, reason=require_text("reason", reason), target=target
        )
