"""What the queries answer: aggregates and their histories as JSON (contract §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fieldledger.application.ledger import FieldLedger, HistoryEntry, plain
from fieldledger.domain.complaints import Complaint
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


def history_view(entries: list[HistoryEntry]) -> HistoryView:
    return HistoryView(
        events=[
            HistoryEvent(
                type=e.type,
                version=e.version,
                actor=e.actor,
                role=e.role,
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                data=e.data,
                hash=e.hash,
            )
            for e in entries
        ]
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else plain(value)


def work_order_view(ledger: FieldLedger, wo: WorkOrder, as_of: datetime | None) -> dict[str, Any]:
    return {
        "id": str(wo.id),
        "version": wo.version,
        "state": wo.state.value,
        "escalation_level": wo.escalation_level,
        "customer": plain(wo.customer),
        "service_type": wo.service_type,
        "priority": wo.priority.value,
        "zone": wo.zone.value,
        "appointment": plain(wo.appointment),
        "channel": wo.channel.value,
        "billing": wo.billing.value,
        "description": wo.description,
        "technician_id": wo.technician_id,
        "booked_at": _iso(wo.booked_at),
        "arrived_at": _iso(wo.arrived_at),
        "accepted_at": _iso(wo.accepted_at),
        "completions": wo.completions,
        "rejections": wo.rejections,
        "feedback": plain(wo.feedback),
        "callbacks": wo.callbacks,
        "policy_version": wo.policy_version,
        "as_of": _iso(as_of),
        "sla": [],
    }


def complaint_view(ledger: FieldLedger, c: Complaint, as_of: datetime | None) -> dict[str, Any]:
    work_order_id: UUID | None = c.work_order_id
    return {
        "id": str(c.id),
        "version": c.version,
        "state": c.state.value,
        "escalation_level": c.escalation_level,
        "customer": plain(c.customer),
        "channel": c.channel.value,
        "category": c.category,
        "severity": c.severity.value,
        "description": c.description,
        "work_order_id": None if work_order_id is None else str(work_order_id),
        "staff_ids": list(c.staff_ids),
        "department": c.department,
        "owner_id": c.owner_id,
        "responsible_staff_ids": list(c.responsible_staff_ids),
        "company_at_fault": c.company_at_fault,
        "resolutions": c.resolutions,
        "reopens": c.reopens,
        "csat": c.csat,
        "lodged_at": _iso(c.lodged_at),
        "policy_version": c.policy_version,
        "as_of": _iso(as_of),
        "sla": [],
    }
