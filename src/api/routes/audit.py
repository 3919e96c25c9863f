"""`/audit`: the cross-aggregate audit search (contract §7), for supervisors,
analysts and the system. Newest first, with an opaque cursor that stays stable
while new events arrive (keyset on the store position). docs/audit.md."""

import base64
import binascii
import hashlib
import json
from datetime import timedelta
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep, SettingsDep
from fieldledger.api.problems import responses
from fieldledger.api.reading import MinPosition, instant_or_day, json_response, reading
from fieldledger.api.routes.views import HistoryEvent
from fieldledger.application.fields import (
    Cursor,
    DayOrInstant,
    NameList,
    PageSize,
    QueryFlag,
    StaffId,
)
from fieldledger.application.ledger import Caller
from fieldledger.domain.customers import contact_access
from fieldledger.domain.errors import InvalidCommand, NotPermitted
from fieldledger.domain.facts import Role
from fieldledger.projections.audit import AuditFilter, AuditTrail, known_event_types
from pydantic import BaseModel

router = APIRouter(tags=["audit"])

#: Who may search the whole history: those who oversee (supervisors), study
#: (analysts) and automate (system) it. Others read one aggregate's /history.
AUDITORS = frozenset({Role.SUPERVISOR, Role.ANALYST, Role.SYSTEM})
MAX_PAGE = 500  # PageSize (fields.py) says the same in /openapi.json
MAX_TYPES = 50


class Kind(StrEnum):
    work_order = "work_order"
    complaint = "complaint"
    staff = "staff"
    policy = "policy"
    customer = "customer"
    maintenance_contract = "maintenance_contract"


class AuditEvent(HistoryEvent):
    aggregate_id: UUID
    kind: str
    #: The event's position in the store (the order events were recorded).
    position: int
    #: Recorded more than FIELDLEDGER_LATE_REPORT_MINUTES after it occurred.
    late: bool


class AuditPage(BaseModel):
    events: list[AuditEvent]
    #: Pass as `cursor` (with the same filters) for the next, older page; null at the end.
    next_cursor: str | None


async def require_auditor(caller: CallerDep) -> Caller:
    if caller.role not in AUDITORS:
        raise NotPermitted(
            f"role {caller.role.value} may not search the audit trail; allowed: "
            + ", ".join(sorted(r.value for r in AUDITORS))
        )
    return caller


def _fingerprint(query: AuditFilter) -> str:
    canonical = json.dumps(
        [query.actor, query.role, sorted(query.types), query.aggregate_id, query.kind,
         None if query.occurred_from is None else query.occurred_from.timestamp(),
         None if query.occurred_to is None else query.occurred_to.timestamp(), query.late],
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(position: int, query: AuditFilter) -> str:
    raw = json.dumps({"before": position, "search": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, query: AuditFilter) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        before = data["before"]
        search = data["search"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise InvalidCommand("cursor", "is not a cursor this service gave out") from None
    if not isinstance(before, int) or isinstance(before, bool) or before < 1:
        raise InvalidCommand("cursor", "is not a cursor this service gave out")
    if search != _fingerprint(query):
        raise InvalidCommand(
            "cursor", "belongs to a search with other filters; repeat the same filters"
        )
    return before


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Search the audit trail of all work orders, complaints and staff records",
    description=(
        "Every recorded event, newest first (by store position, i.e. recorded order). "
        "`from`/`to` filter on `occurred_at`: `from` inclusive, `to` exclusive; a date is a "
        "whole local day (FIELDLEDGER_TIMEZONE), so `to=2026-10-31` includes 31 October. "
        "Events recorded more than FIELDLEDGER_LATE_REPORT_MINUTES (default 5) after "
        "they occurred are flagged `late`. Who: supervisor, analyst, system. Customers' "
        "contact details in the events' data are shown in full to supervisors only, "
        "masked to the others (docs/api.md); `[erased]` once erased."
    ),
    responses=responses(401, 403, 422, 503),
)
def audit_search(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    caller: Annotated[Caller, Depends(require_auditor)],
    actor: StaffId | None = None,
    role: Role | None = None,
    type: Annotated[
        NameList | None,
        Query(description="an event type (e.g. `Arrived`), or several comma-separated"),
    ] = None,
    aggregate_id: UUID | None = None,
    kind: Kind | None = None,
    from_: Annotated[
        DayOrInstant | None, Query(alias="from", description="date or ISO instant (inclusive)")
    ] = None,
    to: Annotated[
        DayOrInstant | None, Query(description="date (inclusive) or ISO instant (exclusive)")
    ] = None,
    late: Annotated[
        QueryFlag | None, Query(description="only late (true) or timely (false)")
    ] = None,
    cursor: Cursor | None = None,
    limit: PageSize = 50,
    min_position: MinPosition = None,
) -> Response:
    types: tuple[str, ...] = ()
    if type is not None:
        types = tuple(sorted({t.strip() for t in type.split(",") if t.strip()}))
        known = known_event_types()
        unknown = [t for t in types if t not in known]
        if not types or len(types) > MAX_TYPES or unknown:
            raise InvalidCommand(
                "type",
                f"unknown event type {unknown[0]!r}; known: " + ", ".join(sorted(known))
                if unknown
                else f"name 1 to {MAX_TYPES} event types",
            )
    start = instant_or_day(from_, "from", settings.timezone, end=False)
    end = instant_or_day(to, "to", settings.timezone, end=True)
    if start is not None and end is not None and end <= start:
        raise InvalidCommand("to", "must be after from")
    query = AuditFilter(
        actor=actor,
        role=None if role is None else role.value,
        types=types,
        aggregate_id=None if aggregate_id is None else str(aggregate_id),
        kind=None if kind is None else kind.value,
        occurred_from=start,
        occurred_to=end,
        late=late,
    )
    before = None if cursor is None else decode_cursor(cursor, query)
    with reading(projections, AuditTrail.name, as_of=None, min_position=min_position) as (
        tx, t, _view,
    ):  # fmt: skip
        records = AuditTrail.search(
            tx, t, query, before=before, limit=limit + 1,
            late_after=timedelta(minutes=settings.late_report_minutes),
        )  # fmt: skip
        page = records[:limit]
        # Opened now, never stored opened: the view keeps what the events keep.
        # The keys are read in the same transaction (no round trips of their own).
        shown = ledger.personal_data.disclose(
            [r.data for r in page], contact_access(caller.role, caller.actor), tx=tx
        )
    answer = AuditPage(
        events=[
            AuditEvent(
                type=r.type,
                version=r.version,
                actor=r.actor,
                role=r.role,
                occurred_at=r.occurred_at,
                recorded_at=r.recorded_at,
                data=data,
                hash=r.hash,
                aggregate_id=UUID(r.aggregate_id),
                kind=r.kind,
                position=r.position,
                late=r.late,
            )
            for r, data in zip(page, shown, strict=True)
        ],
        next_cursor=encode_cursor(page[-1].position, query) if len(records) > limit else None,
    )
    return json_response(answer)
