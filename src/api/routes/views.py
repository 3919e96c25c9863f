"""What the queries answer: aggregates and their histories as JSON (contract §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fieldledger.api.routes.schemas import (
    AppointmentView,
    ComplainantView,
    ComplaintView,
    CustomerView,
    FeedbackView,
    SlaTargetView,
    WorkOrderView,
)
from fieldledger.application.ledger import FieldLedger, HistoryEntry, plain
from fieldledger.application.sla import sla_targets
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.customers import ContactAccess
from fieldledger.domain.sla import SlaTarget
from fieldledger.domain.work_orders import WorkOrder
from pydantic import BaseModel


class HistoryEvent(BaseModel):
    type: str
    version: int
    actor: str
    role: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]
    #: sha256 chaining the event to its aggregate's previous one (docs/audit.md).
    hash: str | None


class HistoryView(BaseModel):
    events: list[HistoryEvent]


def history_view(
    ledger: FieldLedger, entries: list[HistoryEntry], access: ContactAccess
) -> HistoryView:
    """The events, each contact in them shown as `access` may see it."""
    shown = ledger.personal_data.disclose([e.data for e in entries], access)
    return HistoryView(
        events=[
            HistoryEvent(
                type=e.type,
                version=e.version,
                actor=e.actor,
                role=e.role,
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                data=data,
                hash=e.hash,
            )
            for e, data in zip(entries, shown, strict=True)
        ]
    )


def _id(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def sla_row(target: SlaTarget, at: datetime) -> SlaTargetView:
    """One SLA target, with its status at `at` (docs/sla.md)."""
    return SlaTargetView(
        target=target.target,
        due_at=target.due_at,
        met_at=target.met_at,
        status=target.status_at(at),
        paused_seconds=target.paused_seconds,
        policy_version=target.policy_version,
        clock=target.clock,
        started_at=target.started_at,
        yellow_from=target.yellow_from,
        breached=target.breached,
        closed_at=target.closed_at,
        paused_since=target.paused_since,
        escalated=target.escalated,
        reminded=target.reminded,
        calendar_warning=target.calendar_warning,
    )


def sla_view(
    ledger: FieldLedger, aggregate_id: UUID, as_of: datetime | None
) -> list[SlaTargetView]:
    """The targets computed from the aggregate's own events now (no projection lag),
    or as they stood at `as_of`."""
    at = as_of or ledger.clock()
    return [sla_row(t, at) for t in sla_targets(ledger, aggregate_id, as_of)]


def contact_view(ledger: FieldLedger, contact: Any, access: ContactAccess) -> dict[str, Any]:
    """A customer held by an aggregate (sealed), opened as `access` may see it."""
    shown: dict[str, Any] = ledger.personal_data.disclose({"customer": plain(contact)}, access)
    return dict(shown["customer"])


def work_order_view(
    ledger: FieldLedger, wo: WorkOrder, as_of: datetime | None, access: ContactAccess
) -> WorkOrderView:
    appointment = wo.appointment
    feedback = wo.feedback
    return WorkOrderView(
        id=str(wo.id),
        version=wo.version,
        state=wo.state.value,
        escalation_level=wo.escalation_level,
        customer=CustomerView.model_validate(contact_view(ledger, wo.customer, access)),
        service_type=wo.service_type,
        priority=wo.priority.value,
        zone=wo.zone.value,
        appointment=None if appointment is None else AppointmentView(
            start=appointment.start, end=appointment.end),
        channel=wo.channel.value,
        billing=wo.billing.value,
        contract_id=_id(wo.contract_id),
        description=wo.description,
        technician_id=wo.technician_id,
        booked_at=wo.booked_at,
        arrived_at=wo.arrived_at,
        accepted_at=wo.accepted_at,
        completions=wo.completions,
        rejections=wo.rejections,
        feedback=None if feedback is None else FeedbackView.model_validate(plain(feedback)),
        callbacks=wo.callbacks,
        policy_version=wo.policy_version,
        model=wo.model,
        purchase_date=wo.purchase_date,
        previous_work_order_id=_id(wo.previous_work_order_id),
        repeat_of=_id(wo.repeat_of),
        first_responder_id=wo.first_responder_id,
        accountable_id=wo.accountable_id,
        coordinator_id=wo.coordinator_id,
        remote_attempts=wo.remote_attempts,
        survey_sent_at=wo.survey_sent_at,
        as_of=as_of,
        sla=sla_view(ledger, wo.id, as_of),
    )  # fmt: skip


def complaint_view(
    ledger: FieldLedger, c: Complaint, as_of: datetime | None, access: ContactAccess
) -> ComplaintView:
    work_order_id: UUID | None = c.work_order_id
    return ComplaintView(
        id=str(c.id),
        version=c.version,
        state=c.state.value,
        escalation_level=c.escalation_level,
        customer=ComplainantView.model_validate(contact_view(ledger, c.customer, access)),
        channel=c.channel.value,
        category=c.category,
        severity=c.severity.value,
        description=c.description,
        work_order_id=_id(work_order_id),
        staff_ids=list(c.staff_ids),
        department=c.department,
        owner_id=c.owner_id,
        responsible_staff_ids=list(c.responsible_staff_ids),
        company_at_fault=c.company_at_fault,
        resolutions=c.resolutions,
        reopens=c.reopens,
        csat=c.csat,
        lodged_at=c.lodged_at,
        policy_version=c.policy_version,
        first_responder_id=c.first_responder_id,
        accountable_id=c.accountable_id,
        coordinator_id=c.coordinator_id,
        visits=c.visits,
        customer_informed_via=None if c.informed_via is None else c.informed_via.value,
        as_of=as_of,
        sla=sla_view(ledger, c.id, as_of),
    )
