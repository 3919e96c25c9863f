"""What `GET /work-orders/{id}` and `GET /complaints/{id}` answer, for /openapi.json.

The answers themselves are built in `views.py`; these models only describe
them (the routes do not filter their answers through them), and the end-to-end
tests check that every field answered is described here and the other way round.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class SlaTargetView(BaseModel):
    """One SLA target (docs/sla.md), its status at now (or at `as_of`)."""

    target: str
    due_at: datetime | None = Field(description="null while on hold with time left")
    met_at: datetime | None
    status: Literal["met", "blue", "yellow", "red", "cancelled", "waived"]
    paused_seconds: int = Field(description="clock time of the ended holds")
    policy_version: str
    clock: Literal["24x7", "business", "appointment"]
    started_at: datetime
    yellow_from: datetime | None
    breached: bool | None = Field(description="met or ended late; null while undecided")
    closed_at: datetime | None = Field(description="when it ended without being met")
    paused_since: datetime | None = Field(description="start of the hold it is in now")
    escalated: bool
    calendar_warning: str | None


class CustomerView(BaseModel):
    """The customer's contact details as the caller's role may see them
    (docs/api.md, "Customers' contact details"); `[erased]` after erasure."""

    #: The pseudonymous customer id (null only on orders booked before sealing).
    customer_id: str | None
    name: str
    phone: str
    #: Null where the role sees no address.
    address: str | None


class AppointmentView(BaseModel):
    start: datetime
    end: datetime


class FeedbackView(BaseModel):
    csat: int
    attitude: int
    skill: int
    punctuality: int
    promise: int
    praise: bool
    comment: str


class WorkOrderView(BaseModel):
    """A work order as it is now, or as it was at `as_of`."""

    id: str
    version: int
    state: str
    escalation_level: int
    customer: CustomerView
    service_type: str
    priority: Literal["urgent", "priority", "routine"]
    zone: Literal["urban", "suburban"]
    appointment: AppointmentView | None
    channel: Literal["phone", "online", "walk_in"]
    billing: Literal["paid", "contract", "warranty"]
    #: The maintenance contract of a contract order, when named.
    contract_id: str | None
    description: str
    technician_id: str | None
    booked_at: datetime
    arrived_at: datetime | None
    accepted_at: datetime | None
    completions: int
    rejections: int
    feedback: FeedbackView | None
    callbacks: int
    policy_version: str
    #: The instant asked for with `?as_of=`, else null.
    as_of: datetime | None
    sla: list[SlaTargetView]


class ComplainantView(BaseModel):
    """As `CustomerView`, without an address."""

    customer_id: str | None
    name: str
    phone: str


class ComplaintView(BaseModel):
    """A complaint as it is now, or as it was at `as_of`."""

    id: str
    version: int
    state: str
    escalation_level: int
    customer: ComplainantView
    channel: Literal["phone", "email", "online", "visit"]
    category: str
    severity: Literal["minor", "major", "critical"]
    description: str
    work_order_id: str | None
    staff_ids: list[str]
    department: str | None
    owner_id: str | None
    responsible_staff_ids: list[str]
    company_at_fault: bool
    resolutions: int
    reopens: int
    csat: int | None
    lodged_at: datetime
    policy_version: str
    as_of: datetime | None
    sla: list[SlaTargetView]
