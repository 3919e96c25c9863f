"""`/sla/board` and `/sla/compliance`: what supervisors watch (contract §6, §7).

Both read the SLA projection. `min_position` (a command's `X-Position`) makes
the view catch up to that write first. Times may be given with an offset
(`2026-10-09T10:00:00+08:00`, `...Z`); `from`/`to` also take a date, read in
FIELDLEDGER_TIMEZONE (`to` as a date includes that day). A `+` sent unencoded
in a query string arrives as a space and is read as `+`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from fieldledger.api.deps import CallerDep, LedgerDep, ProjectionsDep, SettingsDep
from fieldledger.api.problems import InvalidRequest, responses
from fieldledger.api.reading import AsOf, MinPosition, json_response, reading
from fieldledger.application.fields import DayOrInstant, NameList
from fieldledger.application.ledger import plain
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.sla import OPEN_STATUSES, Kind, Status
from fieldledger.projections import sla
from pydantic import BaseModel, Field

router = APIRouter(prefix="/sla", tags=["sla"])

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")

KindParam = Annotated[
    Literal["work_order", "complaint"] | None, Query(description="only this kind of record")
]


_OUTSIDE = "{!r} lies outside the years 0001-9999 in UTC"


def parse_instant(name: str, value: str, timezone: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 instant with offset, or a date (local midnight in `timezone`;
    with `end_of_day`, the midnight that ends it)."""
    text = _SPACED_OFFSET.sub(r"+\1", value.strip())
    if _DATE.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidRequest(name, f"{value!r} is not a date (YYYY-MM-DD)") from None
        try:
            if end_of_day:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        except OverflowError:
            raise InvalidRequest(name, _OUTSIDE.format(value)) from None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            name, f"{value!r} is not an ISO 8601 time (e.g. 2026-10-09T10:00:00+08:00)"
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidRequest(name, f"{value!r} needs a time zone offset (e.g. +08:00 or Z)")
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(name, _OUTSIDE.format(value)) from None


def parse_statuses(value: str | None) -> list[Status]:
    if value is None or not value.strip():
        return list(OPEN_STATUSES)
    chosen = [s.strip() for s in value.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in OPEN_STATUSES]
    if unknown:
        raise InvalidCommand(
            "status",
            f"unknown status {unknown[0]!r}; the board shows open targets: "
            + ", ".join(OPEN_STATUSES),
        )
    return [s for s in OPEN_STATUSES if s in chosen]


class BoardItemOut(BaseModel):
    aggregate_id: str
    kind: str
    target: str
    due_at: str | None
    status: str
    escalation_level: int
    owner_id: str | None
    coordinator_id: str | None = Field(
        description="appointed by the latest red escalation as of then (004 二(二))"
    )
    started_at: str
    policy_version: str
    calendar_warning: str | None


class BoardOut(BaseModel):
    at: str
    items: list[BoardItemOut]


class ComplianceGroupOut(BaseModel):
    key: str | None
    met: int
    breached: int
    open: int
    rate: float | None


class ComplianceOut(BaseModel):
    from_: str | None = Field(None, alias="from")
    to: str | None
    at: str
    group_by: str | None
    kind: str | None
    groups: list[ComplianceGroupOut]


@router.get(
    "/board",
    response_model=BoardOut,
    summary="Open SLA targets with their status at an instant",
    description=(
        "Targets open at `at` (default now): clock started, not yet met, not "
        "cancelled or waived, with their status then (`red` past due, `yellow` "
        "from 80% of the allowed time used, `blue` on track), the owner "
        "(technician or complaint owner) and escalation level as of then. A target "
        "met after `at` was open at `at`. Red first, then by due time. With `as_of`: "
        "the board as the view stood at that instant (`at` defaults to it)."
    ),
    responses=responses(401, 422, 503),
)
def sla_board(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    caller: CallerDep,
    at: Annotated[DayOrInstant | None, Query(description="ISO 8601 instant with offset")] = None,
    status: Annotated[
        NameList | None,
        Query(description="comma-separated: red, yellow, blue (default all)"),
    ] = None,
    kind: KindParam = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> Response:
    default = ledger.clock() if as_of is None else as_of
    instant = default if at is None else parse_instant("at", at, settings.timezone)
    statuses = parse_statuses(status)
    with reading(
        projections,
        sla.NAME,
        as_of=as_of,
        min_position=min_position,
        settings=sla.BOARD_SETTINGS,
    ) as (tx, t, _):
        rows = sla.board_rows(tx, t, instant, statuses, kind, last=True)
    # The rows as they are into the model, validated in one call, with no
    # `BoardItem` or parsed instant per row between (docs/benchmarks.md,
    # branch s8e); the same bytes as before (tests/e2e/test_read_answers.py).
    answer = BoardOut.model_validate({
        "at": plain(instant),
        "items": [{
            "aggregate_id": r["aggregate_id"], "kind": r["kind"], "target": r["target"],
            "due_at": None if r["due_at"] is None else answered(r["due_at"]),
            "status": r["status"], "escalation_level": r["escalation_level"] or 0,
            "owner_id": r["owner_id"], "coordinator_id": r["coordinator_id"],
            "started_at": answered(r["started_at"]), "policy_version": r["policy_version"],
            "calendar_warning": r["calendar_warning"],
        } for r in rows],
    })  # fmt: skip
    return json_response(answer)


def answered(stored: str) -> str:
    """A stored instant (`sla.stamp`: UTC, microseconds always written) as an
    answer writes it (`plain`: UTC ISO 8601, no fraction when it is zero), with
    no `datetime` made in between."""
    if len(stored) == 32 and stored[19] == "." and stored.endswith("+00:00"):
        return stored[:19] + "+00:00" if stored[20:26] == "000000" else stored
    return str(plain(datetime.fromisoformat(stored)))


@router.get(
    "/compliance",
    response_model=ComplianceOut,
    summary="SLA compliance per group: met on time, breached, open, rate",
    description=(
        "Targets whose clock started in [`from`, `to`): `met` on time, `breached` "
        "(met late, cancelled after its due time, or past due now), `open` (running, "
        "not yet due). Cancelled or waived targets that were not yet due are not "
        "counted. `rate` = met / (met + breached) in percent, two decimals; null "
        "when nothing is decided yet. `group_by`: priority, zone, technician (work "
        "orders), severity (complaints), target, kind; none: one group `all`. With "
        "`as_of`: as the view stood at that instant, past due counted at it."
    ),
    responses=responses(401, 422, 503),
)
def sla_compliance(
    projections: ProjectionsDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    caller: CallerDep,
    from_: Annotated[
        DayOrInstant | None, Query(alias="from", description="ISO 8601 instant, or a date")
    ] = None,
    to: Annotated[
        DayOrInstant | None, Query(description="ISO 8601 instant (excluded), or a date (included)")
    ] = None,
    group_by: Annotated[sla.GroupBy | None, Query(description="how to group")] = None,
    kind: KindParam = None,
    as_of: AsOf = None,
    min_position: MinPosition = None,
) -> ComplianceOut:
    start = None if from_ is None else parse_instant("from", from_, settings.timezone)
    end = None if to is None else parse_instant("to", to, settings.timezone, end_of_day=True)
    if start is not None and end is not None and end <= start:
        raise InvalidCommand("to", "must be after from")
    if group_by is not None:
        implied: Kind | None = sla.GROUP_COLUMNS[group_by][1]
        if kind is not None and implied is not None and kind != implied:
            raise InvalidCommand("group_by", f"{group_by} applies to {implied} records only")
    now = ledger.clock() if as_of is None else as_of
    with reading(projections, sla.NAME, as_of=as_of, min_position=min_position) as (tx, t, _):
        groups = sla.compliance(tx, t, start=start, end=end, now=now, group_by=group_by, kind=kind)
    return ComplianceOut.model_validate({
        "from": None if start is None else plain(start),
        "to": None if end is None else plain(end),
        "at": plain(now),
        "group_by": group_by,
        "kind": kind,
        "groups": [
            ComplianceGroupOut(key=g.key, met=g.met, breached=g.breached, open=g.open,
                               rate=g.rate)
            for g in groups
        ],
    })  # fmt: skip
