"""`/notifications`: the outbox of a staff member, for client apps to poll
(contract §11.6; docs/procedure.md)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fieldledger.api.deps import CallerDep, ProjectionsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import MinPosition, reading
from fieldledger.application.fields import PageSize, Position, StaffId
from fieldledger.domain.errors import NotPermitted
from fieldledger.domain.facts import Role
from pydantic import BaseModel, Field

router = APIRouter(prefix="/notifications", tags=["notifications"])


class Notification(BaseModel):
    id: int = Field(description="stable; the cursor of the next page is the last id read")
    kind: str = Field(description="reminder, coordinator_appointed, escalation, …")
    recipient_id: str | None
    aggregate_id: str
    event_type: str
    version: int = Field(description="the version of the record the event made")
    occurred_at: datetime
    data: dict[str, Any] = Field(description="the event's data, as in /history")
    delivered_at: str | None = Field(
        description="when the webhook acknowledged it (null: not yet, or no webhook)"
    )


class Notifications(BaseModel):
    items: list[Notification]
    next_cursor: int = Field(description="send as `cursor` to read what came after")


@router.get(
    "",
    response_model=Notifications,
    summary="A staff member's notifications, oldest first, after a cursor",
    description=(
        "Reminders of targets turned yellow, coordinator appointments, escalations (and "
        "renewal notices) addressed to `for`, after `cursor` (0: from the start). Poll "
        "with the answer's `next_cursor`. A technician reads only their own; every "
        "other role reads anyone's."
    ),
    responses=responses(401, 403, 422, 503),
)
def notifications_for(
    projections: ProjectionsDep,
    caller: CallerDep,
    for_: Annotated[StaffId, Query(alias="for", description="the staff id")],
    cursor: Annotated[Position, Query(description="the last id read (0: from the start)")] = 0,
    limit: Annotated[PageSize, Query(description="at most this many")] = 100,
    min_position: MinPosition = None,
) -> Notifications:  # fmt: skip
    if caller.role is Role.TECHNICIAN and caller.actor != for_:
        raise NotPermitted(f"a technician reads only their own notifications, not {for_}'s")
    with reading(projections, "notifications", as_of=None, min_position=min_position) as (
        tx, tables, view,
    ):  # fmt: skip
        items = view.for_staff(tx, tables, for_, cursor, limit)
    return Notifications(
        items=[Notification.model_validate(i) for i in items],
        next_cursor=items[-1]["id"] if items else cursor,
    )
