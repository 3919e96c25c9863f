"""What `GET /work-orders/{id}` and `GET /complaints/{id}` answer: the routes'
response models, built by `views.py` and described by /openapi.json."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


#: An instant in an answer: ISO 8601 in UTC, "+00:00" (as the events' data gives it).
Answered = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class SlaTargetView(BaseModel):
    """One SLA target (docs/sla.md), its status at now (or at `as_of`)."""

    target: str
    due_at: Answered | None = Field(description="null while on hold with time left")
    met_at: Answered | None
    status: Literal["met", "blue", "yellow", "red", "cancelled", "waived"]
    paused_seconds: int = Field(description="clock time of the ended holds")
    policy_version: str
    clock: Literal["24x7", "business", "appointment"]
    started_at: Answered
    yellow_from: Answered | None
    breached: bool | None = Field(description="met or ended late; null while undecided")
    closed_at: Answered | None = Field(description="when it ended without being met")
    paused_since: Answered | None = Field(description="start of the hold it is in now")
    escalated: bool
    reminded: bool = Field(description="the handler was reminded when it turned yellow")
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
    start: Answered
    end: Answered


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
    booked_at: Answered
    arrived_at: Answered | None
    accepted_at: Answered | None
    completions: int
    rejections: int
    feedback: FeedbackView | None
    callbacks: int
    policy_version: str
    model: str | None = Field(description="the product serviced")
    purchase_date: date | None
    previous_work_order_id: str | None = Field(description="the earlier order named at booking")
    repeat_of: str | None = Field(
        description="the earlier order this call repeats: the one named, or the one of the "
        "same customer phone and service type resolved within the policy's window"
    )
    first_responder_id: str | None = Field(description="who took the call (首問負責制)")
    accountable_id: str | None = Field(description="the first responder, or whom it was "
                                       "last handed over to")
    coordinator_id: str | None = Field(description="appointed by the latest red escalation")
    remote_attempts: int = Field(description="remote fixes tried that failed")
    survey_sent_at: Answered | None
    #: The instant asked for with `?as_of=`, else null.
    as_of: Answered | None
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
    lodged_at: Answered
    policy_version: str
    first_responder_id: str | None
    accountable_id: str | None
    coordinator_id: str | None
    visits: int = Field(description="in-person visits to the complaining customer")
    customer_informed_via: Literal["phone", "visit", "letter", "email"] | None
    as_of: Answered | None
    sla: list[SlaTargetView]
